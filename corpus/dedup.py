"""Near-duplicate detection: word 3-gram shingles, MinHash signatures and LSH banding for candidates, then the exact
Jaccard on the candidates. Linear in the corpus size; exact where it decides."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import defaultdict

import numpy as np

_WORD = re.compile(r"[a-z0-9']+")
NUM_PERM, BANDS = 64, 16
_MASK = (1 << 61) - 1
_rng = np.random.default_rng(20231027)
_A = _rng.integers(1, _MASK, NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, _MASK, NUM_PERM, dtype=np.uint64)


def shingles(text: str, n: int = 3) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + n]) for i in range(max(0, len(words) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def minhash(sh: set[str]) -> np.ndarray:
    if not sh:
        return np.zeros(NUM_PERM, dtype=np.uint64)
    h = np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") & _MASK for s in sh],
                 dtype=np.uint64)
    # (a*h + b) mod p, vectorized; uint64 wraps, which is a fine universal-ish hash for banding.
    return ((h[:, None] * _A[None, :] + _B[None, :]) & np.uint64(_MASK)).min(axis=0)


class DedupIndex:
    """Thread-safe index of accepted texts; `nearest` returns the most similar indexed id and its Jaccard."""

    def __init__(self):
        self._shingles: dict[str, set[str]] = {}
        self._buckets: dict[tuple[int, bytes], list[str]] = defaultdict(list)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._shingles)

    def _bands(self, sig: np.ndarray):
        rows = NUM_PERM // BANDS
        for b in range(BANDS):
            yield b, sig[b * rows : (b + 1) * rows].tobytes()

    def nearest(self, text: str) -> tuple[str | None, float]:
        sh = shingles(text)
        sig = minhash(sh)
        with self._lock:
            candidates = {i for key in self._bands(sig) for i in self._buckets.get(key, ())}
            best = max(((jaccard(sh, self._shingles[i]), i) for i in candidates), default=(0.0, None))
        return best[1], best[0]

    def add(self, key: str, text: str) -> None:
        sh = shingles(text)
        sig = minhash(sh)
        with self._lock:
            self._shingles[key] = sh
            for band in self._bands(sig):
                self._buckets[band].append(key)
