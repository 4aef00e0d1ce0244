"""All metrics but PPL on N hypothesis/reference pairs of ~25 words: wall time and peak RSS, N = 2k, 5k, 10k.

    python benchmarks/metrics_scale.py --json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

from extes.programs.lm.scripted_dialogues import WORDS


def pairs(n: int, seed: int = 0):
    rng = random.Random(seed)
    hyps = [" ".join(rng.choice(WORDS) for _ in range(25)) + "." for _ in range(n)]
    refs = [" ".join(rng.choice(WORDS) for _ in range(25)) + "." for _ in range(n)]
    return hyps, refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="2000,5000,10000")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from extes.tuning import metrics as M

    M.all_metrics(*pairs(10))  # warm-up: WordNet, embeddings
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        h, r = pairs(n)
        parts = {}
        t0 = time.perf_counter()
        steps = (("bleu", lambda h, r: (M.bleu(h, r, 2), M.bleu(h, r, 4))), ("rouge_l", M.rouge_l),
                 ("meteor", M.meteor), ("extrema", M.extrema),
                 ("distinct", lambda h, r: [M.distinct(h, k) for k in (1, 2, 3)]))
        for name, fn in steps:
            t = time.perf_counter()
            fn(h, r)
            parts[name] = round(time.perf_counter() - t, 2)
        wall = time.perf_counter() - t0
        rows.append({"pairs": n, "wall_s": round(wall, 2), "per_pair_ms": round(1000 * wall / n, 3), "parts": parts,
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    print(json.dumps({"rows": rows}) if args.json else "\n".join(json.dumps(r) for r in rows))


if __name__ == "__main__":
    main()
