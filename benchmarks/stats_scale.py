"""`extes stats` on synthetic JSONL corpora of growing size: wall time and peak RSS, to show linear cost.

    python benchmarks/stats_scale.py --sizes 10000,30000,100000 --json

Corpora are built from the scripted dialogue composer (18 utterances of ~12 words on average; the paper's ExTES
averages 18.2 utterances of 26 tokens) and written once to a temporary folder; each size runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_options

from extes.corpus.analytics import token_stats
from extes.corpus.assets import load_taxonomy
from extes.corpus.formats import read_corpus
from extes.corpus.formats.base import ReadOptions
from extes.corpus.formats.extes_json import record_to_dialogue
from extes.programs.lm.scripted_dialogues import compose_record


def build(n: int, path: Path) -> None:
    scenes = load_taxonomy().scenario_names

    class _P:
        name = stem = "synthetic"

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            rec = compose_record(scenes[i % len(scenes)], i) | {"id": f"s{i}"}
            fh.write(record_to_dialogue(rec, i, _P(), ReadOptions()).model_dump_json() + "\n")


def measure(path: Path) -> dict:
    exe = Path(sys.executable).parent / "extes"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([str(exe), "stats", str(path), "--format", "json"], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(max(peak, before) / 1024)}


def tokenizer_baseline(path: Path) -> dict:
    """Same run, same corpus: tokens of every utterance with NLTK's own tokenizer in one process (the baseline) and
    with the project's token_stats (fast tokenizer on every core)."""
    from nltk.tokenize import NLTKWordTokenizer

    texts = [t.text for d in read_corpus(path).dialogues for t in d.turns]
    nltk_tok = NLTKWordTokenizer()
    t0 = time.perf_counter()
    base = sum(len(nltk_tok.tokenize(t)) for t in texts)
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours, _ = token_stats(texts)
    t_ours = time.perf_counter() - t0
    assert ours == base, (ours, base)
    return {"utterances": len(texts), "nltk_s": round(t_base, 2), "project_s": round(t_ours, 2),
            "speedup": round(t_base / t_ours, 2)}


def main() -> None:
    args = parse_options(__doc__, sizes="10000,30000,100000")
    rows, baseline = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            path = Path(tmp) / f"c{n}.jsonl"
            build(n, path)
            m = measure(path)
            rows.append({"dialogues": n, "mb": round(os.path.getsize(path) / 2**20, 1), **m,
                         "us_per_dialogue": round(1e6 * m["wall_s"] / n, 1)})
            if n == min(int(x) for x in args.sizes.split(",")):
                baseline = tokenizer_baseline(path)
    print(json.dumps({"rows": rows, "tokenizer_baseline": baseline}) if args.json
          else "\n".join(json.dumps(r) for r in [*rows, baseline]))


if __name__ == "__main__":
    main()
