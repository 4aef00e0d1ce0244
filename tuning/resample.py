"""Table 6 from per-sample statistics, so that bootstraps over dialogues re-aggregate in microseconds.

Every corpus-level metric is a function of sums over samples: BLEU of clipped n-gram matches, n-gram counts and
lengths (exactly NLTK's `corpus_bleu` with smoothing method 1, tested), Distinct of n-gram multisets, the rest of
per-sample means. `row_stats` tokenizes a sample once; `table6` aggregates any list of them (repeats allowed).
Resampling unit: the dialogue (`dialogue_of`), since turns of one dialogue are not independent.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from extes.tuning import metrics as M

EPSILON = 0.1  # NLTK SmoothingFunction().method1's epsilon
DIST_N = (1, 2, 3)


def dialogue_of(row: dict[str, Any]) -> str:
    """The resampling unit of a sample: its `dialogue` field, else its id before the last '#'."""
    return str(row.get("dialogue") or str(row["id"]).rsplit("#", 1)[0])


def row_stats(row: dict[str, Any]) -> dict[str, Any]:
    """Sufficient statistics of one scored sample (a row of samples.jsonl)."""
    hyp, ref = M.tokens(row["hypothesis"]), M.tokens(row["reference"])
    matches, totals = [], []
    for n in range(1, 5):
        hg = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        rg = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        matches.append(sum(min(c, rg[g]) for g, c in hg.items()))
        totals.append(max(1, sum(hg.values())))
    grams = {n: Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1)) for n in DIST_N}
    per_response = {n: (100 * len(g) / sum(g.values()) if g else 0.0) for n, g in grams.items()}
    return {"matches": matches, "totals": totals, "hyp_len": len(hyp), "ref_len": len(ref), "grams": grams,
            "dist_resp": per_response, "meteor": row["meteor"], "rouge_l": row["rouge_l"],
            "extrema": row["extrema"], "nll": row.get("nll", 0.0), "ref_tokens": row.get("ref_tokens", 0)}


def corpus_bleu(stats: Sequence[dict[str, Any]], n: int) -> float:
    """x100; equals `nltk.translate.bleu_score.corpus_bleu` with uniform weights and smoothing method 1."""
    num = [sum(s["matches"][i] for s in stats) for i in range(n)]
    den = [sum(s["totals"][i] for s in stats) for i in range(n)]
    if num[0] == 0:
        return 0.0
    c, r = sum(s["hyp_len"] for s in stats), sum(s["ref_len"] for s in stats)
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1 - r / c))
    logs = [math.log((x if x else EPSILON) / d) for x, d in zip(num, den, strict=True)]
    return 100 * bp * math.exp(math.fsum(w * v for w, v in zip([1 / n] * n, logs, strict=True)))


def corpus_distinct(stats: Sequence[dict[str, Any]], n: int) -> float:
    """Distinct-n over the whole corpus, x100: distinct n-grams / all n-grams of all responses."""
    seen: set = set()
    total = 0
    for s in stats:
        g = s["grams"][n]
        seen.update(g)
        total += sum(g.values())
    return 100 * len(seen) / total if total else 0.0


def table6(stats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Table 6's columns (x100) plus Distinct per response, from `row_stats` of the samples."""
    k = len(stats)
    out: dict[str, Any] = {"n": k}
    for key in ("meteor", "rouge_l", "extrema"):
        out[key] = 100 * sum(s[key] for s in stats) / k
    out["bleu2"], out["bleu4"] = corpus_bleu(stats, 2), corpus_bleu(stats, 4)
    for n in DIST_N:
        out[f"dist{n}"] = corpus_distinct(stats, n)
        out[f"dist{n}_response"] = sum(s["dist_resp"][n] for s in stats) / k
    ntok = sum(s["ref_tokens"] for s in stats)
    out["ppl"] = math.exp(sum(s["nll"] for s in stats) / ntok) if ntok else None
    return out


def resample_groups(groups: dict[str, list[int]], rng: random.Random) -> list[int]:
    """Indices of one bootstrap resample: as many dialogues as there are, drawn with replacement, all their turns."""
    keys = list(groups)
    out: list[int] = []
    for _ in keys:
        out.extend(groups[keys[rng.randrange(len(keys))]])
    return out


def group_indices(rows: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(dialogue_of(r), []).append(i)
    return groups


def percentile_interval(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    v = sorted(values)
    return v[int(0.025 * (len(v) - 1))], v[int(math.ceil(0.975 * (len(v) - 1)))]


def dialogue_bootstrap(rows: Sequence[dict[str, Any]], score: Callable[[list[int]], dict[str, Any]],
                       keys: Sequence[str], reps: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of `score(indices)[key]`, resampling whole dialogues with replacement."""
    rng = random.Random(seed)
    groups = group_indices(rows)
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(reps):
        agg = score(resample_groups(groups, rng))
        for k in keys:
            if agg.get(k) is not None:
                draws[k].append(agg[k])
    return {k: ci for k in keys if (ci := percentile_interval(draws[k])) is not None}
