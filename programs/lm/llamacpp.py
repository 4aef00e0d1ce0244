"""`llamacpp/<file.gguf>`: a GGUF model run by llama.cpp in-process (the optional extra `llamacpp`).

`llamacpp/smollm2-135m-instruct` is the embedded GGUF (programs/lm/weights.py finds it); any other argument is a
path to a `.gguf` file. The prompt is the model's own chat template (from the GGUF's metadata); stop strings,
token counts and streaming come from llama.cpp. `Literal` outputs are scored: the prompt is evaluated once and
each allowed value's tokens are scored from the logits of the positions before them, so the adapter picks a
strategy by likelihood, as with `local/` models. With `batched=True` (what `extes serve` uses) concurrent
`generate`/`stream` calls decode together in the model's `LlamaBatcher` (programs/lm/llamacpp_batch.py) instead of
one at a time under the lock; at temperature 0 the replies are the same, except that the batcher starts a prompt
from the cells of an earlier one (a conversation's previous turn), whose reply tokens were computed one at a time
and round slightly differently, so a continued conversation's reply can differ late (llamacpp_batch.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy

from extes.errors import ModelError
from extes.programs.lm.kv_snapshots import KVSnapshots, score_choices, shared_on
from extes.programs.lm.llamacpp_batch import Sampling, batcher_for
from extes.programs.lm.registry import Backend, Capabilities, Option, sampling_options
from extes.programs.lm.response import chat_response
from extes.programs.lm.weights import EMBEDDED, embedded_gguf

INSTALL_HINT = "pip install 'extes[llamacpp]' (llama-cpp-python)"
_LOADED: dict[tuple[str, int], Any] = {}
_LOAD_LOCK = threading.Lock()


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise ModelError(f"llamacpp/ models need llama-cpp-python; install it with: {INSTALL_HINT}") from None
    return llama_cpp


def gguf_path(name: str) -> Path:
    """The GGUF file a `llamacpp/<name>` string names: an embedded model or a `.gguf` path."""
    if name in EMBEDDED:
        return embedded_gguf(name)
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        known = ", ".join(f"llamacpp/{k}" for k in EMBEDDED)
        raise ModelError(f"llamacpp/{name}: no such .gguf file; give llamacpp/<path/to/model.gguf> or {known}")
    return path


def _load(path: Path, n_ctx: int):
    """One llama.cpp model per (file, context size) per process; copies of the LM share it."""
    key = (str(path.resolve()), n_ctx)
    with _LOAD_LOCK:
        if key not in _LOADED:
            llama_cpp = _llama_cpp()
            # EXTES_THREADS caps the threads as it does torch's (programs/lm/local.py), e.g. on a shared machine.
            threads = int(os.environ.get("EXTES_THREADS") or 0) or max(1, os.cpu_count() or 1)
            _LOADED[key] = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                                           n_threads_batch=threads, verbose=False)
        return _LOADED[key]


class LlamaCppLM(dspy.BaseLM):
    """A GGUF chat model on llama.cpp, usable as a DSPy LM; `stream` and `score_choices` as `LocalLM` has them."""

    def __init__(self, path: str | os.PathLike, *, model: str, max_tokens: int = 160, temperature: float = 0.0,
                 top_p: float = 1.0, n_ctx: int = 2048, cache: bool = True, batched: bool = False,
                 prefix_reuse: bool = True):
        super().__init__(model=model, model_type="chat", temperature=temperature, max_tokens=max_tokens,
                         top_p=top_p, cache=cache)
        self.path = Path(path)
        self.n_ctx = n_ctx
        self.batched = batched
        self.prefix_reuse = prefix_reuse
        self.llm = _load(self.path, n_ctx)
        # One lock and one set of saved KV caches per loaded model: LMs on the same GGUF share its context.
        self._lock = shared_on(self.llm, "_extes_lock", threading.Lock)
        self.snapshots = shared_on(self.llm, "_extes_snapshots", lambda: KVSnapshots(self.llm))
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.path}: the GGUF carries no chat template; use a chat (instruct) model")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self.llm.token_eos()
        self.eos_text = self.llm.detokenize([eos], special=True).decode("utf-8", "ignore") if eos >= 0 else ""
        bos = self.llm.token_bos()
        bos_text = self.llm.detokenize([bos], special=True).decode("utf-8", "ignore") if bos >= 0 else ""
        self._template = Jinja2ChatFormatter(template=template, eos_token=self.eos_text, bos_token=bos_text)

    def __deepcopy__(self, memo):
        """Optimizers deep-copy programs: the copy shares the loaded model and lock, as `BaseLM.copy` does."""
        return self.copy()

    # -- generation -------------------------------------------------------------------------------------------
    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        return self._template(messages=messages).prompt

    def _sampling(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.kwargs, **kwargs}
        stop = merged.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        # A mild repetition penalty keeps small models from looping, as LocalLM does.
        return {"max_tokens": int(merged.get("max_tokens") or 160), "temperature": float(merged.get("temperature")
                or 0.0), "top_p": float(merged.get("top_p") or 1.0), "repeat_penalty": 1.15,
                "stop": [*stop, self.eos_text] if self.eos_text else stop}

    def generate(self, messages: list[dict[str, str]], **kwargs) -> tuple[str, int, int]:
        """(text, prompt tokens, completion tokens) for a chat."""
        if self.batched:
            req, n_prompt = self.stream_tokens(messages, **kwargs)
            text = self.tokenizer.decode(req.result())
            stops = [s for s in self._sampling(kwargs)["stop"] if s in text]
            return _cut(text, stops).strip(), n_prompt, len(req.new)
        text = self.prompt_text(messages)
        with self._lock:
            prompt = self._tokens(text)
            self.snapshots.restore_for(prompt)
            out = self.llm.create_completion(text, **self._sampling(kwargs))
            self.snapshots.save(prompt)
        usage = out["usage"]
        return out["choices"][0]["text"].strip(), usage["prompt_tokens"], usage["completion_tokens"]

    # -- batched decoding -------------------------------------------------------------------------------------
    @property
    def batcher(self):
        """The loaded model's `LlamaBatcher` (one per model; built on first use, with this LM's `prefix_reuse`)."""
        return batcher_for(self.llm, n_ctx=self.n_ctx, threads=self.llm.n_threads, reuse=self.prefix_reuse)

    @property
    def tokenizer(self):
        """`decode(ids)` for `local.text_pieces` (the streamed pieces `extes serve` sends)."""
        return _Detokenizer(self.llm)

    def stream_tokens(self, messages: list[dict[str, str]], **kwargs):
        """(the batch's `Request` for this chat, prompt tokens), as `LocalLM.stream_tokens`: `request.tokens()`
        yields the new token ids as they are decoded, `request.cancel()` stops it."""
        s = self._sampling(kwargs)
        ids = self.llm.tokenize(self.prompt_text(messages).encode("utf-8"), add_bos=True, special=True)
        sampling = Sampling(max_tokens=s["max_tokens"], temperature=s["temperature"], top_p=s["top_p"],
                            stop=s["stop"], repeat_penalty=s["repeat_penalty"])
        return self.batcher.submit(ids, sampling), len(ids)

    def stream(self, messages: list[dict[str, str]], **kwargs) -> Iterator[str]:
        """Yield the reply piece by piece as llama.cpp decodes it (for `extes chat`)."""
        if self.batched:
            from extes.programs.lm.local import text_pieces  # lazy: programs.lm.local loads transformers' stack

            req, _ = self.stream_tokens(messages, **kwargs)
            stops = [s for s in self._sampling(kwargs)["stop"] if s]
            hold = max((len(s) for s in stops), default=1) - 1  # never send the start of a stop string
            text, sent = "", 0
            for piece in text_pieces(self.tokenizer, req.tokens()):
                text += piece
                hits = [s for s in stops if s in text]
                end = len(_cut(text, hits)) if hits else max(sent, len(text) - hold)
                if not sent:
                    lead = len(text[:end]) - len(text[:end].lstrip())  # the reply starts after a newline or space
                    sent = lead if end > lead else 0
                if end > sent:
                    yield text[sent:end]
                    sent = end
                if hits:
                    req.cancel()
                    return
            if len(text) > sent:
                yield text[sent:] if sent else text.lstrip()
            return
        text = self.prompt_text(messages)
        with self._lock:
            prompt = self._tokens(text)
            self.snapshots.restore_for(prompt)
            first = True
            for chunk in self.llm.create_completion(text, stream=True, **self._sampling(kwargs)):
                piece = chunk["choices"][0]["text"]
                if first:  # the template leaves the reply to start after a newline or space
                    piece, first = piece.lstrip(), not piece.strip()
                if piece:
                    yield piece
            self.snapshots.save(prompt)

    def forward(self, prompt=None, messages=None, **kwargs):
        kwargs.pop("rollout_id", None)
        kwargs.pop("cache", None)
        n = int(kwargs.pop("n", 1) or 1)
        return chat_response(self, messages or [{"role": "user", "content": prompt or ""}], n, **kwargs)

    # -- scoring ----------------------------------------------------------------------------------------------
    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def score_choices(self, messages: list[dict[str, str]], choices: list[str], prefix: str = "") -> list[float]:
        """Mean log-probability of each choice as the start of the assistant's reply (after `prefix`).

        As `TeacherLM.score_choices` (`kv_snapshots.score_choices`): the prompt is evaluated once and kept, so the
        next call with the same history (the adapter scores one field after another; the arena and evaluation ask
        the same conversation again) evaluates only what is new; each choice is one batch on top of it.
        """
        base = self._tokens(self.prompt_text(messages) + prefix)
        self.last_prompt_tokens = len(base)
        conts = [self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False) for c in choices]
        with self._lock:
            return score_choices(self.llm, base, conts, self.snapshots)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class _Detokenizer:
    """The one tokenizer method `text_pieces` calls, on llama.cpp's vocabulary."""

    def __init__(self, llm):
        self.llm = llm

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", "replace")


def _cut(text: str, stops: list[str]) -> str:
    """`text` up to the first of the stop strings it holds."""
    return text[: min(text.index(s) for s in stops)] if stops else text


def build(model: str, name: str, **options) -> LlamaCppLM:
    _llama_cpp()
    return LlamaCppLM(gguf_path(name), model=model, **options)


BACKEND = Backend(
    prefix="llamacpp/",
    usage="llamacpp/<file.gguf>",
    build=build,
    options=(
        *sampling_options(),
        Option("n_ctx", int, "Context window, in tokens.", min=256, max=131072),
        Option("cache", bool, "Accepted for compatibility (llama.cpp reuses a shared prompt prefix itself)."),
        Option("batched", bool, "Decode concurrent calls together (continuous batching; what `extes serve` uses)."),
        Option("prefix_reuse", bool, "Batched: start a prompt from the cells of an earlier one that shares its "
               "prefix (default; off: every prompt prefilled whole, replies reproducible run to run)."),
    ),
    capabilities=Capabilities(can_score=True, can_stream=True, in_process=True),
)
