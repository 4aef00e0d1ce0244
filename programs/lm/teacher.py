"""`TeacherLM`: a GGUF run through llama.cpp (`llama-cpp-python`, the `llamacpp` extra), usable as a DSPy LM.

This is how `local/qwen2.5-coder-1.5b-instruct`, the offline teacher, runs when llama.cpp is installed (`make
teacher`): its Q4_K_M blocks stay quantized and llama.cpp's kernels decode several times faster than the same
model de-quantized to bf16 in transformers (the fallback, `LocalLM`, when the extra is absent). The interface is
`LocalLM`'s: chat template from the GGUF, temperature/top-p/max tokens/stop per call, token counts from the model's
tokenizer, and `score_choices` so the project's adapter picks `Literal` outputs (the 16 strategies) by likelihood.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy

from extes.errors import ModelError
from extes.programs.lm.kv_snapshots import KVSnapshots, score_choices, shared_on
from extes.programs.lm.response import memoized_forward

log = logging.getLogger(__name__)

INSTALL = 'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF" pip install "llama-cpp-python>=0.3" (or: make teacher)'
_LOADED: dict[tuple[str, int], Any] = {}


def available() -> bool:
    """Whether llama-cpp-python can be imported (the `llamacpp` extra)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    """`EXTES_LLAMACPP_THREADS`, else half the CPUs (one per physical core, at least 1).

    llama.cpp's threads wait for each other by spinning, so a thread more than the cores that are free costs far
    more than it brings: on this shared 2-core machine 2 threads decoded 0.16 tok/s and 1 thread 1.65 tok/s.
    """
    env = os.environ.get("EXTES_LLAMACPP_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ModelError(f"EXTES_LLAMACPP_THREADS={env!r}: give a positive number of threads")
        return int(env)
    return max(1, (os.cpu_count() or 2) // 2)


class TeacherLM(dspy.BaseLM):
    """A GGUF model in-process through llama.cpp (see the module docstring)."""

    def __init__(self, gguf: str | os.PathLike, *, model_id: str | None = None, temperature: float = 0.0,
                 max_tokens: int = 160, top_p: float = 1.0, cache: bool = True, n_ctx: int = 8192,
                 threads: int | None = None, kv_slots: int = 4):
        self.gguf = Path(gguf)
        super().__init__(model=model_id or f"local/{self.gguf.stem}", model_type="chat", temperature=temperature,
                         max_tokens=max_tokens, cache=cache, top_p=top_p)
        self.n_ctx = n_ctx
        self._memo: OrderedDict[str, Any] = OrderedDict()
        self.llm = _load(self.gguf, n_ctx, threads)
        # One lock per loaded model: two TeacherLMs built on the same GGUF share its llama.cpp context.
        self._lock = shared_on(self.llm, "_extes_lock", threading.Lock)
        # Prompts that take turns (seeker, strategy choice, reply) each keep their evaluated prefix (kv_snapshots).
        self.snapshots = shared_on(self.llm, "_extes_snapshots", lambda: KVSnapshots(self.llm, kv_slots))

    def __deepcopy__(self, memo):
        """Optimizers deep-copy programs: copies share the loaded model, lock and call cache (as `LocalLM`)."""
        return self.copy()

    # -- generation -------------------------------------------------------------------------------------------
    def _sampling(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.kwargs, **kwargs}
        temperature = float(merged.get("temperature") or 0.0)
        out: dict[str, Any] = {
            "max_tokens": int(merged.get("max_tokens") or 160),
            "temperature": temperature,
            "top_p": float(merged.get("top_p") or 1.0) if temperature > 0 else 1.0,
            # The trial repeated one reply five times without it; 1.1 is llama.cpp's usual setting.
            "repeat_penalty": float(merged.get("repetition_penalty") or 1.1),
        }
        if temperature <= 0:
            out["top_k"] = 1  # greedy: the same prompt gives the same text
        if merged.get("seed") is not None:
            out["seed"] = int(merged["seed"])
        stop = merged.get("stop")
        if stop:
            out["stop"] = [stop] if isinstance(stop, str) else list(stop)
        if merged.get("response_format"):
            out["response_format"] = merged["response_format"]  # {"type": "json_object"}: a JSON grammar
        return out

    def generate(self, messages: list[dict[str, str]], **kwargs) -> tuple[str, int, int]:
        """(text, prompt tokens, completion tokens) for a chat."""
        with self._lock:
            prompt = self.prompt_tokens(messages)
            self.snapshots.restore_for(prompt)
            out = self.llm.create_chat_completion(messages=messages, **self._sampling(kwargs))
            self.snapshots.save(prompt)
        usage = out.get("usage") or {}
        text = (out["choices"][0]["message"].get("content") or "").strip()
        return text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)

    def stream(self, messages: list[dict[str, str]], **kwargs) -> Iterator[str]:
        """Yield the reply piece by piece as it is decoded (for `extes chat`)."""
        with self._lock:
            prompt = self.prompt_tokens(messages)
            self.snapshots.restore_for(prompt)
            for chunk in self.llm.create_chat_completion(messages=messages, stream=True, **self._sampling(kwargs)):
                piece = chunk["choices"][0].get("delta", {}).get("content")
                if piece:
                    yield piece
            self.snapshots.save(prompt)

    def forward(self, prompt=None, messages=None, **kwargs):
        rollout = kwargs.get("rollout_id")
        if rollout is not None and kwargs.get("seed") is None:  # a rollout samples the same tokens in every run
            kwargs["seed"] = zlib.crc32(str(rollout).encode("utf-8"))
        return memoized_forward(self, self._memo, prompt, messages, **kwargs)

    # -- scoring ----------------------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat prompt (with the generation prompt) as the model's tokens, rendered by the GGUF's template."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.gguf.name} has no chat template in its metadata; use a chat (instruct) GGUF")
        vocab = self.llm._model

        def piece(key: str) -> str:
            tid = meta.get(key)
            return vocab.token_get_text(int(tid)) if tid is not None else ""

        text = Jinja2ChatFormatter(template, piece("tokenizer.ggml.eos_token_id"),
                                   piece("tokenizer.ggml.bos_token_id"))(messages=messages).prompt
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bool(self.llm._model.add_bos_token()), special=True)

    def score_choices(self, messages: list[dict[str, str]], choices: list[str], prefix: str = "") -> list[float]:
        """Mean log-probability of each choice as the start of the assistant's reply (after `prefix`).

        The shared prompt is evaluated once (and kept, so the next call with the same history reuses it); each
        choice then costs one short batch of its own tokens on top of that KV cache.
        """
        base = self.prompt_tokens(messages)
        if prefix:
            base += self.llm.tokenize(prefix.encode("utf-8"), add_bos=False)
        self.last_prompt_tokens = len(base)
        conts = [self.llm.tokenize(c.encode("utf-8"), add_bos=False) for c in choices]
        with self._lock:
            return score_choices(self.llm, base, conts, self.snapshots)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def dump_state(self) -> dict[str, Any]:
        state = super().dump_state()
        state["gguf"] = str(self.gguf)
        return state

    @classmethod
    def load_state(cls, state: dict[str, Any], *, allow_custom_lm_class: bool = False) -> TeacherLM:
        """Rebuild from `dump_state`."""
        return cls(state["gguf"], model_id=state.get("model"), temperature=state.get("temperature") or 0.0,
                   max_tokens=state.get("max_tokens") or 160, top_p=state.get("top_p") or 1.0)


def _load(gguf: Path, n_ctx: int, threads: int | None):
    """Load a GGUF once per process (llama.cpp maps the file, so this takes about a second)."""
    key = (str(gguf), n_ctx)
    if key in _LOADED:
        return _LOADED[key]
    try:
        from llama_cpp import Llama
    except ImportError:
        raise ModelError(f"{gguf.name} through llama.cpp needs llama-cpp-python; install it with: {INSTALL}") from None
    t0 = time.perf_counter()
    n = threads or default_threads()
    try:
        llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=n, n_threads_batch=n, verbose=False)
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{gguf}: llama.cpp could not load it ({str(e).splitlines()[0][:120]}); "
                         "give a valid GGUF file") from None
    log.info("loaded %s through llama.cpp in %.1f s", gguf.name, time.perf_counter() - t0)
    if not _LOADED:
        atexit.register(_close_all)
    _LOADED[key] = llm
    return llm


def _close_all() -> None:
    """Free the models before the interpreter tears down llama_cpp's bindings (else `Llama.__del__` prints a
    TypeError at exit)."""
    for llm in _LOADED.values():
        llm.close()
    _LOADED.clear()
