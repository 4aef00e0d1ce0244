"""Saved KV caches for llama.cpp, so prompts that take turns in one context each keep their evaluated prefix.

llama.cpp (through llama-cpp-python) reuses the longest prefix that the live KV cache shares with a new prompt.
Turn-mode synthesis asks three prompts in turn, the help-seeker's, the strategy choice and the supporter's reply,
each opening with its own instructions, so every call shared nothing with the call before and evaluated its whole
prompt again: on the 1.5B teacher and 2 cores that was most of a dialogue's time, and it grows with the history.
`KVSnapshots` keeps the last few sequences' KV cells (`llama_state_seq_get_data` of sequence 0, about 28 KiB per
token for Qwen2.5-1.5B, no logits) with the tokens they hold; before a prompt is evaluated, the snapshot sharing
the longest prefix with it is restored if that beats what the live cache shares. The replies are unchanged: only
prompt tokens (evaluated in a batch) are saved, and their cells are bit for bit what a cold evaluation computes
(see `save`); the prompt's last token is always decoded again (llama-cpp-python replays it when the prefix covers
the whole prompt), so sampling starts from fresh logits.

`score_choices` is the likelihood scoring both llama.cpp LMs (`TeacherLM`, `LlamaCppLM`) use for `Literal` outputs:
the shared prompt is brought into the cache once (live prefix or snapshot reused), each choice is one short batch
on top of it, and the prompt is kept for the next call with the same history. `shared_on` keeps one lock and one
`KVSnapshots` per loaded model, so every LM object on a GGUF uses the same ones.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any

# Restoring costs a copy of the snapshot; below this many extra tokens, evaluating them again is as cheap.
MIN_GAIN = 32


@dataclass
class Snapshot:
    tokens: list[int]
    data: bytes


def shared_prefix(a, b) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class KVSnapshots:
    """Up to `slots` saved KV caches of one `llama_cpp.Llama`; the caller holds the model's lock."""

    def __init__(self, llm, slots: int = 4):
        self.llm = llm
        self.slots = slots
        self.saved: list[Snapshot] = []  # most recently used last
        self.restored = 0  # counters for tests and logs
        self.reused_tokens = 0

    def restore_for(self, tokens: list[int]) -> int:
        """Bring back the saved cache that shares the most of `tokens`, if it beats the live one; the prefix kept."""
        if not self.saved or self.slots <= 0:
            return 0
        live = shared_prefix(self.llm._input_ids.tolist(), tokens)
        best = max(self.saved, key=lambda s: shared_prefix(s.tokens, tokens))
        gain = shared_prefix(best.tokens, tokens)
        if gain < live + MIN_GAIN:
            return live
        import llama_cpp

        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, 0, -1)
        buf = (ctypes.c_uint8 * len(best.data)).from_buffer_copy(best.data)
        if llama_cpp.llama_state_seq_set_data(ctx.ctx, buf, len(best.data), 0) != len(best.data):
            ctx.kv_cache_seq_rm(-1, 0, -1)  # a failed restore leaves nothing half-loaded: evaluate afresh
            self.llm.n_tokens = 0
            return 0
        n = len(best.tokens)
        self.llm.input_ids[:n] = best.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True  # the logits are not the restored tokens': decode the last one again
        ctx.kv_cache_seq_rm(-1, gain, -1)
        self.llm.n_tokens = gain
        self.saved.remove(best)
        self.saved.append(best)
        self.restored += 1
        self.reused_tokens += gain
        return gain

    def save(self, prompt: list[int] | None = None) -> None:
        """Keep the live cache, cut back to the part it shares with `prompt` (the call's prompt tokens): what was
        generated is left out. It replaces the saved one it extends (the same prompt a turn later), else the oldest.

        Only prompt tokens are kept because llama.cpp rounds differently when it decodes one token at a time (as it
        generates) than in a batch (as it evaluates a prompt): reusing generated tokens' cells changed later
        greedy replies (max logit difference 0.56 on SmolLM2), while batch-evaluated cells are the same bits however
        the prompt was chunked, so a restored prompt gives exactly the logits a cold evaluation gives.
        """
        if self.slots <= 0 or self.llm.n_tokens == 0:
            return
        import llama_cpp

        if prompt is not None:
            keep = shared_prefix(self.llm._input_ids.tolist(), prompt)
            if keep < self.llm.n_tokens:
                self.llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                self.llm.n_tokens = keep
                self.llm._requires_eval = True  # the logits are a generated token's: the next call decodes again
            if keep == 0:
                return

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        if not n:
            return
        self.keep(Snapshot(self.llm._input_ids.tolist(), bytes(buf)[:n]))

    def keep(self, snap: Snapshot) -> None:
        """Add `snap`, dropping the snapshots it makes useless (any it extends or equals), then the oldest."""
        self.saved = [s for s in self.saved if shared_prefix(s.tokens, snap.tokens) < len(s.tokens)]
        self.saved.append(snap)
        del self.saved[: max(0, len(self.saved) - self.slots)]


_SHARED = threading.Lock()


def shared_on(llm, name: str, make) -> Any:
    """An object kept on the loaded model, so that every LM object (and copy) on it uses the same one (made once even
    when several threads ask first at the same time: two model locks on one model would not exclude each other)."""
    value = getattr(llm, name, None)
    if value is None:
        with _SHARED:
            value = getattr(llm, name, None)
            if value is None:
                value = make()
                setattr(llm, name, value)
    return value


def eval_prefix(llm, tokens: list[int]) -> None:
    """Bring llama.cpp's KV cache to exactly `tokens`, reusing the longest prefix it already holds (only the rest is
    evaluated)."""
    common = shared_prefix(llm._input_ids.tolist(), tokens)
    llm.n_tokens = common
    if common < len(tokens):
        llm.eval(tokens[common:])
    else:
        llm._ctx.kv_cache_seq_rm(-1, common, -1)


def logits_after(llm, tokens: list[int], n_past: int):
    """Logits at every position of `tokens` decoded after the first `n_past` cached tokens (then dropped)."""
    import numpy as np

    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
    llm._ctx.decode(llm._batch)
    rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(tokens), llm.n_vocab())).astype(np.float64)
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    return rows


def score_choices(llm, base: list[int], conts: list[list[int]], snapshots: KVSnapshots | None = None) -> list[float]:
    """Mean log-probability of each continuation after the prompt `base` (the caller holds the model's lock).

    `base[:-1]` is brought into the cache (a snapshot or the live prefix reused) and kept; each continuation is one
    batch of `base[-1:] + cont`, whose row j predicts token j + 1."""
    import numpy as np

    if snapshots is not None:
        snapshots.restore_for(base[:-1])
    eval_prefix(llm, base[:-1])
    if snapshots is not None:
        snapshots.save(base[:-1])
    scores = []
    for cont in conts:
        if not cont:
            scores.append(float("-inf"))
            continue
        rows = logits_after(llm, base[-1:] + cont, len(base) - 1)
        logp = rows - np.logaddexp.reduce(rows, axis=1, keepdims=True)
        scores.append(float(np.mean([logp[j, t] for j, t in enumerate(cont)])))
    llm._requires_eval = True  # the logits are a choice's: a completion must decode its prompt's end again
    return scores
