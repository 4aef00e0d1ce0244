"""Reading the conversation around a message: what the last message means given the turns before it.

Three signals, all from `assets/safety/context.yaml`: a yes to the assistant's own risk question ("are you thinking
of ending your life?" → "yes, most nights"), a no to its safety question ("are you safe at home right now?" →
"not really. he's drinking now") and a message that continues an earlier crisis turn ("I have the pills
in front of me" → "I just want to sleep"). Context only ever adds a crisis; it never clears what the message alone
shows, and an ordinary follow-up after support ("what should I do next?") stays ordinary because nothing before it
was a crisis and it answers no risk question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from extes.corpus.assets import read_yaml
from extes.corpus.safety_rules import RuleHit, RuleSet, normalize
from extes.errors import AssetError, InputError

ROLES = ("user", "assistant")


def check_context(context, where: str = "context") -> list[dict[str, str]]:
    """A list of {"role": "user"|"assistant", "text": str}; anything else is a one-line error naming `where`."""
    if context is None:
        return []
    ok = isinstance(context, list) and all(
        isinstance(t, dict) and t.get("role") in ROLES and isinstance(t.get("text"), str) for t in context
    )
    if not ok:
        raise InputError(f"{where}: expected a list of {{\"role\": \"user\"|\"assistant\", \"text\": str}} turns")
    return [{"role": t["role"], "text": t["text"]} for t in context]


@dataclass(frozen=True)
class ContextRules:
    """The compiled context.yaml."""

    turns: int
    questions: dict[str, list[re.Pattern]]
    affirmative: re.Pattern
    negative: re.Pattern
    carry_over: list[re.Pattern]
    ordinary_chars: int
    ordinary_request: re.Pattern
    risk_words: re.Pattern
    safety_questions: dict[str, list[re.Pattern]]

    def is_ordinary(self, text: str) -> bool:
        """A short request for next steps that names nothing of a crisis (the classifier is not asked)."""
        t = normalize(text)
        return len(t) <= self.ordinary_chars and bool(self.ordinary_request.search(t)) and not self.risk_words.search(t)

    @classmethod
    def load(cls, path: Path) -> ContextRules:
        data = read_yaml(path)
        try:
            return cls(
                turns=int(data["turns"]),
                questions={cat: [re.compile(p) for p in pats] for cat, pats in data["risk_questions"].items()},
                affirmative=re.compile(data["affirmative"]),
                negative=re.compile(data["negative"]),
                carry_over=[re.compile(p) for p in data["carry_over"]],
                ordinary_chars=int(data["ordinary"]["max_chars"]),
                ordinary_request=re.compile(data["ordinary"]["request"]),
                risk_words=re.compile(data["ordinary"]["risk_words"]),
                safety_questions={cat: [re.compile(p) for p in pats]
                                  for cat, pats in (data.get("safety_questions") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, re.error) as e:
            raise AssetError(f"{path}: {e}; see the comments in the shipped context.yaml for its shape") from None


def read_context(rules: RuleSet, ctx: ContextRules, text: str, context: list[dict[str, str]]) -> RuleHit | None:
    """The crisis that `text` is, given the turns before it (None when context adds nothing)."""
    recent = context[-ctx.turns:]
    if not recent:
        return None
    t = normalize(text)
    last = recent[-1]
    # Only a turn that asks counts: a statement that names a crisis line (the escalation message) asks nothing.
    if last["role"] == "assistant" and "?" in last["text"] and ctx.affirmative.search(t) and not ctx.negative.search(t):
        question = normalize(last["text"])
        for cat, pats in ctx.questions.items():
            for pat in pats:
                if pat.search(question):
                    return RuleHit(cat, text[:80], f"yes to the risk question {pat.pattern}")
    # A no to "are you safe (at home) right now?" is the user saying they are not safe.
    if last["role"] == "assistant" and "?" in last["text"] and ctx.negative.search(t):
        question = normalize(last["text"])
        for cat, pats in ctx.safety_questions.items():
            for pat in pats:
                if pat.search(question):
                    return RuleHit(cat, text[:80], f"no to the safety question {pat.pattern}")
    for turn in [turn for turn in recent if turn["role"] == "user"][-2:][::-1]:  # the user's last two turns
        earlier = rules.match(turn["text"])
        if earlier:
            for pat in ctx.carry_over:
                m = pat.search(t)
                if m:
                    return RuleHit(earlier.category, m.group(0), f"continues {earlier.matched!r}: {pat.pattern}")
            break  # only the latest crisis turn is continued
    return None
