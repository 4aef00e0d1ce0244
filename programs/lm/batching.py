"""Batched decoding for the lean decode loop: concurrent requests decode together, joining and leaving between steps.

Decoding one token of SmolLM2-135M on CPU is bound by reading the weights, not by arithmetic: torch's int4 kernel
multiplies 4 rows in about the time of one (programs/lm/q4.py). So `Batcher` runs one scheduler thread per model
that owns the decode loop. Callers `submit` a prompt and wait for the tokens (or iterate them as they come); between
two steps the scheduler prefills newly arrived prompts (each on its own KV cache, exactly as the single-sequence
loop does), picks every sequence's next token with its own logits processors, lets finished or cancelled sequences
leave, and runs one step for all that remain: the norms, projections, MLP and head on a [B, 1, D] batch, attention
per sequence over its own cache. Every row of those kernels is computed independently of the others (checked:
bit-identical to one row at a time), so at temperature 0 a batched sequence gets exactly the tokens that
`fastdecode.new_tokens` gives it alone (tested, with prompts of different lengths joining at different steps).
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from typing import Any

import torch
import torch.nn.functional as F

from extes.programs.lm import fastdecode
from extes.programs.lm.stream import DONE, SchedulerThread, StreamedRequest

log = logging.getLogger(__name__)

MAX_BATCH = 16  # beyond this the int4 kernel turns compute-bound on 2 cores and a step costs more than it saves


class Request(StreamedRequest):
    """One submitted prompt: its tokens arrive through `tokens()` (streaming) or all at once through `result()`."""

    def __init__(self, input_ids: torch.Tensor, kwargs: dict[str, Any]):
        super().__init__()
        self.ids = input_ids
        self.kw = kwargs
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

    # -- callers -----------------------------------------------------------------------------------------------
    def plan(self, input_ids: torch.Tensor, gen: dict) -> dict[str, Any] | None:
        """The decode arguments for `generate`-style keyword arguments, or None where the lean loop does not apply
        (then the caller uses `generate`)."""
        dec, kwargs = fastdecode._plan(self.model, self.tokenizer, input_ids, gen)
        return kwargs if dec is not None else None

    def submit(self, input_ids: torch.Tensor, kwargs: dict[str, Any]) -> Request:
        """Queue a prompt ([1, T]) with `plan`'s arguments; returns at once."""
        self._ensure_thread()
        req = Request(input_ids, kwargs)
        self.incoming.put(req)
        return req

    def generate(self, input_ids: torch.Tensor, gen: dict) -> torch.Tensor | None:
        """New token ids for the prompt, decoded in the shared batch (None where the lean loop does not apply)."""
        kwargs = self.plan(input_ids, gen)
        return None if kwargs is None else self.submit(input_ids, kwargs).result()

    def stats(self) -> dict[str, int]:
        """Steps run, the largest batch seen and the sequences decoding now."""
        return {"steps": self.steps, "peak_batch": self.peak_batch, "active": len(self.active),
                "queued": self.incoming.qsize()}

    # -- the scheduler -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                if not self.active:
                    self._admit(self.incoming.get())  # idle: sleep until work arrives
                while len(self.active) < self.max_batch:
                    try:
                        self._admit(self.incoming.get_nowait())
                    except queue.Empty:
                        break
                self._guarded(self._pick)
                if self.active:
                    self._guarded(self._step)

    def _admit(self, req: Request) -> None:
        if req.cancelled.is_set():
            req.out.put(DONE)
            return
        try:
            length = req.ids.shape[1] + req.kw["max_new_tokens"]
            slot = copy.copy(self.base)  # shares modules and rotary tables; gets its own KV cache
            slot.k = slot.v = None
            slot._cache(length)
            req.logits = slot.forward(req.ids, 0)
            req.slot = slot
            req.pos = req.ids.shape[1]  # where the next token goes
        except Exception as e:  # noqa: BLE001 - one bad prompt must not stop the others
            req.error = e
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
        """One token for every active sequence: shared kernels on the batch, attention over each one's cache."""
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
