"""All metrics but PPL on 10,000 real ESConv reply pairs: the previous code path against the current one, same run.

Pairs: every supporter reply of ../shared/data/esconv/devWithStrategy_short.tsv (read by corpus/formats/esconv_tsv.py)
as a reference, in file order and cycled to N, each paired with another dev reply drawn with a fixed seed as the
hypothesis. Real replies are what makes METEOR slow (WordNet synonym look-ups for every unmatched word); random
pairs leave most words unmatched, the costly case.

Timed, each on the same pairs:
- old, whole command: a fresh process running `reference_metrics` (the code before tuning/meteor.py: NLTK's
  corpus_bleu and meteor_score, the O(n*m) LCS, per-text torch Extrema through AutoTokenizer; every metric
  tokenizes on its own; torch on one thread), from interpreter start to scores; inside it, the time after
  one-time loads (imports, WordNet, embeddings: a 10-pair warm-up) is taken as "old, after loads".
- new, after loads: `all_metrics` in this process after a 10-pair warm-up.
- new, whole command: `extes metrics HYP.txt REF.txt --json` in a fresh process.
Scores must be equal (Extrema within 1e-4: float64 numpy vs float32 torch cosines); wall and CPU seconds are
printed (CPU time is less sensitive to other jobs on the machine), with `uptime` before and after.

    python benchmarks/metrics_scale.py --pairs 10000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from extes.corpus.formats.esconv_tsv import read_tsv_samples

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "esconv" / "devWithStrategy_short.tsv"


def esconv_pairs(n: int, path: Path = DEV, seed: int = 0) -> tuple[list[str], list[str]]:
    """(hypotheses, references): n real supporter replies, each paired with another reply of the file."""

    replies = [s["reference"].strip() for s in read_tsv_samples(path) if s["reference"].strip()]
    rng = random.Random(seed)
    refs = [replies[i % len(replies)] for i in range(n)]
    hyps = []
    for i in range(n):
        j = rng.randrange(len(replies) - 1)
        hyps.append(replies[j + (j >= i % len(replies))])  # never the reply itself
    return hyps, refs


# -- the previous code path, kept importable as the baseline ----------------------------------------------------
def reference_metrics(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """`all_metrics` as it was before the fast path (same definitions, straightforward code)."""
    from extes.tuning.metrics import tokens  # lazy: tuning.metrics imports dspy

    out = {"bleu2": _ref_bleu(hyps, refs, 2), "bleu4": _ref_bleu(hyps, refs, 4), "rouge_l": _ref_rouge(hyps, refs),
           "meteor": _ref_meteor(hyps, refs), "extrema": _ref_extrema(hyps, refs)}
    for n in (1, 2, 3):
        grams = [tuple(t[i:i + n]) for h in hyps for t in [tokens(h)] for i in range(len(t) - n + 1)]
        out[f"dist{n}"] = 100 * len(set(grams)) / len(grams) if grams else 0.0
    return {k: round(v, 4) for k, v in out.items()} | {"n": len(hyps)}


def _ref_bleu(hyps, refs, n):
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    from extes.tuning.metrics import tokens  # lazy: tuning.metrics imports dspy

    return 100 * corpus_bleu([[tokens(r)] for r in refs], [tokens(h) for h in hyps], weights=tuple([1.0 / n] * n),
                             smoothing_function=SmoothingFunction().method1)


def _ref_lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1] if a and b else 0


def _ref_rouge(hyps, refs):
    from extes.tuning.metrics import tokens  # lazy: tuning.metrics imports dspy

    total = 0.0
    for h, r in zip(hyps, refs, strict=True):
        a, b = tokens(h), tokens(r)
        m = _ref_lcs(a, b)
        if m:
            p, q = m / len(a), m / len(b)
            total += 2 * p * q / (p + q)
    return 100 * total / len(hyps)


def _ref_meteor(hyps, refs):
    from nltk.corpus import wordnet
    from nltk.translate.meteor_score import meteor_score

    from extes.tuning.metrics import tokens  # lazy: tuning.metrics imports dspy
    from extes.tuning.wordnet import ensure_wordnet

    ensure_wordnet()
    return 100 * sum(meteor_score([tokens(r)], tokens(h), wordnet=wordnet)
                     for h, r in zip(hyps, refs, strict=True)) / len(hyps)


_REF_EMB = {}


def _ref_extrema(hyps, refs):
    import torch
    from safetensors import safe_open
    from transformers import AutoTokenizer

    from extes.programs.lm.weights import converted_folder, embedded_gguf  # lazy: programs.lm.weights imports dspy
    from extes.tuning.metrics import tokens

    if not _REF_EMB:
        folder = converted_folder(embedded_gguf("smollm2-135m-instruct"))
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            _REF_EMB["m"] = f.get_tensor("model.embed_tokens.weight").float()
        _REF_EMB["tok"] = AutoTokenizer.from_pretrained(folder)
    tok, matrix = _REF_EMB["tok"], _REF_EMB["m"]

    def vec(text):
        ids = tok(" ".join(tokens(text)), add_special_tokens=False)["input_ids"]
        if not ids:
            return None
        v = matrix[torch.tensor(ids)]
        hi, lo = v.max(dim=0).values, v.min(dim=0).values
        return torch.where(hi.abs() >= lo.abs(), hi, lo)

    total = 0.0
    for h, r in zip(hyps, refs, strict=True):
        a, b = vec(h), vec(r)
        if a is not None and b is not None:
            total += float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    return 100 * total / len(hyps)


# -- timing -----------------------------------------------------------------------------------------------------
def _cpu() -> float:
    ru, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime


def _timed(fn):
    t, c = time.perf_counter(), _cpu()
    out = fn()
    return out, round(time.perf_counter() - t, 2), round(_cpu() - c, 2)


def _child(cmd: list[str]) -> tuple[dict, float, float]:
    """Run a fresh process; (its JSON stdout, wall s, CPU s of the child and its own children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {res.returncode}): {res.stderr.strip()[-400:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return json.loads(res.stdout), round(wall, 2), round(cpu, 2)


def reference_command(hyp: Path, ref: Path) -> None:
    """The old path as a whole command: read both files, warm up on 10 pairs, score; JSON on stdout."""
    import torch

    # One thread: on a shared 2-core machine torch's spinning workers made per-text Extrema ~5x slower; this
    # makes the baseline faster than the old command was, so the speed-up below is if anything understated.
    torch.set_num_threads(1)
    h, r = hyp.read_text().splitlines(), ref.read_text().splitlines()
    t0, c0 = time.perf_counter(), _cpu()
    reference_metrics(h[:10], r[:10])
    scores, wall, cpu = _timed(lambda: reference_metrics(h, r))
    loads, loads_cpu = round(time.perf_counter() - t0 - wall, 2), round(_cpu() - c0 - cpu, 2)
    print(json.dumps({"scores": scores, "after_loads_s": wall, "after_loads_cpu_s": cpu, "loads_s": loads,
                      "loads_cpu_s": loads_cpu}))


def compare(old: dict, new: dict) -> dict:
    """Largest absolute difference per metric; equal means 0 (Extrema: < 1e-4)."""
    diff = {k: abs(old[k] - new[k]) for k in old if k != "n"}
    ok = all(v == 0 for k, v in diff.items() if k != "extrema") and diff["extrema"] < 1e-4
    return {"equal": ok, "max_abs_diff": {k: round(v, 6) for k, v in diff.items()}}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime unavailable"


def run(n: int) -> dict:
    """Time the four paths on n pairs; returns the table rows, the score check and the machine's load."""
    from extes.tuning.metrics import all_metrics  # lazy: tuning.metrics imports dspy

    load_before = uptime()
    hyps, refs = esconv_pairs(n)
    with tempfile.TemporaryDirectory() as tmp:
        hp, rp = Path(tmp) / "hyp.txt", Path(tmp) / "ref.txt"
        hp.write_text("\n".join(hyps) + "\n")
        rp.write_text("\n".join(refs) + "\n")
        old, old_wall, old_cpu = _child([sys.executable, __file__, "--reference-command", str(hp), str(rp)])
        all_metrics(hyps[:10], refs[:10])  # one-time loads: NLTK, the WordNet table, embeddings
        new, new_wall, new_cpu = _timed(lambda: all_metrics(hyps, refs))
        extes = Path(sys.executable).with_name("extes")
        cmd, cmd_wall, cmd_cpu = _child([str(extes), "metrics", str(hp), str(rp), "--json"])
    rows = [
        {"path": "old, after one-time loads", "wall_s": old["after_loads_s"], "cpu_s": old["after_loads_cpu_s"]},
        {"path": "new, after one-time loads", "wall_s": new_wall, "cpu_s": new_cpu},
        {"path": "old, whole command", "wall_s": old_wall, "cpu_s": old_cpu},
        {"path": "new, whole command (extes metrics)", "wall_s": cmd_wall, "cpu_s": cmd_cpu},
    ]
    ratios = {"after_loads_wall": round(rows[0]["wall_s"] / rows[1]["wall_s"], 2),
              "after_loads_cpu": round(rows[0]["cpu_s"] / rows[1]["cpu_s"], 2),
              "whole_command_wall": round(rows[2]["wall_s"] / rows[3]["wall_s"], 2),
              "whole_command_cpu": round(rows[2]["cpu_s"] / rows[3]["cpu_s"], 2)}
    check = compare(old["scores"], new) | {"command_equals_in_process": cmd == new}
    return {"pairs": n, "rows": rows, "speedup": ratios, "scores": {"old": old["scores"], "new": new}, "check": check,
            "uptime_before": load_before, "uptime_after": uptime(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10000, help="number of reply pairs (default 10000)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--reference-command", nargs=2, type=Path, metavar=("HYP", "REF"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_command:
        reference_command(*args.reference_command)
        return
    if args.pairs < 10:
        sys.exit(f"--pairs {args.pairs}: give at least 10 (the warm-up uses 10 pairs)")
    if not DEV.exists():
        sys.exit(f"{DEV}: ESConv dev file not found (shared/ lies beside the checkout)")
    res = run(args.pairs)
    if args.json:
        print(json.dumps(res))
        return
    print(f"{res['pairs']} real ESConv reply pairs, {res['date']}\n{'path':38} {'wall s':>8} {'CPU s':>8}")
    for r in res["rows"]:
        print(f"{r['path']:38} {r['wall_s']:8.2f} {r['cpu_s']:8.2f}")
    print("speed-up (old / new):", json.dumps(res["speedup"]))
    print("scores equal:", res["check"]["equal"], json.dumps(res["check"]["max_abs_diff"]))
    print("load before:", res["uptime_before"], "\nload after: ", res["uptime_after"])


if __name__ == "__main__":
    main()
