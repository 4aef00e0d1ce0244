"""`shared_on`: one object per loaded model, even when many threads ask for it first at the same moment."""

import threading
import time
from types import SimpleNamespace

from extes.programs.lm.kv_snapshots import shared_on


def test_threads_asking_at_once_get_one_object():
    llm, made = SimpleNamespace(), []

    def make():
        time.sleep(0.05)  # a window in which an unlocked check-then-set lets every thread make its own
        made.append(threading.Lock())
        return made[-1]

    start, got = threading.Barrier(8), []

    def ask():
        start.wait()
        got.append(shared_on(llm, "_extes_lock", make))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(g is made[0] for g in got) and llm._extes_lock is made[0]
