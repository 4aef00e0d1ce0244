"""Prefix caching for the lean decode loop: the KV of a prompt's turns, reused by every prompt that starts with them.

Consecutive calls on one conversation repeat almost all of their prompt: `extes evaluate` scores turn k+1 of a
dialogue with the history of turn k plus two turns, the perplexity pass of turn k+1 starts with the whole sequence
of turn k, a chat's next reply repeats the conversation so far. A prompt is prefilled in chunks that end where a
chat turn starts (the template's turn marker, `<|im_start|>` for SmolLM2 and Qwen; chunks of at least `MIN_CHUNK`
tokens, so short turns go with the next); the keys and values of each chunk are kept under a digest of all the
tokens up to its end, so a later prompt that starts with the same turns copies them instead of recomputing them,
and only its new turns run through the model. A model whose template has no marker the cache knows is chunked
every `FIXED_CHUNK` tokens.

Results do not depend on what is cached. Where the chunks end is a function of the tokens alone, and a chunk's keys
and values depend only on the tokens up to its end and are always computed the same way (the same positions over
the same earlier chunks), so a copied chunk holds exactly the bits a fresh prefill computes: the logits after a
prompt are the same whether nothing, a little or most of it was cached (tested). That is what keeps `--workers 8`
identical to `--workers 1` at temperature 0, whatever the threads' timing. (Prefilling turn by turn rounds
differently from one pass over the whole prompt, by ~1e-5 of the logits' scale in fp32, and a chunk of a few dozen
rows uses the matrix kernels less well than one of hundreds; `EXTES_PREFIX_CACHE_MB=0` turns the cache and the
chunking off.)

The cache is per model (kept on its `LlamaDecoder`, shared by the batcher's slots), bounded in bytes
(`EXTES_PREFIX_CACHE_MB`, default 256: ~5,700 tokens of SmolLM2-135M), least recently used first out, and emptied
when a weight of the model changes (an optimizer step, `copy_`, a parameter given new storage), which torch's
version counters and storage pointers tell; an edit through `param.data += ...` bypasses both, so code that edits
weights that way after decoding must call `LlamaDecoder.prefix.clear()`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import torch

from extes.errors import ModelError

MIN_CHUNK = 48  # a chunk of fewer rows wastes the matrix kernels (a 32-row chunk costs ~1.9x a token of a 320-row one)
FIXED_CHUNK = 128  # for templates without a known turn marker
DEFAULT_MB = 256
TURN_MARKERS = ("<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "<|user|>", "<|assistant|>")


def budget_bytes() -> int:
    """The cache's size from `EXTES_PREFIX_CACHE_MB` (0 turns prefix caching off); a value that is not a size is an
    error naming the variable, not a silent default."""
    raw = os.environ.get("EXTES_PREFIX_CACHE_MB", "").strip()
    if not raw:
        return DEFAULT_MB * 2**20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0 or mb == float("inf"):
        raise ModelError(f"EXTES_PREFIX_CACHE_MB={raw!r}: give the prefix cache's size in MiB (0 turns it off)")
    return int(mb * 2**20)


def turn_marks(tokenizer) -> frozenset[int]:
    """The token ids that start a chat turn in this tokenizer's template (empty when none is known)."""
    vocab = tokenizer.get_vocab()
    return frozenset(vocab[m] for m in TURN_MARKERS if m in vocab)


def chunk_ends(tokens: list[int], marks: frozenset[int]) -> list[int]:
    """Where the prompt's chunks end (exclusive), the last one at len(tokens): before each turn marker at least
    MIN_CHUNK tokens after the previous end, or every FIXED_CHUNK tokens without markers."""
    n = len(tokens)
    if not marks:
        return list(range(FIXED_CHUNK, n, FIXED_CHUNK)) + [n] if n else []
    ends, last = [], 0
    for p in range(1, n):
        if tokens[p] in marks and p - last >= MIN_CHUNK:
            ends.append(p)
            last = p
    return ends + [n] if n else []


def chunk_keys(tokens: list[int], ends: list[int], adapter: str | None = None) -> list[bytes]:
    """The digest of tokens[:end] for every chunk end, after the name of the LoRA `adapter` the keys and values are
    computed with (programs/lm/multi_lora.py; none for the base)."""
    h = hashlib.blake2b(digest_size=16)
    if adapter is not None:
        h.update(b"adapter\0" + adapter.encode() + b"\0")
    keys, start = [], 0
    for end in ends:
        h.update(b"".join(t.to_bytes(4, "little", signed=True) for t in tokens[start:end]))
        keys.append(h.copy().digest())
        start = end
    return keys


class PrefixCache:
    """Chunks of keys and values ([1, n_kv, length, head_dim] per layer) by the digest of the tokens up to their
    end. Thread-safe: stored chunks are never written again."""

    def __init__(self, max_bytes: int, params=None, marks: frozenset[int] = frozenset()):
        self.max_bytes = max_bytes
        self.marks = marks
        self.chunks: OrderedDict[bytes, tuple[list[torch.Tensor], list[torch.Tensor]]] = OrderedDict()
        self.bytes = 0
        self.hit_tokens = self.computed_tokens = 0
        self.lock = threading.Lock()
        self._params = list(params) if params is not None else []
        self._version = self._weights_version()

    def _weights_version(self) -> int:
        # in-place ops (optimizer steps, `copy_`) bump a tensor's version; `param.data = ...` moves its storage
        return hash(tuple((p._version, p.data_ptr()) for p in self._params))

    def check_weights(self) -> None:
        """Empty the cache if a weight changed since the chunks were computed."""
        if self._weights_version() != self._version:
            self.clear()

    def clear(self) -> None:
        with self.lock:
            self.chunks.clear()
            self.bytes = 0
            self._version = self._weights_version()

    def restore(self, keys: list[bytes], ends: list[int], k: list[torch.Tensor], v: list[torch.Tensor]) -> int:
        """Copy the leading cached chunks of `keys` (ending at `ends`) into the caches k, v (per layer,
        [1, n_kv, L, head_dim]); the position after the last chunk copied (they stop at the first not cached)."""
        found = []
        with self.lock:
            for key in keys:
                chunk = self.chunks.get(key)
                if chunk is None:
                    break
                self.chunks.move_to_end(key)
                found.append(chunk)
        start = 0
        for (ck, cv), end in zip(found, ends, strict=False):
            for i in range(len(k)):
                k[i][:, :, start:end] = ck[i]
                v[i][:, :, start:end] = cv[i]
            start = end
        with self.lock:
            self.hit_tokens += start
        return start

    def store(self, key: bytes, k: list[torch.Tensor], v: list[torch.Tensor], start: int, end: int) -> None:
        """Keep the chunk at positions start..end of the caches k, v under `key`."""
        ck = [x[:, :, start:end].clone() for x in k]
        cv = [x[:, :, start:end].clone() for x in v]
        size = sum(t.numel() * t.element_size() for t in ck + cv)
        with self.lock:
            self.computed_tokens += end - start
            if size > self.max_bytes or key in self.chunks:
                return
            self.chunks[key] = (ck, cv)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (ok, ov) = self.chunks.popitem(last=False)
                self.bytes -= sum(t.numel() * t.element_size() for t in ok + ov)

    def count(self, n: int) -> None:
        """Note n prompt tokens computed and not kept (a prompt's last chunk)."""
        with self.lock:
            self.computed_tokens += n

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"chunks": len(self.chunks), "bytes": self.bytes, "hit_tokens": self.hit_tokens,
                    "computed_tokens": self.computed_tokens}
