"""Where a local model's torch kernels run: on the thread of its batched decoding, once it has one.

Measured on 2 cores (benchmarks/README.md): decoding on a thread other than the main one ran ~2x slower with two
torch threads than on the main thread, and the main thread itself slowed ~2.4x while another thread that had run a
torch kernel was alive. So while a command's main thread runs the model's `Batcher` (programs/lm/batching.py:
`Batcher.drive`, as `extes evaluate` does), model work that is not decoding (a perplexity pass, likelihood scoring
of choices) is handed to it, between two of its steps. Which thread computes a kernel does not change its
result (the number of threads can); only the wall time changes.
"""

from __future__ import annotations


def on_model_thread(model, fn):
    """`fn()` on the thread that decodes `model`'s batches while a command's thread drives it (`Batcher.drive`),
    else here (beside an undriven scheduler thread, as measured for `extes serve`)."""
    batcher = getattr(model, "_extes_batcher", None)
    return batcher.call(fn) if batcher is not None and batcher.driven else fn()
