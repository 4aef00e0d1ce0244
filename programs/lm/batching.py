"""Batched decoding for the lean decode loop: concurrent requests decode together, joining and leaving between steps.

Decoding one token of SmolLM2-135M on CPU is bound by reading the weights, not by arithmetic: torch's int4 kernel
multiplies 4 rows in about the time of one (programs/lm/q4.py). So `Batcher` runs one scheduler thread per model
that owns the decode loop. Callers `submit` a prompt and wait for the tokens (or iterate them as they come); between
two steps the scheduler prefills the prompts that arrived (each on its own KV cache, exactly as the single-sequence
loop does), picks every sequence's next token with its own logits processors, lets finished or cancelled sequences
leave, and runs one step for all that remain: the norms, projections, MLP and head on a [B, 1, D] batch, attention
per sequence over its own cache. Every row of those kernels is computed independently of the others (checked:
bit-identical to one row at a time), so at temperature 0 a batched sequence gets exactly the tokens that
`fastdecode.new_tokens` gives it alone (tested, with prompts of different lengths joining at different steps).

**Driven: one compute thread.** Measured on 2 cores (benchmarks/README.md): decoding on a thread other than the main
one ran ~2x slower than on the main one, and the main thread slowed ~2.4x while another thread that had run torch
kernels was alive (why was not established). `drive(fn)` makes a command's main thread the scheduler while `fn` (the
command's work and its worker threads) runs beside it, and while driven every kernel runs there: the prefills
(between steps; a prefill stalls the batch, which costs latency, not throughput) and the work callers hand over with
`call` (programs/lm/threads.py: the reference's perplexity pass of `extes evaluate`, likelihood scoring). `extes
evaluate` drives it (--workers 1: 121 s against 178-199 s undriven on 32 samples); `extes serve` and the others run
the undriven scheduler thread, the callers prefilling beside it.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

import torch
import torch.nn.functional as F

from extes.programs.lm import fastdecode
from extes.programs.lm.stream import DONE, SchedulerThread, StreamedRequest

log = logging.getLogger(__name__)

MAX_BATCH = 16  # beyond this the int4 kernel turns compute-bound on 2 cores and a step costs more than it saves
# Undriven, prompts are prefilled on the callers' own threads, this many at once, beside the decode loop (a prefill
# is compute-bound, ~0.5-1 s for an ESConv-sized prompt on 2 cores, and on the scheduler it stalls the batch).
PREFILLS_BESIDE = 1


class Request(StreamedRequest):
    """One submitted prompt: its tokens arrive through `tokens()` (streaming) or all at once through `result()`."""

    def __init__(self, input_ids: torch.Tensor, kwargs: dict[str, Any], adapter: str | None = None):
        super().__init__()
        self.ids = input_ids
        self.kw = kwargs
        self.adapter = adapter
        self.new: list[int] = []
        self.slot = None
        self.logits = None

    def result(self) -> torch.Tensor:
        """All new token ids ([n]), once the request is finished."""
        return torch.tensor(list(self.tokens()), dtype=torch.long)


class Batcher(SchedulerThread):
    """The scheduler thread of one model's lean decode loop (see module docstring). Thread-safe; one per model."""

    def __init__(self, model, tokenizer, max_batch: int = MAX_BATCH):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.base = fastdecode.decoder_for(model)
        if self.base is None:
            raise ValueError("batched decoding needs a LLaMA-layout model (fastdecode.supports)")
        self.max_batch = max_batch
        self._pending: collections.deque = collections.deque()
        self._prefills = threading.Semaphore(PREFILLS_BESIDE)
        self.driven = False  # True while a thread `drive`s the scheduler: then every kernel runs on it

    # -- callers -----------------------------------------------------------------------------------------------
    def plan(self, input_ids: torch.Tensor, gen: dict) -> dict[str, Any] | None:
        """The decode arguments for `generate`-style keyword arguments, or None where the lean loop does not apply
        (then the caller uses `generate`)."""
        dec, kwargs = fastdecode._plan(self.model, self.tokenizer, input_ids, gen)
        return kwargs if dec is not None else None

    def submit(self, input_ids: torch.Tensor, kwargs: dict[str, Any], adapter: str | None = None) -> Request:
        """Queue a prompt ([1, T]) with `plan`'s arguments, decoded with the LoRA `adapter` attached to the model
        (programs/lm/multi_lora.py; None: the base); it joins the batch at the next step. Prefilled on the
        caller's thread (one caller at a time, `PREFILLS_BESIDE`) while the batch keeps decoding, or by the
        scheduler while it is driven (`drive`). Returns once queued (a prefill that fails is raised by the
        request's `tokens()`)."""
        self._ensure_thread()
        req = Request(input_ids, kwargs, adapter)
        if not self.driven:
            with self._prefills:
                self._prefill(req)
        self.incoming.put(req)
        return req

    def call(self, fn):
        """Run `fn()` on the scheduler thread between two steps and return its result (or raise its error): model
        work that is not decoding, kept on the one thread that runs the model's kernels (module docstring)."""
        if threading.current_thread() is self._thread:
            return fn()
        self._ensure_thread()
        job: Future = Future()
        job.fn = fn
        self.incoming.put(job)
        return job.result()

    def generate(self, input_ids: torch.Tensor, gen: dict, adapter: str | None = None) -> torch.Tensor | None:
        """New token ids for the prompt, decoded in the shared batch (None where the lean loop does not apply)."""
        kwargs = self.plan(input_ids, gen)
        return None if kwargs is None else self.submit(input_ids, kwargs, adapter).result()

    def stats(self) -> dict[str, int]:
        """Steps run, the largest batch seen and the sequences decoding now."""
        return {"steps": self.steps, "peak_batch": self.peak_batch, "active": len(self.active),
                "queued": self.incoming.qsize()}

    # -- the scheduler -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._serve(None)

    def _serve(self, finished: threading.Event | None) -> None:
        """The scheduler's loop; with `finished`, it returns once that is set and no work is left (`drive`)."""
        with torch.inference_mode():
            while True:
                if not self.active and not self._pending:
                    if finished is not None and finished.is_set() and self.incoming.empty():
                        return
                    self._take(self.incoming.get())  # idle: sleep until work arrives
                while True:
                    try:
                        self._take(self.incoming.get_nowait())
                    except queue.Empty:
                        break
                while self._pending and len(self.active) < self.max_batch:
                    self._admit(self._pending.popleft())
                self._guarded(self._pick)
                if self.active:
                    self._guarded(self._step)

    def drive(self, fn):
        """Return `fn()`, run on a new thread while this thread is the scheduler (a command's main thread, where
        torch's kernels ran fastest: module docstring). Where a scheduler thread already runs, just `fn()`."""
        with self._start_lock:
            running = self._thread is not None and self._thread.is_alive()
            if not running:
                self._thread = threading.current_thread()
                self.driven = True
        if running:  # outside the lock: fn's workers take it to check the scheduler thread (`_ensure_thread`)
            return fn()
        result: dict[str, Any] = {}
        finished = threading.Event()

        def client():
            try:
                result["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - raised on the driving thread
                result["error"] = e
            finally:
                finished.set()
                self.incoming.put(None)  # wake the scheduler if it sleeps

        worker = threading.Thread(target=client, name="extes-driven", daemon=True)
        worker.start()
        try:
            self._serve(finished)
        except BaseException:
            with self._start_lock:  # interrupted (Ctrl-C): a scheduler thread takes over what is in flight
                self._thread, self.driven = None, False
            self._ensure_thread()
            raise
        with self._start_lock:
            self._thread, self.driven = None, False
        worker.join()
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def _take(self, item) -> None:
        """A job runs now (even with the batch full); a request waits for room in the batch (None: a wake-up)."""
        if item is None:
            return
        if isinstance(item, Future):
            try:
                item.set_result(item.fn())
            except BaseException as e:  # noqa: BLE001 - raised by the caller's result()
                item.set_exception(e)
        else:
            self._pending.append(item)

    def _prefill(self, req: Request) -> None:
        """The prompt's KV cache and first logits: the slot shares the model's modules and rotary tables (read only)
        and has its own cache. An error is kept on the request for its reader."""
        try:
            length = req.ids.shape[1] + req.kw["max_new_tokens"]
            slot = self.base.slot(length, req.adapter)
            with torch.inference_mode():
                req.logits = slot.prefill(req.ids)
            req.slot = slot
            req.pos = req.ids.shape[1]  # where the next token goes
        except Exception as e:  # noqa: BLE001 - one bad prompt must not stop the others
            req.error = e

    def _admit(self, req: Request) -> None:
        """A request joins the batch (prefilled here unless its caller did); one that was cancelled, or whose
        prefill failed, ends."""
        if not req.cancelled.is_set() and req.slot is None and req.error is None:
            self._prefill(req)
        if req.cancelled.is_set() or req.error is not None:
            req.slot = None
            req.out.put(DONE)
            return
        self.active.append(req)

    def _pick(self) -> None:
        """Each sequence's next token from its logits, as the single loop picks it; finished ones leave."""
        keep = []
        for req in self.active:
            if req.cancelled.is_set():
                req.out.put(DONE)
                continue
            kw = req.kw
            scores = kw["processors"](req.ids, req.logits[None])
            if kw["do_sample"]:
                token = int(torch.multinomial(F.softmax(scores, dim=-1), num_samples=1)[0, 0])
            else:
                token = int(scores[0].argmax())
            req.new.append(token)
            req.out.put(token)
            stop = kw["stop"]
            if token in kw["eos"] or (stop is not None and stop(req.new)) or len(req.new) >= kw["max_new_tokens"]:
                req.slot = None
                req.out.put(DONE)
                continue
            req.ids = torch.cat([req.ids, torch.tensor([[token]])], dim=1)
            keep.append(req)
        self.active = keep

    def _guarded(self, fn) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - fail the batch's requests, keep the scheduler alive
            log.exception("batched decode step failed")
            for req in self.active:
                req.error = e
                req.out.put(DONE)
            self.active = []

    def _step(self) -> None:
        """One token for every active sequence: shared kernels on the batch, attention over each one's cache; each
        row with its own LoRA adapter where sequences of several share the base (programs/lm/multi_lora.py)."""
        adapters = tuple(r.adapter for r in self.active)
        if any(a is not None for a in adapters):
            from extes.programs.lm.multi_lora import routed

            with routed(adapters):
                self._layers()
        else:
            self._layers()

    def _layers(self) -> None:
        seqs, base = self.active, self.base
        b, hd, n_kv = len(seqs), base.head_dim, base.n_kv
        self.steps += 1
        self.peak_batch = max(self.peak_batch, b)
        pos = torch.tensor([r.pos for r in seqs])
        cos, sin = base.cos[0, 0, pos][:, None, None], base.sin[0, 0, pos][:, None, None]  # [B, 1, 1, head_dim]
        h = base.embed(torch.tensor([[r.ids[0, -1].item()] for r in seqs]))
        for i, layer in enumerate(base.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(b, 1, -1, hd).transpose(1, 2)
            k = attn.k_proj(x).view(b, 1, -1, hd).transpose(1, 2)
            v = attn.v_proj(x).view(b, 1, -1, hd).transpose(1, 2)
            q = q * cos + fastdecode._rotate_half(q) * sin
            k = k * cos + fastdecode._rotate_half(k) * sin
            outs = []
            for j, r in enumerate(seqs):
                p = r.pos
                r.slot.k[i][:, :, p:p + 1] = k[j:j + 1]
                r.slot.v[i][:, :, p:p + 1] = v[j:j + 1]
                kk, vv = r.slot.k[i][:, :, :p + 1], r.slot.v[i][:, :, :p + 1]
                outs.append(F.scaled_dot_product_attention(q[j:j + 1].reshape(1, n_kv, -1, hd), kk, vv,
                                                           scale=attn.scaling).reshape(1, 1, -1))
            h = h + attn.o_proj(torch.cat(outs))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        logits = base.head(base.norm(h))[:, 0].float()
        for j, r in enumerate(seqs):
            r.logits = logits[j]
            r.pos += 1


_MAKE = threading.Lock()


def batcher_for(model, tokenizer) -> Batcher | None:
    """The model's `Batcher` (built once, kept on the model), or None where the lean loop does not apply."""
    if not fastdecode.supports(model):
        return None
    with _MAKE:
        b = getattr(model, "_extes_batcher", None)
        if b is None:
            b = Batcher(model, tokenizer)
            model._extes_batcher = b
    return b
