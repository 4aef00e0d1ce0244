"""`local/<name-or-path>`: a Hugging Face causal LM run in-process, usable as a DSPy LM."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy

from extes.errors import ModelError
from extes.programs.lm.context import fit_messages
from extes.programs.lm.registry import Backend, Capabilities, Option, sampling_options
from extes.programs.lm.response import memoized_forward
from extes.programs.lm.split_gguf import SPLIT_MODELS, assemble
from extes.programs.lm.threads import on_model_thread
from extes.programs.lm.weights import resolve_local

log = logging.getLogger(__name__)



class LocalLM(dspy.BaseLM):
    """A local Hugging Face causal LM (the embedded SmolLM2 by default), with an optional peft adapter.

    Chat template from the tokenizer; temperature, top-p, max tokens and stop strings per call; token counts from
    the tokenizer. `score_choices` gives each candidate continuation's mean log-probability, which the project's
    adapter uses to pick `Literal` outputs such as the 16 strategies.
    """

    def __init__(self, name: str = "smollm2-135m-instruct", *, adapter: str | os.PathLike | None = None,
                 temperature: float = 0.0, max_tokens: int = 160, top_p: float = 1.0, cache: bool = True,
                 precision: str = "auto", model: str | None = None, share_base: bool = False):
        folder, _ = resolve_local(name)
        # The user's own model string (`local/path/to/folder`, not the folder's basename), so that a saved program's
        # LM state loads back from where it was trained.
        super().__init__(model=model or f"{BACKEND.prefix}{name}", model_type="chat", temperature=temperature,
                         max_tokens=max_tokens, cache=cache, top_p=top_p)
        self.folder = folder
        self.adapter = str(adapter) if adapter else None
        if precision not in PRECISIONS:
            raise ModelError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, Any] = OrderedDict()
        # With share_base, a plain LoRA rides on the one copy of the base that every LM of this model shares, and
        # sequences of several adapters decode in one batch (programs/lm/multi_lora.py); `route` names it there.
        self.route = None
        from extes.programs.lm import multi_lora  # lazy: programs.lm.multi_lora imports torch

        why = multi_lora.routable(Path(self.adapter)) if self.adapter and share_base else "not asked"
        if self.adapter and share_base and why:
            log.info("adapter %s gets its own copy of the base: %s", self.adapter, why)
        if not why:
            self.tokenizer, self.hf_model = _load(folder, None, precision)
            self.route = multi_lora.attach(self.hf_model, Path(self.adapter))
        else:
            self.tokenizer, self.hf_model = _load(folder, self.adapter, precision)
        # where the lean loop's prefix cache cuts prompts into reusable chunks (programs/lm/prefix_cache.py)
        from extes.programs.lm.prefix_cache import turn_marks  # lazy: programs.lm.prefix_cache imports torch

        self.hf_model._extes_turn_marks = turn_marks(self.tokenizer)

    def __deepcopy__(self, memo):
        """DSPy's optimizers deep-copy programs again and again: the copy shares the weights, tokenizer, lock and
        call cache (they are read-only or thread-safe) and gets its own history and kwargs, as `BaseLM.copy`."""
        return self.copy()

    # -- generation -------------------------------------------------------------------------------------------
    def _inputs(self, messages: list[dict[str, str]], reserve: int | None = None):
        """The prompt's token ids, with the oldest turns dropped when they would not fit the context window."""
        messages = self.fit(messages, reserve)
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        return ids["input_ids"]

    @property
    def context_window(self) -> int:
        """The model's window, capped at the lean decode loop's (programs/lm/fastdecode.py), or less with
        EXTES_CONTEXT_TOKENS. A prompt past the loop's 4,096 tokens fell back to `generate`, whose growing cache
        copied itself at every token: a 700-turn history took 20 minutes on a shared 2-core machine."""
        from extes.programs.lm.fastdecode import decoder_for  # lazy: programs.lm.fastdecode imports torch

        window = int(getattr(self.hf_model.config, "max_position_embeddings", 0) or 2048)
        dec = decoder_for(self.hf_model)
        window = min(window, dec.max_len) if dec is not None else window
        return min(window, int(os.environ.get("EXTES_CONTEXT_TOKENS") or window))

    def fit(self, messages: list[dict[str, str]], reserve: int | None = None) -> list[dict[str, str]]:
        """`messages` cut to the system prompt and the recent turns that fit, leaving `reserve` tokens for the reply."""
        reserve = int(reserve if reserve is not None else self.kwargs.get("max_tokens") or 160)

        def count(msgs):
            ids = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
            return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

        return fit_messages(messages, count, self.context_window - reserve, model=self.model)

    def _gen_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.kwargs, **kwargs}
        temperature = float(merged.get("temperature") or 0.0)
        out: dict[str, Any] = {"max_new_tokens": int(merged.get("max_tokens") or 160),
                               "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        # Small models loop ("I'm here to help you ... I'm here to help you"); a mild penalty keeps replies readable.
        out.update(repetition_penalty=float(merged.get("repetition_penalty") or 1.15), no_repeat_ngram_size=4)
        if temperature > 0:
            out.update(do_sample=True, temperature=temperature, top_p=float(merged.get("top_p") or 1.0))
        else:
            out.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        stop = merged.get("stop")
        if stop:
            out.update(stop_strings=[stop] if isinstance(stop, str) else list(stop), tokenizer=self.tokenizer)
        return out

    def generate(self, messages: list[dict[str, str]], **kwargs) -> tuple[str, int, int]:
        """(text, prompt tokens, completion tokens) for a chat. Concurrent calls decode together in the model's
        batch (programs/lm/batching.py), with the tokens each would get alone at temperature 0."""
        gen = self._gen_kwargs(kwargs)
        input_ids = self._inputs(messages, gen["max_new_tokens"])
        new = self._new_tokens(input_ids, gen)
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text = _cut_stop(text, kwargs.get("stop") or self.kwargs.get("stop"))
        if len(new) >= gen["max_new_tokens"]:
            text = _last_sentence(text)
        return text, input_ids.shape[1], len(new)

    def _new_tokens(self, input_ids, gen: dict):
        import torch

        # lazy: programs.lm.batching imports torch, which `extes --help` and the light commands never load
        from extes.programs.lm.batching import batcher_for

        batcher = batcher_for(self.hf_model, self.tokenizer)
        new = batcher.generate(input_ids, gen, self.route) if batcher is not None else None
        if new is not None:
            return new
        from extes.programs.lm.fastdecode import new_tokens
        from extes.programs.lm.multi_lora import routed

        # transformers' generate: one sequence at a time
        with self._lock, torch.inference_mode(), routed(self.route):
            return new_tokens(self.hf_model, self.tokenizer, input_ids, gen)

    def stream_tokens(self, messages: list[dict[str, str]], **kwargs):
        """(the batch's `Request` for this chat, prompt tokens), or (None, n) where the lean loop does not apply.
        `request.tokens()` yields the new token ids as they are decoded; `request.cancel()` stops it."""
        gen = self._gen_kwargs(kwargs)
        input_ids = self._inputs(messages, gen["max_new_tokens"])
        from extes.programs.lm.batching import batcher_for  # lazy: programs.lm.batching imports torch

        batcher = batcher_for(self.hf_model, self.tokenizer)
        plan = batcher.plan(input_ids, gen) if batcher is not None else None
        if plan is None:
            return None, input_ids.shape[1]
        return batcher.submit(input_ids, plan, self.route), input_ids.shape[1]

    def stream(self, messages: list[dict[str, str]], **kwargs) -> Iterator[str]:
        """Yield the reply piece by piece as it is decoded (for `extes chat` and `extes serve`)."""
        import torch
        from transformers import TextIteratorStreamer

        req, _ = self.stream_tokens(messages, **kwargs)
        if req is not None:
            yield from text_pieces(self.tokenizer, req.tokens())
            return
        gen = self._gen_kwargs(kwargs)
        input_ids = self._inputs(messages, gen["max_new_tokens"])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run():
            from extes.programs.lm.multi_lora import routed

            with self._lock, torch.inference_mode(), routed(self.route):
                self.hf_model.generate(input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer, **gen)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from streamer
        worker.join()

    def forward(self, prompt=None, messages=None, **kwargs):
        return memoized_forward(self, self._memo, prompt, messages, **kwargs)

    # -- scoring ----------------------------------------------------------------------------------------------
    def score_choices(self, messages: list[dict[str, str]], choices: list[str], prefix: str = "") -> list[float]:
        """Mean log-probability of each choice as the start of the assistant's reply (after `prefix`).

        The shared prompt runs once and the choices run as one batch over its keys and values, so 16 labels cost
        one prompt pass plus 16 short continuations instead of 16 full passes. On a LLaMA-layout model (the embedded
        one) the prompt goes through the lean loop's prefix cache (programs/lm/fastdecode.py, prefix_cache.py):
        consecutive turns of a conversation repeat most of their prompt, and only the new turns are computed; the
        choices then attend to the cached prompt (`LlamaDecoder.continuations`). No model lock: the slot's cache is
        its own. Elsewhere, transformers' forward under the model's lock.
        """
        import torch

        from extes.programs.lm.fastdecode import decoder_for  # lazy: programs.lm.fastdecode imports torch

        prompt = self._inputs(messages, reserve=64)[0].tolist()  # room for the longest label
        self.last_prompt_tokens = len(prompt)
        prefix_ids = self.tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        base = prompt + prefix_ids
        width = max(len(c) for c in conts)
        pad = self.tokenizer.pad_token_id or 0
        rows = torch.tensor([c + [pad] * (width - len(c)) for c in conts])
        dec = decoder_for(self.hf_model)
        if dec is not None and len(base) + width <= dec.max_len:
            def run():
                with torch.inference_mode():
                    slot = dec.slot(len(base), adapter=self.route)
                    last = slot.hidden(torch.tensor([base]), len(base) - 1)
                    first = slot.head(slot.norm(last))[0, -1].float()
                    return first, slot.continuations(rows, len(base))

            first, rest = on_model_thread(self.hf_model, run)
            logits = torch.cat([first[None, None].expand(len(choices), 1, -1), rest[:, :-1]], dim=1)
        else:
            mask = torch.tensor([[1] * (len(base) + len(c)) + [0] * (width - len(c)) for c in conts])

            def run():
                from extes.programs.lm.multi_lora import routed

                with self._lock, torch.inference_mode(), routed(self.route):
                    # Only the last position's logits: all of them would be [prompt, vocab] floats (1.6 GB at 8k).
                    first = self.hf_model(input_ids=torch.tensor([base]), use_cache=True, logits_to_keep=1)
                    cache = first.past_key_values
                    cache.batch_repeat_interleave(len(choices))
                    out = self.hf_model(input_ids=rows, attention_mask=mask, cache=cache, use_cache=True).logits
                    return first.logits[:, -1:], out

            first, rest = on_model_thread(self.hf_model, run)
            # Position j of a choice is predicted by the logits one step before it: the prompt's last for j = 0.
            logits = torch.cat([first.expand(len(choices), 1, -1), rest[:, :-1]], dim=1).float()
        logp = torch.log_softmax(logits, dim=-1)
        return [logp[i, torch.arange(len(c)), torch.tensor(c)].mean().item() for i, c in enumerate(conts)]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def dump_state(self) -> dict[str, Any]:
        state = super().dump_state()
        state["adapter"] = self.adapter
        state["precision"] = self.precision
        state["share_base"] = self.route is not None
        return state

    @classmethod
    def load_state(cls, state: dict[str, Any], *, allow_custom_lm_class: bool = False) -> LocalLM:
        """Rebuild from `dump_state` (a distilled program's LM: base model, adapter, sampling settings)."""
        return cls(BACKEND.argument(state["model"]), model=state["model"], adapter=state.get("adapter"),
                   temperature=state.get("temperature") or 0.0, max_tokens=state.get("max_tokens") or 160,
                   top_p=state.get("top_p") or 1.0, precision=state.get("precision") or "auto",
                   share_base=bool(state.get("share_base")))


def text_pieces(tokenizer, tokens) -> Iterator[str]:
    """Text pieces of a token stream, each complete (a multi-byte character split over tokens waits for its end)."""
    new: list[int] = []
    shown = ""
    try:
        for token in tokens:
            new.append(token)
            text = tokenizer.decode(new, skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue
            if len(text) > len(shown):
                yield text[len(shown):]
                shown = text
    finally:
        close = getattr(tokens, "close", None)
        if close:
            close()


def _cut_stop(text: str, stop) -> str:
    if not stop:
        return text.strip()
    for s in [stop] if isinstance(stop, str) else stop:
        if s in text:
            text = text[: text.index(s)]
    return text.strip()


def _last_sentence(text: str) -> str:
    """Cut a reply that hit the token limit back to its last full sentence (when it has one)."""
    ends = [text.rfind(p) for p in (". ", "! ", "? ", ".\n", "!\n", "?\n")]
    ends.append(len(text) - 1 if text[-1:] in ".!?" else -1)
    end = max(ends)
    return text[: end + 1].strip() if end > 0 else text


PRECISIONS = ("auto", "q4", "bf16", "fp32")
_LOADED: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}


def _load(folder: Path, adapter: str | None, precision: str = "fp32"):
    """Load (tokenizer, model) once per process; apply a peft adapter when given; then set the precision.

    Decoding a small model on CPU is bound by memory traffic, not arithmetic: fp32 reads 540 MB of weights per
    token (~18 tok/s on 2 cores), bf16 half that (~28 tok/s). `q4` packs every linear whose weights lie on a 4-bit
    grid (the embedded GGUF's Q4_1/Q8_0 blocks, codes recovered exactly: programs/lm/q4.py) for torch's int4 CPU
    kernel and keeps the rest in bf16: a quarter of bf16's bytes, weights within bf16 rounding of the GGUF's.
    Requantizing (int8) (dynamic or
    per-channel) broke SmolLM2-135M's output and is not offered (benchmarks/README.md). `auto` is q4 where the
    kernel exists and the CPU has native bf16 (AVX-512-BF16, AMX), fp32 on other CPUs (AVX2: bf16 and the int4
    kernel are emulated there, ~8x slower prefill; measured in benchmarks/README.md), else bf16. An adapter is
    merged into the weights before the cast (its merged linears are no
    longer 4-bit, so they stay bf16).
    """
    key = (str(folder), adapter, precision)
    if key in _LOADED:
        return _LOADED[key]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # EXTES_THREADS caps torch's threads: on a machine shared with other jobs, spinning OpenMP threads that wait for
    # a busy core made decoding 13x slower than one thread (measured: 22 tokens in 40 s vs 3 s).
    torch.set_num_threads(int(os.environ.get("EXTES_THREADS") or 0) or max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(folder)
    # Weights stored in bf16 (the 1.5B teacher's conversion) hold nothing that fp32 would add: loading them as
    # they are halves the peak memory (3 GB, not 6 GB) unless fp32 is asked for.
    stored = json.loads((Path(folder) / "config.json").read_text()).get("dtype")
    dtype = torch.bfloat16 if stored == "bfloat16" and precision != "fp32" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    from extes.programs.lm import q4  # lazy: programs.lm.q4 imports torch

    if precision == "auto" and not q4.cpu_has_native_bf16() and dtype == torch.float32:
        # Without native bf16 (AVX2 CPUs) fp32 is the fastest: the int4 kernel and bf16 are emulated there.
        precision = "fp32"
    if adapter:
        model = apply_adapter(model, Path(adapter))
        if precision != "fp32":
            model = model.merge_and_unload()
    model.eval()
    if precision in ("auto", "q4"):
        if q4.available():
            packed, kept = q4.pack_q4(model, None if adapter else Path(folder) / q4.cache_name())
            log.info("q4: %d linears packed from their 4-bit codes, %d kept as floats", packed, kept)
        elif precision == "q4":
            raise ModelError("precision q4 needs torch's int4 CPU kernel (_weight_int4pack_mm_for_cpu); use bf16")
    if precision != "fp32":
        model = model.to(torch.bfloat16)
    log.info("loaded %s in %.1f s", folder.name, time.perf_counter() - t0)
    _LOADED[key] = (tok, model)
    return tok, model


def apply_adapter(model, adapter: Path):
    """`model` wrapped with the peft adapter in folder `adapter`, or a one-line ModelError saying what to give; one
    warning when the adapter was trained on another prompt shape than this version serves (programs/prompt_shape.py).
    """
    if not (adapter / "adapter_config.json").exists():
        raise ModelError(f"--adapter {adapter}: no adapter_config.json there; give a folder saved by `extes tune`")
    from peft import PeftModel

    # Imported here, not at the top: programs.prompt_shape needs programs.adapter, which imports this package's
    # registry, so a top-level import would be circular.
    from extes.programs.prompt_shape import check_adapter_shape

    try:
        wrapped = PeftModel.from_pretrained(model, str(adapter))
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise ModelError(
            f"--adapter {adapter}: it does not fit this base model ({first}); use the base it was trained on"
        ) from None
    check_adapter_shape(adapter)  # after the load: an adapter that does not fit fails with that error alone
    return wrapped


def build(model: str, name: str, *, adapter: str | None = None, **options):
    if adapter and not os.path.isdir(adapter):
        raise ModelError(f"--adapter {adapter}: no such folder; give the folder written by `extes tune`")
    if _runs_on_llamacpp(name, adapter):  # the offline teacher (`make teacher`): llama.cpp when it is installed
        from extes.programs.lm.teacher import TeacherLM  # lazy: programs.lm.teacher imports dspy

        options.pop("precision", None)
        return TeacherLM(assemble(SPLIT_MODELS[name]), model_id=model, **options)
    return LocalLM(name, model=model, adapter=adapter, **options)


def _runs_on_llamacpp(name: str, adapter: str | None) -> bool:
    """A split GGUF runs on llama.cpp when it is installed, unless an adapter (a peft folder, which only
    transformers applies) is given or EXTES_LOCAL_BACKEND=transformers asks for the fallback."""
    if name not in SPLIT_MODELS or adapter or os.environ.get("EXTES_LOCAL_BACKEND") == "transformers":
        return False
    from extes.programs.lm.teacher import available  # lazy: programs.lm.teacher imports dspy

    return available()


OPTIONS = (
    Option("adapter", str, "A peft adapter folder (from `extes tune` or `extes distill`)."),
    *sampling_options(),
    Option("cache", bool, "Serve identical calls from the in-memory cache."),
    Option("precision", str, "Weights in memory.", choices=PRECISIONS),
    Option("share_base", bool, "A LoRA adapter rides on the one shared copy of the base (programs/lm/multi_lora.py)."),
)
BACKEND = Backend(prefix="local/", usage="local/<name-or-path>", build=build, options=OPTIONS,
                  capabilities=Capabilities(can_score=True, can_stream=True, trainable=True, in_process=True))
