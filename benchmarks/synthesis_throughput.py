"""Synthesis throughput against a local OpenAI-compatible server that answers after a fixed delay, and cost per
accepted dialogue at gpt-4o-mini list prices from the real token counts of the prompts this program sends.

    python benchmarks/synthesis_throughput.py --json

Ideal throughput with W workers and a server delay D is W / D calls per second; the figure is the achieved rate
(validation, dedup and fsync'ed storage included) as a fraction of it, with 1 worker as the same-run baseline.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import parse_options

from extes.programs.lm.scripted_dialogues import compose_record


class Handler(BaseHTTPRequestHandler):
    delay = 0.3
    counter = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's delayed ACK add
        # ~40 ms to every response of this test server (real API servers do not have that artifact).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        asked = body["messages"][0]["content"] + "\n" + body["messages"][-1]["content"]
        scene = asked.split("Scene: ", 1)[1].split("\n", 1)[0] if "Scene: " in asked else "Academic Stress"
        with Handler.lock:
            Handler.counter += 1
            n = Handler.counter
        time.sleep(Handler.delay)
        content = json.dumps(compose_record(scene, 10_000 + n))
        data = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": 1300, "completion_tokens": 700, "total_tokens": 2000}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def run(workers: int, target: int, base: str, round_size: int = 0) -> dict:
    from extes.programs.lm import load_lm  # lazy: programs.lm imports dspy
    from extes.programs.synthesis_run import SynthConfig, SynthesisRun

    out = tempfile.mkdtemp(prefix=f"synth-w{workers}-")
    cfg = SynthConfig(model="openai/gpt-4o-mini", out=out, target=target, workers=workers, api_base=base,
                      retries=0, uniform=True, round_size=round_size)
    lm = load_lm("openai/gpt-4o-mini", api_base=base, num_retries=0, temperature=1.0)
    r = SynthesisRun(cfg, lm)
    t0 = time.perf_counter()
    s = r.run()
    wall = time.perf_counter() - t0
    return {"workers": workers, "round_size": cfg.round_size, "calls": s["tasks"], "wall_s": round(wall, 2),
            "calls_per_s": round(s["tasks"] / wall, 2), "ideal_calls_per_s": round(workers / Handler.delay, 2),
            "fraction_of_ideal": round(s["tasks"] / wall / (workers / Handler.delay), 3)}


def main() -> None:
    args = parse_options(__doc__, workers=16, target=160, delay=0.3)
    Handler.delay = args.delay
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-benchmark")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}/v1"
    baseline = run(1, max(5, args.target // args.workers), base)
    parallel = run(args.workers, args.target, base)
    one_round = run(args.workers, args.target, base, round_size=args.target * 2)
    srv.shutdown()

    from extes.programs.dryrun import estimate  # lazy: programs.dryrun imports dspy
    from extes.programs.synthesis_run import SynthConfig

    est = estimate(SynthConfig(model="openai/gpt-4o-mini", out="", target=11000))
    result = {"server_delay_s": args.delay, "baseline": baseline, "parallel": parallel, "one_round": one_round,
              "speedup": round(parallel["calls_per_s"] / baseline["calls_per_s"], 2),
              "gpt4o_mini_usd_per_accepted": est["estimated_usd_per_accepted"],
              "gpt4o_mini_usd_for_11000": est["estimated_cost_usd"], "token_count": est["token_count"]}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
