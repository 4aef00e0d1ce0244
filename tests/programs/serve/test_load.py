"""A bounded load test on loopback: concurrent clients mixing good, streamed, malformed, unknown-model, oversized and
abandoned requests. Every well-formed request is answered, every bad one gets a 4xx JSON error, the server survives
and its memory returns to within 10% of the start.

The suite runs 500 requests from 32 clients against the scripted LM; `EXTES_LOAD_MODEL=local/smollm2-135m-instruct`
runs the same against the embedded model (the benchmark in benchmarks/README.md)."""

import gc
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

from extes.programs.lm import load_lm
from extes.programs.safety import SafetyChecker
from extes.programs.serve.app import create_app
from extes.programs.serve.engine import Engine

N = int(os.environ.get("EXTES_LOAD_N", 500))
CLIENTS = int(os.environ.get("EXTES_LOAD_CLIENTS", 32))
MODEL = os.environ.get("EXTES_LOAD_MODEL", "scripted")
_LOCAL = threading.local()
MSG = [{"role": "user", "content": "I have been feeling lonely since I moved to a new city."}]


def _one(url: str, kind: str, rng: random.Random) -> tuple[str, int, bool]:
    """(kind, status, whether the answer was what that kind must get)."""
    api = url + "/v1/chat/completions"
    if not hasattr(_LOCAL, "client"):  # one connection pool per client thread, as a real client keeps
        _LOCAL.client = httpx.Client(timeout=600)
    c = _LOCAL.client
    if kind == "normal":
        r = c.post(api, json={"messages": MSG, "max_tokens": 16})
        return kind, r.status_code, r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
    if kind == "stream":
        with c.stream("POST", api, json={"messages": MSG, "max_tokens": 16, "stream": True}) as r:
            lines = [x for x in r.iter_lines() if x]
        return kind, r.status_code, r.status_code == 200 and lines[-1] == "data: [DONE]" if lines else False
    if kind == "disconnect":
        with c.stream("POST", api, json={"messages": MSG, "max_tokens": 64, "stream": True}) as r:
            next(r.iter_lines())  # the first event, then hang up
        return kind, r.status_code, r.status_code == 200
    if kind == "malformed":
        r = c.post(api, content=b'{"messages": [{"role": "user", "content": "hi"', headers={
            "Content-Type": "application/json"})
    elif kind == "unknown_model":
        r = c.post(api, json={"model": f"nope-{rng.randrange(9)}", "messages": MSG})
    else:  # huge
        r = c.post(api, json={"messages": [{"role": "user", "content": "a" * 100_000}]})
    return kind, r.status_code, 400 <= r.status_code < 500 and "message" in r.json()["error"]


def test_load_mixed_requests_from_concurrent_clients(serve):
    lm = load_lm(MODEL, **({"max_tokens": 16} if MODEL.startswith("local/") else {}))
    server = serve(create_app(Engine({"m": lm}, checker=SafetyChecker(rules_only=True))))
    proc = psutil.Process()
    kinds = ["normal"] * 4 + ["stream"] * 3 + ["disconnect", "malformed", "unknown_model", "huge"]
    rng = random.Random(15)
    plan = [rng.choice(kinds) for _ in range(N)]
    with ThreadPoolExecutor(CLIENTS) as ex:
        # warm up at full concurrency (worker threads, connection pools, allocator arenas), then take the baseline
        list(ex.map(lambda k: _one(server.url, k, random.Random(k)), plan[: 2 * CLIENTS]))
        gc.collect()
        before = proc.memory_info().rss
        t0 = time.perf_counter()
        results = list(ex.map(lambda k: _one(server.url, k, random.Random(k)), plan))
        wall = time.perf_counter() - t0
    bad = [r for r in results if not r[2]]
    assert not bad, bad[:5]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    gc.collect()
    time.sleep(0.5)
    after = proc.memory_info().rss
    report = {"model": MODEL, "requests": N, "clients": CLIENTS, "wall_s": round(wall, 1),
              "rss_before_mb": round(before / 2**20), "rss_after_mb": round(after / 2**20),
              "by_kind": {k: plan.count(k) for k in kinds}}
    print(json.dumps(report))
    assert after <= before * 1.10, report
