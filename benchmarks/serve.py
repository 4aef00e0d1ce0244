"""`extes serve` on the embedded model against llama.cpp's OpenAI-compatible server on the same GGUF.

    python benchmarks/serve.py --json            # 1, 4 and 16 concurrent clients, both servers, ratios in one run
    python benchmarks/serve.py --engine torch    # extes serve on its torch batcher (default: auto, i.e. llama.cpp's
                                                 # continuous batcher when llama-cpp-python is installed)
    python benchmarks/serve.py --workload same   # every request the same one message (the figures before 12-03)

Each server runs as a child process on loopback (llama.cpp: `python -m llama_cpp.server --model <the embedded
GGUF> --n_threads T`; extes: `extes serve` with EXTES_THREADS=T). Every client sends streamed chat completions,
`max_tokens` new tokens each, one after the other. `--workload esconv` (the default): client c plays ESConv dev
dialogue c (real data, `--data`): its k-th request is the dialogue up to its k-th seeker message, the supporter's real
turns as the assistant's, so each prompt repeats the one before and adds a turn, as a chat client's do.
`--workload same`: every request is one fixed support message (a server that caches the last prompt computes
nothing; the figures before 2026-12-03 15:00 UTC). Aggregate decode throughput is all completion tokens over the
wall time of the level, latency is per request (send to last byte), p50/p95 over the level. Peak RSS of each server
process is sampled every 50 ms.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from _common import parse_options

from extes.corpus.formats.base import ReadOptions
from extes.corpus.formats.esconv_tsv import read_esconv_tsv

EXTES = str(Path(sys.executable).with_name("extes"))
MSG = [{"role": "user", "content": "I failed my exam again and I feel like I'm letting everyone down."}]
DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "esconv" / "devWithStrategy_short.tsv"


def conversations(path: Path, n: int, per: int) -> list[list[list[dict]]]:
    """n ESConv dialogues, each as its first `per` requests: the turns up to (and with) each seeker message. Each
    level of clients gets dialogues of its own (a server keeps nothing from an earlier level's)."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such ESConv file; pass --data PATH or --workload same")
    out = []
    for d in read_esconv_tsv(path, ReadOptions(unknown_labels="keep")).dialogues:
        msgs = []
        for t in d.turns:
            if msgs and msgs[-1]["role"] == t.role:  # a speaker's consecutive turns as one message
                msgs[-1] = {"role": t.role, "content": msgs[-1]["content"] + " " + t.text}
            else:
                msgs.append({"role": t.role, "content": t.text})
        # a request ends at a seeker message that the supporter answered next
        ends = [i + 1 for i, m in enumerate(msgs) if m["role"] == "user" and i + 1 < len(msgs)][:per]
        if len(ends) == per:
            out.append([msgs[:k] for k in ends])
        if len(out) == n:
            return out
    raise SystemExit(f"{path}: fewer than {n} dialogues with {per} seeker messages")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, cmd: list[str], port: int, env: dict):
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.peak = 0
        self._stop = False
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"server did not start: {' '.join(cmd)}")
            time.sleep(0.5)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        p = psutil.Process(self.proc.pid)
        while not self._stop:
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self):
        self._stop = True
        self.proc.terminate()
        self.proc.wait(60)


def one(url: str, model: str, max_tokens: int, messages: list[dict] = MSG) -> tuple[float, int]:
    t0 = time.perf_counter()
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    tokens = pieces = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                pieces += 1
    return time.perf_counter() - t0, tokens or pieces


def level(url: str, model: str, clients: int, per_client: int, max_tokens: int, chats=None) -> dict:
    def client(c: int) -> list[tuple[float, int]]:
        return [one(url, model, max_tokens, chats[c][k] if chats else MSG) for k in range(per_client)]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        results = [r for rs in ex.map(client, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    lat = sorted(r[0] for r in results)
    return {"clients": clients, "requests": len(results), "tok_s": round(sum(r[1] for r in results) / wall, 1),
            "p50_s": round(statistics.median(lat), 2), "p95_s": round(lat[max(0, int(0.95 * len(lat)) - 1)], 2)}


def main() -> None:
    a = parse_options(__doc__, levels="1,4,16", per_client=2, max_tokens=32, threads=2, skip_llamacpp=False,
                      engine="auto", workload="esconv", data=str(DEV))
    from extes.programs.lm.weights import embedded_gguf  # lazy: programs.lm.weights imports dspy

    env = {**os.environ, "EXTES_THREADS": str(a.threads)}
    servers = {"extes": ([EXTES, "serve", "--max-tokens", str(a.max_tokens), "--engine", a.engine],
                         "smollm2-135m-instruct")}
    if not a.skip_llamacpp:
        try:
            import llama_cpp.server.app  # noqa: F401  (its server needs the [server] extra's packages)
        except ImportError as e:
            raise SystemExit(f"llama.cpp's server cannot start ({e}): pip install 'llama-cpp-python[server]', "
                             "or pass --skip-llamacpp") from None
        servers["llama.cpp"] = ([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf(
            "smollm2-135m-instruct")), "--n_threads", str(a.threads), "--n_ctx", "2048",
            # by default a new request interrupts the one streaming (its client gets a cut stream): queue them instead
            "--interrupt_requests", "False"], "smollm2")
    if a.workload not in ("esconv", "same"):
        raise SystemExit(f"--workload {a.workload}: give esconv or same")
    counts = [int(c) for c in a.levels.split(",")]
    chats = conversations(Path(a.data), sum(counts), a.per_client) if a.workload == "esconv" else None
    starts = [sum(counts[:i]) for i in range(len(counts))]
    report: dict = {"threads": a.threads, "max_tokens": a.max_tokens, "engine": a.engine, "workload": a.workload,
                    "load_avg_start": os.getloadavg()[0]}
    for name, (cmd, model) in servers.items():
        port = _port()
        srv = Server([*cmd, "--port", str(port)], port, env)
        try:
            one(srv.url, model, 4)  # warm-up
            report[name] = {"levels": [level(srv.url, model, c, a.per_client, a.max_tokens,
                                             chats[at:at + c] if chats else None)
                                       for c, at in zip(counts, starts, strict=True)]}
        finally:
            srv.stop()
        report[name]["peak_rss_mb"] = round(srv.peak / 2**20)
    ex = report["extes"]["levels"]
    report["ratios"] = {"extes_top_vs_own_single": round(ex[-1]["tok_s"] / ex[0]["tok_s"], 2)}
    if "llama.cpp" in report:
        ll = report["llama.cpp"]["levels"]
        report["ratios"].update({"extes_top_vs_llamacpp_top": round(ex[-1]["tok_s"] / ll[-1]["tok_s"], 2),
                                 "single_latency_extes_over_llamacpp": round(ex[0]["p50_s"] / ll[0]["p50_s"], 2)})
    report["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1) if a.json else report)


if __name__ == "__main__":
    main()
