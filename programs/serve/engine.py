"""What `extes serve` does with a chat-completions request, apart from HTTP: pick the model, run the crisis layer on
the user's message, then answer as the plain model or as the Supporter (strategy, then reply), whole or streamed.

Every model is a DSPy LM (`programs/lm`); local ones decode concurrent requests together in their batch
(`programs/lm/batching.py`), one batch per adapter (each adapter is merged into its own copy of the base, so its
decode stays on the lean loop). Plain mode passes the messages through as they are (what DSPy clients, `extes reply
-m openai/...` and other OpenAI clients expect); Supporter mode (`extes.supporter` in the request, a forced
`extes.strategy`, or `--program`) answers with the 16-strategy Supporter and returns the strategy in the `extes`
extension field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dspy

from extes.corpus.assets import load_taxonomy
from extes.errors import ExtesError, InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.runtime import canonical_strategy
from extes.programs.safety import SafetyChecker, default_checker
from extes.programs.safety_locale import localized_escalation
from extes.programs.serve.schemas import ChatCompletionRequest
from extes.programs.supporter import Supporter

log = logging.getLogger(__name__)


class UnknownModel(ExtesError):
    """The request's `model` names nothing this server serves (HTTP 404)."""


@dataclass
class Answer:
    """An answer before it is shaped as an OpenAI response: the meta first, then the text (whole or in pieces)."""

    model: str
    meta: dict[str, Any]
    pieces: Iterator[str]
    prompt_tokens: int = 0
    completion_tokens: Callable[[], int] = field(default=lambda: 0)
    max_tokens: int | None = None
    cancel: Callable[[], None] = field(default=lambda: None)


class Engine:
    """Models by name (the first is the default), an optional program, the crisis checker and its locale."""

    def __init__(self, models: dict[str, Any], *, program: Supporter | None = None,
                 checker: SafetyChecker | None = None, locale: str | None = None, log_messages: bool = False):
        if not models:
            raise InputError("no model to serve")
        self.models = models
        self.default = next(iter(models))
        self.program = program
        self.checker = checker
        self.locale = locale
        self.log_messages = log_messages

    def resolve(self, name: str | None) -> tuple[str, Any]:
        """(served name, LM) for a request's `model`: a served name, the same with `local/` or `openai/` before
        it, or nothing (the default)."""
        if not name:
            return self.default, self.models[self.default]
        for candidate in (name, name.split("/", 1)[-1]):
            if candidate in self.models:
                return candidate, self.models[candidate]
        raise UnknownModel(f"model {name!r} is not served here; use one of {', '.join(self.models)} (GET /v1/models)")

    # -- the crisis layer --------------------------------------------------------------------------------------
    def _check(self, text: str, before: list[dict]):
        """The verdict on the newest user message `text`, read with the turns `before` it (oldest first), as
        `extes chat` does: a yes to a risk question is a crisis only in its conversation (corpus/safety_context.py)."""
        if self.checker is None:
            self.checker = default_checker()
        return self.checker.check(text, before)

    # -- answering ---------------------------------------------------------------------------------------------
    def answer(self, req: ChatCompletionRequest) -> Answer:
        """Safety first (the last user message, with the conversation), then the model. Raises InputError or
        UnknownModel for bad requests; the model is not called for a crisis."""
        name, lm = self.resolve(req.model)
        opts = req.extes
        supporter = self.program is not None or bool(opts and (opts.supporter or opts.strategy))
        forced = canonical_strategy(opts.strategy) if opts and opts.strategy else None
        if req.stream and req.n > 1:
            raise InputError("n > 1 is not supported with stream: true; send n requests")
        if supporter and req.n > 1:
            raise InputError("n > 1 is not supported in Supporter mode")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.content}
                    for m in req.messages]
        turns = [{"role": m["role"], "text": m["content"]} for m in messages if m["role"] in ("user", "assistant")]
        at = next((i for i in range(len(turns) - 1, -1, -1) if turns[i]["role"] == "user"), None)
        last_user = turns[at]["text"] if at is not None else None
        if last_user is not None:
            verdict = self._check(last_user, turns[:at])
            if verdict.crisis:
                self._log_event(name, verdict, last_user)
                text = localized_escalation((opts.locale if opts else None) or self.locale, verdict.category,
                                            last_user, verdict, turns[:at])
                return Answer(name, {"crisis": True, "strategy": None, "category": verdict.category,
                                     "source": verdict.source}, iter([text]))
        kwargs = req.lm_kwargs()
        if supporter:
            if not turns or turns[-1]["role"] != "user":
                raise InputError("Supporter mode needs the conversation to end with a user message")
            return self._supporter(name, lm, turns, forced, kwargs, req.stream)
        return self._plain(name, lm, messages, kwargs, req.n, req.stream)

    def _log_event(self, model: str, verdict, text: str) -> None:
        if self.log_messages:
            log.warning("crisis event: model=%s category=%s source=%s message=%r", model, verdict.category,
                        verdict.source, text)
        else:
            log.warning("crisis event: model=%s category=%s source=%s", model, verdict.category, verdict.source)

    def _plain(self, name, lm, messages, kwargs, n, stream) -> Answer:
        meta = {"crisis": False, "strategy": None}
        if stream and hasattr(lm, "stream_tokens"):
            return _streamed(name, lm, messages, kwargs, meta)
        call = {**kwargs, "n": n}
        if hasattr(lm, "hf_model") and float(kwargs.get("temperature") or 0) > 0:
            call["cache"] = False  # a sampled reply is drawn afresh, never served from the call cache
        resp = lm.forward(messages=messages, **call)
        texts = [_content(c) for c in resp.choices]
        usage = dict(getattr(resp, "usage", None) or {})
        out = Answer(name, meta, iter(texts[:1]), int(usage.get("prompt_tokens") or 0),
                     lambda: int(usage.get("completion_tokens") or 0), kwargs.get("max_tokens"))
        out.texts = texts
        return out

    def _supporter(self, name, lm, turns, forced, kwargs, stream) -> Answer:
        program = self.program or Supporter()
        select_lm = program.select.lm or lm
        strategy, fallback = forced, False
        if strategy is None:
            with dspy.context(lm=select_lm, adapter=SmallChatAdapter()):
                strategy, fallback = program.choose(turns)
        reply_lm = program.respond.lm or lm
        inputs = {"history": turns, "strategy": strategy,
                  "strategy_definition": load_taxonomy().strategy(strategy).definition, "config": {}}
        messages = SmallChatAdapter().format(program.respond.signature, program.respond.demos, inputs)
        meta = {"crisis": False, "strategy": strategy, "strategy_forced": forced is not None,
                "strategy_fallback": fallback}
        if stream and hasattr(reply_lm, "stream_tokens"):
            return _streamed(name, reply_lm, messages, kwargs, meta)
        out = self._plain(name, reply_lm, messages, kwargs, 1, False)
        out.meta = meta
        return out


def _content(choice) -> str:
    msg = choice["message"] if isinstance(choice, dict) else choice.message
    text = msg["content"] if isinstance(msg, dict) else msg.content
    return (text or "").strip()


def _streamed(name, lm, messages, kwargs, meta) -> Answer:
    """Pieces from the local model's batch as they are decoded; stop strings cut as `generate` cuts them."""
    from extes.programs.lm.local import text_pieces  # lazy: programs.lm.local imports dspy

    req, n_prompt = lm.stream_tokens(messages, **kwargs)
    if req is None:  # not on the lean loop: the whole reply at once
        text, n_prompt, n_new = lm.generate(messages, **kwargs)
        return Answer(name, meta, iter([text]), n_prompt, lambda: n_new, kwargs.get("max_tokens"))
    pieces = _cut_at_stop(text_pieces(lm.tokenizer, req.tokens()), kwargs.get("stop"))
    return Answer(name, meta, _lstrip_first(pieces), n_prompt, lambda: len(req.new),
                  kwargs.get("max_tokens") or lm.kwargs.get("max_tokens"), req.cancel)


def _lstrip_first(pieces: Iterator[str]) -> Iterator[str]:
    started = False
    for p in pieces:
        if not started:
            p = p.lstrip()
            if not p:
                continue
            started = True
        yield p


def _cut_at_stop(pieces: Iterator[str], stop) -> Iterator[str]:
    """Hold back just enough text to never send a stop string (or its start) to the client."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not stops:
        yield from pieces
        return
    keep = max(len(s) for s in stops) - 1
    buf = ""
    for p in pieces:
        buf += p
        hits = [buf.index(s) for s in stops if s in buf]
        if hits:
            yield buf[: min(hits)]
            return
        if len(buf) > keep:
            yield buf[: len(buf) - keep]
            buf = buf[len(buf) - keep:] if keep else ""
    yield buf


def now() -> int:
    return int(time.time())
