"""`SeekerSimulator`: a role card and the conversation so far → the help-seeker's next message, or an end signal.

Each message passes the role checks of `corpus/role_checks.py`; a failing one is sampled again (a new rollout id)
up to `retries` times, then kept with its reason codes so that the transcript shows where the simulator broke role.
"""

from __future__ import annotations

import logging

import dspy

from extes.corpus.role_checks import check_seeker_message
from extes.signatures.arena import END_GAVE_UP, END_HELPED, RoleCard, SimulateSeeker

log = logging.getLogger(__name__)


LISTENER_OPENING = "Hi, I'm here to listen. What's been going on?"  # the seeker's view only, not the dialogue's


def seeker_transcript(turns: list[dict]) -> str:
    """The conversation (in its own roles) as a seeker simulator reads it: the listener's opening line (so that the
    first message answers someone), then one line per turn, ending with the Person's cue. Used by the arena's
    seeker and by turn-mode synthesis."""
    lines = [f"Listener: {LISTENER_OPENING}"]
    lines += [f"{'Person' if t['role'] == 'user' else 'Listener'}: {t['text']}" for t in turns]
    return "\n".join([*lines, "Person:"])


def split_end(message: str) -> tuple[str, str | None]:
    """(message without the end marker, "helped" | "gave_up" | None)."""
    for marker, reason in ((END_HELPED, "helped"), (END_GAVE_UP, "gave_up")):
        if marker in message:
            return message.replace(marker, "").strip(), reason
    return message.strip(), None


class SeekerSimulator(dspy.Module):
    """(card, history) → Prediction(message, end, problems, attempts).

    `card` is a RoleCard or its rendered text (as in compiled demos); `history` is the conversation in its own roles
    (the seeker's turns are the user's); the LM reads it as a transcript (`seeker_transcript`), in which it is the
    Person."""

    def __init__(self, retries: int = 2):
        super().__init__()
        self.simulate = dspy.Predict(SimulateSeeker)
        self.retries = retries

    def forward(self, card: RoleCard | str, history: list[dict], seed: int = 0) -> dspy.Prediction:
        if not history and isinstance(card, RoleCard) and card.opening:
            return dspy.Prediction(message=card.opening, end=None, problems=[], attempts=0)
        rendered = card.render() if isinstance(card, RoleCard) else card
        problems, message, end = [], "", None
        for attempt in range(self.retries + 1):
            # The same card, turn and seed give the same rollout for every supporter, so seekers differ only by reply.
            config = {"rollout_id": seed * 1000 + len(history) * 10 + attempt} if attempt or seed else {}
            raw = self.simulate(card=rendered, conversation=seeker_transcript(history), config=config).message
            message, end = split_end(raw)
            if not message and end:
                return dspy.Prediction(message="", end=end, problems=[], attempts=attempt + 1)
            problems = check_seeker_message(message, history)
            if not problems:
                break
            log.info("seeker broke role (%s); sampling again", ", ".join(p.code for p in problems))
        return dspy.Prediction(message=message, end=end, problems=[p.code for p in problems], attempts=attempt + 1)
