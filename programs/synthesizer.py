"""`DialogueSynthesizer`: the paper's data engine as a DSPy program, in two modes.

`whole`: one LM call writes the description and the whole labelled dialogue (the paper's self-chat template; for
capable models). Few-shot demos are seed (or earlier generated) dialogues: the compiler may set them on
`self.generate`, and a run passes the demos it drew for each call.
`turns`: a help-seeker simulator and the supporter alternate turn by turn (for small local models that cannot
write a whole structured dialogue at once); every assistant turn gets its strategy from `SelectStrategy`. Each
seeker message passes the arena's role checks (corpus/role_checks.py: no supporter talk, no echo, no loop) and a
description must not be in an AI's voice; one that fails is sampled again (twice at most). A seeker message or
reply that still fails ends the conversation if it has 8 turns already (the seeker has nothing new to say), and
validation rejects what fails in a shorter one (`seeker_role`, `repeated_turn`, `ai_description`).
"""

from __future__ import annotations

import json
import random
import re

import dspy

from extes.corpus.assets import load_taxonomy
from extes.corpus.dedup import jaccard, shingles
from extes.corpus.formats.base import ReadOptions, RecordError
from extes.corpus.formats.extes_json import dialogue_to_record, record_to_dialogue
from extes.corpus.prompts import strategy_list
from extes.corpus.role_checks import check_seeker_message
from extes.corpus.validation import AI_VOICE, DEMO_COPY, MIN_UTT, REPEAT
from extes.programs.seeker import seeker_transcript
from extes.programs.supporter import Supporter
from extes.signatures.dialogue import Dialogue, Meta, Turn
from extes.signatures.synthesis import DescribeSituation, SimulateHelpSeeker, SynthesizeSupportDialogue

MODES = ("whole", "turns")
# Turn mode: a description, seeker message or reply that broke role or repeated is sampled again, twice at most.
RETRIES, RETRY_TEMPERATURE = 2, 0.8


def demo_example(d: Dialogue) -> dict:
    """A dialogue as a demo of SynthesizeSupportDialogue (inputs and the JSON output)."""
    return {
        "scene": d.scene,
        "scene_examples": "; ".join(load_taxonomy().scenario(d.scene).examples) if _known(d.scene) else "",
        "strategy_guide": strategy_list(),
        "dialogue": json.dumps(dialogue_to_record(d, with_id=False), ensure_ascii=False),
    }


def _known(scene: str) -> bool:
    return scene in load_taxonomy().scenario_names


def parse_dialogue(text: str, *, scene: str, dialogue_id: str) -> Dialogue:
    """The JSON object in an LM's answer → Dialogue (RecordError with the reason when it cannot be read)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise RecordError("no JSON object in the output")
    try:
        record = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise RecordError(f"malformed JSON ({e.msg} at column {e.colno})") from None
    if isinstance(record, dict):
        record.setdefault("scene", scene)
        record["id"] = dialogue_id
    d = record_to_dialogue(record, 0, _Src(dialogue_id), ReadOptions(unknown_labels="keep"))
    return d


class _Src:  # record_to_dialogue wants a path-like with a name and stem for provenance
    def __init__(self, name: str):
        self.name = self.stem = name


class DialogueSynthesizer(dspy.Module):
    """scene (+ demos) → a generated Dialogue, in `whole` or `turns` mode."""

    def __init__(self, mode: str = "whole", min_exchanges: int = 6, max_exchanges: int = 9):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.generate = dspy.Predict(SynthesizeSupportDialogue)
        self.describe = dspy.Predict(DescribeSituation)
        self.seeker = dspy.Predict(SimulateHelpSeeker)
        self.supporter = Supporter()
        self.min_exchanges, self.max_exchanges = min_exchanges, max_exchanges

    def forward(self, scene: str, dialogue_id: str = "generated", demos: list[Dialogue] | None = None,
                seed: int = 0, config: dict | None = None, **_inputs) -> dspy.Prediction:
        """`config` goes to the LM calls (e.g. a distinct `rollout_id` per dialogue for diverse samples)."""
        if self.mode == "whole":
            return self._whole(scene, dialogue_id, demos, config or {})
        return self._turns(scene, dialogue_id, seed, config or {}, demos)

    def _whole(self, scene, dialogue_id, demos, config):
        kwargs = {"config": config}
        if demos is not None:
            kwargs["demos"] = [*self.generate.demos, *(demo_example(d) for d in demos)]
        examples = "; ".join(load_taxonomy().scenario(scene).examples)
        raw = self.generate(scene=scene, scene_examples=examples, strategy_guide=strategy_list(), **kwargs).dialogue
        return dspy.Prediction(dialogue=parse_dialogue(raw, scene=scene, dialogue_id=dialogue_id), raw=raw)

    def _turns(self, scene, dialogue_id, seed, config, demos=None):
        described, seeker_demos = turn_demos(demos or [])
        # The drawn dialogues' descriptions join the scene's examples (as demos with the same inputs, the model
        # copied them word for word); one in an AI's voice, a refusal or a near copy is written again.
        examples = "; ".join([*load_taxonomy().scenario(scene).examples, *described])
        description = ""
        for attempt in range(RETRIES + 1):
            raw = self.describe(scene=scene, scene_examples=examples,
                                config=_retry_config(config, attempt, max_tokens=70)).description
            description = _first_sentences(_clean(raw), 2)
            if not AI_VOICE.search(description) and not any(
                    jaccard(shingles(description), shingles(d)) > DEMO_COPY for d in described):
                break
        rng = random.Random(f"{dialogue_id}:{seed}")
        turns: list[dict] = []
        for _ in range(rng.randint(self.min_exchanges, self.max_exchanges)):
            for attempt in range(RETRIES + 1):  # the arena's role checks: a message that breaks role is resampled
                message = whole_sentences(_clean(self.seeker(
                    description=description, conversation=seeker_transcript(turns),
                    demos=[*self.seeker.demos, *seeker_demos],
                    config=_retry_config(config, attempt, max_tokens=60)).message))
                broke = check_seeker_message(message, turns)
                if not broke:
                    break
            # A seeker with nothing new to say in role ends the conversation once it is long enough; before that
            # the turn is kept and validation judges the dialogue.
            if broke and len(turns) >= MIN_UTT:
                break
            turns.append({"role": "user", "text": message})
            strategy, _ = self.supporter.choose(turns)
            earlier = [shingles(t["text"]) for t in turns if t["role"] == "assistant"]
            for attempt in range(RETRIES + 1):  # a reply that repeats an earlier one is sampled again
                # A reply cut by the token limit ends mid-sentence, and the seeker then continued the sentence.
                reply = whole_sentences(_clean(self.supporter(history=turns, strategy=strategy, config=_retry_config(
                    config, attempt, max_tokens=90)).reply))
                repeats = any(jaccard(shingles(reply), e) > REPEAT for e in earlier)
                if not repeats:
                    break
            if repeats and len(turns) - 1 >= MIN_UTT:
                turns.pop()  # the same: end on the last good reply
                break
            turns.append({"role": "assistant", "text": reply, "strategy": strategy})
        d = Dialogue(id=dialogue_id, scene=scene, description=description,
                     turns=[Turn(**t) for t in turns], meta=Meta(source="generated"))
        return dspy.Prediction(dialogue=d, raw=None)


def turn_demos(dialogues: list[Dialogue]) -> tuple[list[str], list[dict]]:
    """What turn mode takes from the run's drawn dialogues (seeds in round 0): their descriptions, as examples of
    the scene, and the person's second message after the opening exchange, as a demo of the seeker."""
    described, seeker = [], []
    for d in dialogues:
        if d.description:
            described.append(d.description)
        turns = [{"role": t.role, "text": t.text} for t in d.turns]
        if len(turns) >= 3 and [t["role"] for t in turns[:3]] == ["user", "assistant", "user"]:
            seeker.append({"description": d.description, "conversation": seeker_transcript(turns[:2]),
                           "message": turns[2]["text"]})
    return described, seeker


def _retry_config(config: dict, attempt: int, **extra) -> dict:
    """The call's config; a retry samples (temperature 0.8) under its own rollout id, so it is a new answer."""
    out = {**config, **extra}
    if attempt:
        out.update(temperature=RETRY_TEMPERATURE, rollout_id=int(config.get("rollout_id") or 0) * 10 + attempt)
    return out


def whole_sentences(text: str) -> str:
    """`text` without a last sentence the token limit cut short (kept whole if it has no sentence end at all)."""
    text = text.strip()
    if not text or text[-1] in ".!?\"')":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", text)]
    return text[: ends[-1]] if ends else text


def _first_sentences(text: str, n: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return " ".join(parts[:n])


def _clean(text: str) -> str:
    text = re.sub(r"^(user|assistant|you|me|person)\s*:\s*", "", text.strip(), flags=re.I)
    text = re.split(r"\n\s*(?:Listener|Person)\s*:", text)[0]  # a model that writes the listener's line as well
    return text.strip().strip('"').strip() or "..."
