"""Paired significance tests of two evaluation runs on the same samples (the paired bootstrap over dialogues).

For every metric, delta = metric(B) - metric(A) on the samples both runs scored. Each of `reps` resamples draws
whole dialogues with replacement (the same draw for A and B, which is what makes it paired) and recomputes delta*.
Two-sided p-value of "no difference", from the bootstrap distribution shifted to the null (Efron & Tibshirani
1993, sec. 16.4; as in Koehn 2004 and Berg-Kirkpatrick et al. 2012): p = (1 + #{|delta* - delta| >= |delta|}) /
(reps + 1), so the smallest p it can report is 1 / (reps + 1). A metric is called different when p < alpha. With
a single dialogue every resample equals the sample, so nothing is tested (the verdict says so, p = 1).

With few dialogues the bootstrap is far too confident (with 3 dialogues that all move the same way, every resample
does, and it reported p <= 0.001). Up to `EXACT_MAX` dialogues the test is instead the exact paired randomization
test over dialogues: under "no difference" the two runs' outputs are exchangeable within a dialogue, so delta is
recomputed for all 2^k ways of swapping A and B in some dialogues, and p = #{|delta_swap| >= |delta|} / 2^k. Its
smallest p is 2 / 2^k (0.25 for 3 dialogues, 0.002 for 10), which is what so few dialogues can show.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from extes.errors import InputError
from extes.tuning import resample as R

EXACT_MAX = 10  # dialogues up to which the exact randomization test replaces the bootstrap
SIGN_FLIP_EXACT_MAX = 16  # non-zero differences up to which sign_flip_p enumerates all flips (65,536 at 16)
METRICS = ("ppl", "meteor", "bleu2", "bleu4", "rouge_l", "extrema", "dist1", "dist2", "dist3")
LOWER_IS_BETTER = {"ppl"}


def shared_rows(rows_a: list[dict], rows_b: list[dict], name_a: str, name_b: str) -> tuple[list[dict], list[dict]]:
    """The rows of both runs on their common sample ids, in A's order; an error when they share none."""
    by_b = {r["id"]: r for r in rows_b}
    common = [r for r in rows_a if r["id"] in by_b]
    if not common:
        raise InputError(f"{name_a} and {name_b} share no samples (no sample id in common); compare runs made on "
                         "the same test file")
    return common, [by_b[r["id"]] for r in common]


def verdict(name_a: str, name_b: str, delta: float, p: float, alpha: float, floor: float) -> str:
    """One line: "B > A, p = 0.003" or "no difference shown (p = 0.41)"."""
    shown = f"p <= {floor:.3g}" if p <= floor else f"p = {p:.3f}"
    if p >= alpha or delta == 0:
        return f"no difference shown ({shown})"
    return f"{name_b} {'>' if delta > 0 else '<'} {name_a}, {shown}"


def paired_test(rows_a: list[dict], rows_b: list[dict], name_a: str = "A", name_b: str = "B", *, reps: int = 1000,
                seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Per metric: A, B, delta, p and a verdict; resampling dialogues (see the module docstring)."""
    a, b = shared_rows(rows_a, rows_b, name_a, name_b)
    sa, sb = [R.row_stats(r) for r in a], [R.row_stats(r) for r in b]
    ta, tb = R.table6(sa), R.table6(sb)
    keys = [k for k in METRICS if ta.get(k) is not None and tb.get(k) is not None]
    observed = {k: tb[k] - ta[k] for k in keys}
    extreme = dict.fromkeys(keys, 0)
    rng = random.Random(seed)
    groups = R.group_indices(a)
    if len(groups) < 2:  # one dialogue: every resample is the sample itself, so no difference can be tested
        out = {k: {"a": ta[k], "b": tb[k], "delta": observed[k], "p": 1.0,
                   "verdict": f"not testable: {len(groups)} dialogue (a paired bootstrap needs at least 2)"}
               for k in keys}
        return {"a": name_a, "b": name_b, "n": len(a), "dialogues": len(groups), "reps": 0, "seed": seed,
                "alpha": alpha, "method": "paired bootstrap over dialogues, null-shifted, two-sided", "metrics": out}
    exact = len(groups) <= EXACT_MAX
    if exact:
        members = list(groups.values())
        reps = 2 ** len(members)
        for mask in range(reps):
            swap = {i for g, idx in enumerate(members) if mask >> g & 1 for i in idx}
            ra = R.table6([sb[i] if i in swap else sa[i] for i in range(len(sa))])
            rb = R.table6([sa[i] if i in swap else sb[i] for i in range(len(sa))])
            for k in keys:
                if abs(rb[k] - ra[k]) >= abs(observed[k]) - 1e-12:
                    extreme[k] += 1
    else:
        for _ in range(reps):
            idx = R.resample_groups(groups, rng)
            ra, rb = R.table6([sa[i] for i in idx]), R.table6([sb[i] for i in idx])
            for k in keys:
                if abs((rb[k] - ra[k]) - observed[k]) >= abs(observed[k]) - 1e-12:
                    extreme[k] += 1
    floor = 2 / reps if exact else 1 / (reps + 1)
    method = (f"exact paired randomization over dialogues (all {reps} swaps), two-sided" if exact else
              "paired bootstrap over dialogues, null-shifted, two-sided")
    out = {}
    for k in keys:
        p = extreme[k] / reps if exact else (1 + extreme[k]) / (reps + 1)
        line = verdict(name_a, name_b, observed[k], p, alpha, floor)
        if k in LOWER_IS_BETTER and p < alpha and observed[k] != 0:
            line += " (lower is better)"
        out[k] = {"a": ta[k], "b": tb[k], "delta": observed[k], "p": p, "verdict": line}
    return {"a": name_a, "b": name_b, "n": len(a), "dialogues": len(groups), "reps": reps, "seed": seed,
            "alpha": alpha, "method": method, "metrics": out}


def paired_markdown(result: dict[str, Any]) -> str:
    """The paired test as a Markdown table, one verdict per metric."""
    how = (f"Exact paired randomization test over {result['dialogues']} dialogues ({result['n']} shared samples, "
           f"all {result['reps']} swaps; the smallest possible p is {2 / max(result['reps'], 1):.3g})"
           if result["method"].startswith("exact") else
           f"Paired bootstrap over {result['dialogues']} dialogues ({result['n']} shared samples, "
           f"{result['reps']} resamples, seed {result['seed']})")
    lines = [f"{how}: {result['b']} vs {result['a']}", "",
             f"| metric | {result['a']} | {result['b']} | delta | p | verdict |", "|---|---|---|---|---|---|"]
    for k, v in result["metrics"].items():
        lines.append(f"| {k} | {v['a']:.2f} | {v['b']:.2f} | {v['delta']:+.2f} | {v['p']:.4f} | {v['verdict']} |")
    return "\n".join(lines) + "\n"


def sign_flip_p(diffs: list[float], reps: int = 20_000, seed: int = 0) -> float:
    """Two-sided p of the paired sign-flip randomization test on per-example differences of a mean (1.0 when all are
    0): the test above for a statistic that is a plain mean over examples, where swapping A and B in one example
    flips the sign of its difference. Exact (all 2^n flips of the non-zero differences) up to
    `SIGN_FLIP_EXACT_MAX`, else `reps` random flips. `extes compare-optimizers` uses it over test examples."""
    observed = abs(sum(diffs))
    if observed == 0:
        return 1.0
    live = [abs(d) for d in diffs if d]
    if len(live) <= SIGN_FLIP_EXACT_MAX:
        flips = itertools.product((1, -1), repeat=len(live))
        n, hits = 2 ** len(live), sum(abs(sum(s * d for s, d in zip(f, live, strict=True))) >= observed - 1e-12
                                      for f in flips)
        return hits / n
    rng = random.Random(seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in live)) >= observed - 1e-12 for _ in range(reps))
    return (hits + 1) / (reps + 1)
