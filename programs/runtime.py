"""Entry functions behind `extes reply` and `extes chat`: safety first, then the supporter on the chosen LM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy

from extes.corpus import textio
from extes.corpus.assets import load_taxonomy
from extes.corpus.formats import read_corpus
from extes.corpus.labels import normalizer
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.lm.registry import capabilities
from extes.programs.safety import checker_for
from extes.programs.safety_locale import localized_escalation
from extes.programs.supporter import Supporter

MAX_MESSAGE_CHARS = 4000


def check_message(text: str) -> str:
    """A user message must be non-empty and of a size a chat turn has."""
    text = (text or "").strip()
    if not text:
        raise InputError("the message is empty; type what you want to say")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"the message has {len(text)} characters; keep it under {MAX_MESSAGE_CHARS} (send it in parts)"
        )
    return text


def canonical_strategy(name: str | None) -> str | None:
    """`--strategy` given as name, abbreviation or variant → the canonical name (or a one-line error)."""
    if name is None:
        return None
    norm = normalizer("extes").normalize(name)
    if norm.label is None or not norm.known:
        names = ", ".join(s.abbreviation for s in load_taxonomy().strategies)
        raise InputError(f"--strategy {name!r} is not one of the 16 strategies; use a name or abbreviation ({names})")
    return norm.label


def read_history(path: Path | None) -> list[dict]:
    """A history file: a JSONL transcript (corpus Dialogue) or a JSON list of {role, text} turns."""
    if path is None:
        return []

    if Path(path).suffix == ".json":
        text = textio.read_text(path, label="--history")
        try:
            turns = textio.loads(text)
            assert isinstance(turns, list) and all(isinstance(t, dict) and {"role", "text"} <= set(t) for t in turns)
            assert all(t["role"] in ("user", "assistant") and isinstance(t["text"], str) for t in turns)
            return [{"role": t["role"], "text": t["text"]} for t in turns]
        except (ValueError, AssertionError, TypeError):
            raise InputError(f"--history {path}: expected a JSON list of {{\"role\": user|assistant, \"text\"}} "
                             "turns") from None
    dialogues = read_corpus(path, "jsonl").dialogues
    if not dialogues:
        raise InputError(f"--history {path}: the file has no dialogue; give a transcript saved by `extes chat "
                         "--save` (JSONL) or a JSON list of {\"role\", \"text\"} turns")
    return [{"role": t.role, "text": t.text} for t in dialogues[-1].turns]


def respond(lm, history: list[dict], message: str, *, strategy: str | None = None,
            locale: str | None = None, supporter: Supporter | None = None, checker=None) -> dict[str, Any]:
    """One turn: the safety check on `message` read with `history` (`checker`, default the layer for `lm`), then
    (if safe) strategy and reply from the supporter."""
    message = check_message(message)
    verdict = (checker or checker_for(lm)).check(message, history)
    if verdict.crisis:
        return {"strategy": None, "reply": localized_escalation(locale, verdict.category, message, verdict, history),
                "crisis": True,
                "safety": verdict.to_dict()}
    turns = [*history, {"role": "user", "text": message}]
    supporter = supporter or Supporter()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        pred = supporter(history=turns, strategy=canonical_strategy(strategy))
    return {"strategy": pred.strategy, "reply": pred.reply, "crisis": False,
            "strategy_fallback": pred.strategy_fallback}


def stream_reply(lm, history: list[dict], strategy: str):
    """Yield the reply to `history` with `strategy` piece by piece (whole, for LMs that cannot stream)."""
    from extes.signatures.support import RespondWithStrategy  # lazy: signatures.support imports dspy

    definition = load_taxonomy().strategy(strategy).definition
    if capabilities(lm).can_stream:
        inputs = {"history": history, "strategy": strategy, "strategy_definition": definition}
        yield from lm.stream(SmallChatAdapter().format(RespondWithStrategy, [], inputs))
        return
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        yield Supporter()(history=history, strategy=strategy).reply
