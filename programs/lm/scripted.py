"""`scripted`: a deterministic fake LM for tests and demos, selectable from the CLI like any model.

`scripted` answers by rule: asked to choose among listed values ("Answer with exactly one of: ..."), it picks
the first value named in the system message's keyword table below, else the first listed; asked for a reply, it
writes a short supportive message that echoes the user's last words; as the arena's help-seeker it writes
varied first-person messages and ends after six; as the arena's judge it prefers the supporter who wrote more
(a tie within 10%), the same in either order. `scripted:FILE.json` cycles through the
strings of a JSON list instead.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import dspy

from extes.errors import ModelError
from extes.programs.lm.context import fit_messages
from extes.programs.lm.registry import Backend, Capabilities, Option, sampling_options
from extes.programs.lm.scripted_dialogues import compose_description, compose_json, compose_user_message

KEYWORDS = [
    (("should i", "what can i do", "any ideas", "how do i", "what do i do"), "Suggest Options"),
    (("worthless", "failure", "stupid", "useless"), "Reframe Negative Thoughts"),
    (("?",), "Clarification"),
]


class ScriptedLM(dspy.BaseLM):
    """A deterministic LM: rule-based by default, or a fixed list of responses cycled in order."""

    def __init__(self, responses: list[str] | None = None, model: str = "scripted"):
        super().__init__(model=model, model_type="chat", temperature=0.0, max_tokens=256, cache=False)
        self.responses = responses
        self._cycle = itertools.cycle(responses) if responses else None
        self._lock = threading.Lock()
        self.calls = 0
        self.delay = 0.0

    @classmethod
    def from_spec(cls, spec: str) -> ScriptedLM:
        """`scripted`, `scripted@SECONDS` (a delay per call, to act like a slow model) or `scripted:FILE.json`."""
        if spec == "scripted":
            return cls()
        if spec.startswith("scripted@"):
            try:
                lm = cls(model=spec)
                lm.delay = float(spec.split("@", 1)[1])
                return lm
            except ValueError:
                raise ModelError(f"-m {spec}: give the delay in seconds, e.g. scripted@0.05") from None
        path = Path(spec.split(":", 1)[1])
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(f"-m {spec}: cannot read {path} ({e}); give a JSON list of response strings") from None
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise ModelError(f"-m {spec}: {path} must hold a non-empty JSON list of strings")
        return cls(items, model=spec)

    def respond(self, messages: list[dict], rollout_id=None) -> str:
        with self._lock:
            self.calls += 1
            if self._cycle:
                return next(self._cycle)
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        seed = int(hashlib.sha256(f"{rollout_id}|{json.dumps(messages)}".encode()).hexdigest()[:12], 16)
        scene = re.search(r"Scene: (.*)", last) or re.search(r"Scene: (.*)", system)
        if "emotional-support conversation between a user and an assistant" in system:
            return compose_json(scene.group(1).strip() if scene else "Academic Stress", seed)
        if "Invent one specific, realistic situation" in system:
            return compose_description(scene.group(1) if scene else "", seed)
        if "texting a listener for emotional support" in system:
            return compose_user_message(seed)
        if "seeks emotional support, described by the role card" in system:
            return _seeker_message(messages, seed)
        if "You compare two emotional-support conversations" in system:
            return _judge_pair(system + "\n" + last)
        if "Rate the supporter in this emotional-support conversation" in system:
            return str(min(4, _support_words(system + "\n" + last) // 40))
        listed = re.search(r"Answer with exactly one of: (.*)\.", system)
        if listed:
            choices = [c.strip() for c in listed.group(1).split(",")]
            for keys, label in KEYWORDS:
                if label in choices and any(k in last.lower() for k in keys):
                    return label
            return "Emotional Validation" if "Emotional Validation" in choices else choices[0]
        words = " ".join(last.split()[:12]).rstrip(".!?")
        return f"It sounds like {words.lower()} has been weighing on you. I'm here with you; tell me more."

    # Its "tokens" are words; a window like a small model's, so that long histories are cut here as they are there.
    context_window = 4096

    def forward(self, prompt=None, messages=None, **kwargs):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        messages = fit_messages(messages, lambda ms: sum(len(m["content"].split()) for m in ms),
                                self.context_window - int(kwargs.get("max_tokens") or self.kwargs.get("max_tokens")
                                                          or 256), model=self.model)
        n = int(kwargs.get("n", 1) or 1)
        if self.delay:
            time.sleep(self.delay)
        texts = [self.respond(messages, kwargs.get("rollout_id")) for _ in range(n)]
        p_tok = sum(len(m["content"].split()) for m in messages)
        c_tok = sum(len(t.split()) for t in texts)
        return SimpleNamespace(
            model=self.model,
            choices=[{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": t}}
                     for i, t in enumerate(texts)],
            usage={"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok},
        )


def _seeker_message(messages: list[dict], seed: int) -> str:
    """A help-seeker who talks for six messages, then says it helped (the end signal)."""
    # it reads a transcript (programs/seeker.py): its own earlier messages are the "Person:" lines before the cue
    text = "\n".join(m["content"] for m in messages if m["role"] != "assistant")
    said = sum(1 for line in text.splitlines() if line.strip().startswith("Person:")) - 1
    if said >= 6:
        return "Thank you, talking this through really helped me. [DONE]"
    return compose_user_message(seed)


def _support_words(text: str) -> int:
    return sum(len(line.split()) - 1 for line in text.splitlines() if line.startswith("Supporter:"))


def _judge_pair(text: str) -> str:
    """The conversation whose supporter wrote more words wins (a tie within 10%): deterministic and order-free."""
    m = re.search(r"Conversation a: (.*?)\nConversation b: (.*?)(\nAnswer with exactly|$)", text, re.S)
    if not m:
        return "Tie"
    a, b = _support_words(m.group(1)), _support_words(m.group(2))
    if abs(a - b) <= 0.1 * max(a, b, 1):
        return "Tie"
    return "A" if a > b else "B"


def build(model: str, spec: str, **_sampling) -> ScriptedLM:
    """Sampling options are accepted and have no effect, so that a pipeline can swap a real model for this one."""
    return ScriptedLM.from_spec(spec)


BACKEND = Backend(
    prefix="scripted",
    variants=("scripted:", "scripted@"),
    usage="scripted",
    build=build,
    options=(
        *sampling_options(max_tokens=None, help="Accepted, no effect (deterministic)."),
        Option("cache", bool, "Accepted, no effect (never cached)."),
    ),
    capabilities=Capabilities(batched=True),
)
