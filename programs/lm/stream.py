"""The part of a batched decoding request that both batchers share: a queue of new token ids, cancel, stream.

`programs/lm/batching.py` (the torch batcher) and `programs/lm/llamacpp_batch.py` (llama.cpp's) each decode their
own way; the caller's side is this one: `tokens()` streams the ids, `cancel()` (or closing the stream) lets the
request leave the batch before the next step, and the batcher ends it with `finish(error)`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

DONE = object()  # what a batcher puts on a request's queue after its last token


class StreamedRequest:
    """New token ids arrive on `out` from the batcher's thread; `error` is raised to the reader when set."""

    def __init__(self):
        self.out: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self.error: BaseException | None = None

    def cancel(self) -> None:
        """Stop decoding this request (a client went away); it leaves the batch before the next step."""
        self.cancelled.set()

    def tokens(self) -> Iterator[int]:
        """Yield the new token ids as they are decoded; closing the iterator early cancels the request."""
        try:
            while True:
                item = self.out.get()
                if item is DONE:
                    if self.error is not None:
                        raise self.error
                    return
                yield item
        finally:
            self.cancel()


class SchedulerThread:
    """The batcher's one scheduler thread (`_loop`), started on first use and again if it died, with the state both
    batchers keep: the queue of submitted requests, those decoding now, and step counts for `stats()`."""

    thread_name = "extes-batcher"

    def __init__(self):
        self.incoming: queue.Queue = queue.Queue()
        self.active: list = []
        self.steps = 0
        self.peak_batch = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        raise NotImplementedError
