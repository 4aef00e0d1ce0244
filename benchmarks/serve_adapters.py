"""`extes serve` with two LoRA adapters: one shared copy of the base (one batch for all) against a copy per adapter.

    python benchmarks/serve_adapters.py --json                     # r 8 on q_proj,v_proj (`extes tune`'s default)
    python benchmarks/serve_adapters.py --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --r 16

Both servers run in one run, as child processes on loopback, on the embedded model with the torch engine and
EXTES_THREADS=T: `extes serve --adapter kind=A --adapter brief=B` (shared: programs/lm/multi_lora.py) and the same
with `--adapter-copies` (each adapter on its own copy of the base, peft's `PeftModel`, each in its own batch). The
two adapters are LoRAs with random non-zero weights at the given rank and targets: what a request costs depends on
their shapes, not on what they learned. Each level sends `clients` concurrent streamed requests at a time, spread
evenly over the base and the two adapters, every request with its own seeker message: the opening user turns of
the seed dialogues (assets/seeds, real data), so that no reply comes from a call cache. Aggregate decode throughput
is all completion tokens over the level's wall time; latency is per request (send to last byte); peak RSS of each
server process is sampled every 50 ms.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from _common import parse_options
from serve import EXTES, Server, _port

MODELS = ("smollm2-135m-instruct", "kind", "brief")


def seed_openings() -> list[str]:
    """The first user turn of every seed dialogue."""
    out = []
    for path in sorted(Path(__file__).resolve().parents[1].joinpath("assets", "seeds").glob("*.yaml")):
        for d in yaml.safe_load(path.read_text()).get("dialogues", []):
            first = next((t["user"] for t in d.get("turns", []) if "user" in t), None)
            if first:
                out.append(first)
    return out


def make_adapters(root: Path, r: int, targets: list[str]) -> dict[str, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from extes.programs.lm.weights import resolve_local

    path, _ = resolve_local("smollm2-135m-instruct")
    out = {}
    for seed, name in enumerate(MODELS[1:], 1):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets,
                                                init_lora_weights=False))
        peft.save_pretrained(root / name)
        out[name] = root / name
    return out


def one(url: str, model: str, message: str, max_tokens: int) -> tuple[float, int]:
    import httpx

    t0 = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": message}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    tokens = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
    return time.perf_counter() - t0, tokens


def level(url: str, clients: int, messages: list[str], max_tokens: int) -> dict:
    import statistics

    jobs = [(MODELS[i % len(MODELS)], m) for i, m in enumerate(messages)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        results = list(ex.map(lambda job: one(url, job[0], job[1], max_tokens), jobs))
    wall = time.perf_counter() - t0
    lat = sorted(r[0] for r in results)
    return {"clients": clients, "requests": len(results), "tok_s": round(sum(r[1] for r in results) / wall, 1),
            "p50_s": round(statistics.median(lat), 2), "p95_s": round(lat[max(0, int(0.95 * len(lat)) - 1)], 2)}


def main() -> None:
    a = parse_options(__doc__, levels="3,12", per_client=2, max_tokens=32, threads=2, r=8, targets="q_proj,v_proj")
    openings = seed_openings()
    env = {**os.environ, "EXTES_THREADS": str(a.threads), "HF_HUB_OFFLINE": "1"}
    report: dict = {"threads": a.threads, "max_tokens": a.max_tokens, "r": a.r, "targets": a.targets,
                    "seed_messages": len(openings), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(Path(tmp), a.r, a.targets.split(","))
        flags = [x for name, folder in adapters.items() for x in ("--adapter", f"{name}={folder}")]
        for mode, extra in (("shared", []), ("copies", ["--adapter-copies"])):
            port = _port()
            srv = Server([EXTES, "serve", "--engine", "torch", "--max-tokens", str(a.max_tokens), *flags, *extra,
                          "--port", str(port)], port, env)
            used = 0
            try:
                one(srv.url, "kind", "hello", 4)  # warm-up
                levels = []
                for c in (int(x) for x in a.levels.split(",")):
                    n = c * a.per_client
                    msgs = [openings[(used + i) % len(openings)] for i in range(n)]
                    used += n
                    levels.append(level(srv.url, c, msgs, a.max_tokens))
                    print(f"{mode}: {levels[-1]}", file=sys.stderr)
            finally:
                srv.stop()
            report[mode] = {"levels": levels, "peak_rss_mb": round(srv.peak / 2**20)}
    sh, cp = report["shared"], report["copies"]
    report["ratios"] = {
        "shared_over_copies_tok_s": [round(s["tok_s"] / c["tok_s"], 2) for s, c in zip(sh["levels"], cp["levels"],
                                                                                         strict=True)],
        "shared_over_copies_rss": round(sh["peak_rss_mb"] / cp["peak_rss_mb"], 2)}
    report["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1) if a.json else report)


if __name__ == "__main__":
    main()
