"""`extes evaluate --workers 8` against `--workers 1` on the embedded model: wall time and identical scores.

    python benchmarks/evaluate_workers.py --limit 32 --max-tokens 100 --repeat 3 --json

Both runs evaluate the same samples of the seed test split (gold strategies, temperature 0) in fresh folders; with
8 workers the replies decode together in the model's batch (programs/lm/batching.py). The script checks that the
per-sample hypotheses and the aggregate scores are identical and prints the speed-up. With `--repeat N` the pair
runs N times interleaved (1, 8, 1, 8, ...), so that a slow spell of a shared machine hits both sides, and the
speed-up reported is the median of the N pairs' ratios (each pair is listed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_options

EXTES = str(Path(sys.executable).with_name("extes"))


def run(args: list[str]) -> None:
    subprocess.run([EXTES, *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    a = parse_options(__doc__, limit=16, max_tokens=48, workers=8, repeat=1)
    tmp = Path(tempfile.mkdtemp(prefix="extes-evalbench-"))
    run(["data", "split", "assets/seeds", str(tmp / "splits"), "--seed", "0"])
    pairs, same = [], True
    for rep in range(a.repeat):
        out = {}
        for workers in (1, a.workers):
            folder = tmp / f"r{rep}-w{workers}"
            t0 = time.perf_counter()
            run(["evaluate", "--test", str(tmp / "splits" / "test.jsonl"), "--limit", str(a.limit), "--workers",
                 str(workers), "--max-tokens", str(a.max_tokens), "--out", str(folder), "--json"])
            samples = (folder / "samples.jsonl").read_text().splitlines()
            out[workers] = {"wall_s": round(time.perf_counter() - t0, 1),
                            "metrics": json.loads((folder / "metrics.json").read_text()),
                            "hyps": [json.loads(x)["hypothesis"] for x in samples]}
        one, many = out[1], out[a.workers]
        same = same and one["metrics"] == many["metrics"] and sorted(one["hyps"]) == sorted(many["hyps"])
        pairs.append({"wall_s_workers_1": one["wall_s"], f"wall_s_workers_{a.workers}": many["wall_s"],
                      "speedup": round(one["wall_s"] / many["wall_s"], 2)})
        print(json.dumps(pairs[-1]), file=sys.stderr)
    report = {"samples": a.limit, "max_tokens": a.max_tokens, "threads": os.environ.get("EXTES_THREADS") or "all",
              **pairs[0], "speedup": statistics.median(p["speedup"] for p in pairs), "identical_scores": same,
              "scores": {k: one["metrics"][k] for k in ("meteor", "bleu2", "rouge_l", "ppl")}}
    if a.repeat > 1:
        report["pairs"] = pairs
    print(json.dumps(report) if a.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
