"""Ratings from pairwise judgments: Bradley-Terry strengths with bootstrap intervals, Table 9's win/tie/loss
table, position and length bias, and Cohen's kappa for a judge against people.

A judgment is a dict {"unit", "a", "b", "criterion", "outcome" ("a" | "b" | "tie"), ...}; `unit` is what the
bootstrap resamples (the role card in the arena, the participant in the human study).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import combinations
from typing import Any

SCORE = {"a": 1.0, "tie": 0.5, "b": 0.0}


def bradley_terry(players: list[str], games: list[tuple[str, str, float]], iters: int = 300) -> dict[str, float]:
    """Bradley-Terry strengths by the MM algorithm (Hunter 2004), ties as half a win each way.

    Every player also draws once against a virtual player of strength 1, a weak prior that keeps strengths finite
    when a player wins (or loses) everything. Returned on the Elo scale: 1000 + 400 log10(strength), mean 1000.
    """
    p = dict.fromkeys(players, 1.0)
    wins = defaultdict(float, {x: 0.5 for x in players})
    pairs: Counter = Counter()
    for a, b, s in games:
        wins[a] += s
        wins[b] += 1.0 - s
        pairs[(a, b)] += 1
    for _ in range(iters):
        new = {}
        for i in players:
            denom = 1.0 / (p[i] + 1.0)  # the virtual draw
            for (a, b), n in pairs.items():
                if i in (a, b):
                    denom += n / (p[a] + p[b])
            new[i] = wins[i] / denom
        g = math.exp(sum(math.log(v) for v in new.values()) / len(new))
        p = {k: v / g for k, v in new.items()}
    return {k: 1000.0 + 400.0 * math.log10(v) for k, v in p.items()}


def _games(judgments: list[dict], criterion: str) -> list[tuple[str, str, float]]:
    return [(j["a"], j["b"], SCORE[j["outcome"]]) for j in judgments if j["criterion"] == criterion]


def unit_resamples(judgments: list[dict], bootstrap: int, seed: int = 0) -> Iterator[list[dict]]:
    """`bootstrap` resamples of the judgments, each drawing whole units (cards, participants) with replacement."""
    by_unit: dict[Any, list[dict]] = defaultdict(list)
    for j in judgments:
        by_unit[j["unit"]].append(j)
    units = sorted(by_unit, key=str)
    rng = random.Random(seed)
    for _ in range(bootstrap if units else 0):
        yield [j for u in rng.choices(units, k=len(units)) for j in by_unit[u]]


def percentile_interval(values: list[float], digits: int = 1) -> dict[str, float | None]:
    """{"low", "high"}: the 95% percentile interval of `values` (None when there are none)."""
    v = sorted(values)
    if not v:
        return {"low": None, "high": None}
    return {"low": round(v[int(0.025 * (len(v) - 1))], digits),
            "high": round(v[int(math.ceil(0.975 * (len(v) - 1)))], digits)}


def ratings(judgments: list[dict], players: list[str], *, criterion: str = "overall", bootstrap: int = 500,
            seed: int = 0) -> dict[str, dict[str, float]]:
    """{player: {rating, low, high}}: BT on all judgments, 95% percentile intervals over resampled units."""
    point = bradley_terry(players, _games(judgments, criterion))
    samples: dict[str, list[float]] = {p: [] for p in players}
    for drawn in unit_resamples(judgments, bootstrap, seed):
        for k, v in bradley_terry(players, _games(drawn, criterion), iters=100).items():
            samples[k].append(v)
    return {k: {"rating": round(point[k], 1), **percentile_interval(samples[k])} for k in players}


def length_controlled_bt(players: list[str], games: list[tuple[str, str, float, float]], *, ridge: float = 0.5,
                         iters: int = 50) -> tuple[dict[str, float], float]:
    """Bradley-Terry with the replies' length as a covariate, the "style control" of the LMSYS arena (Li et al.
    2024) and the length control of AlpacaEval-LC (Dubois et al. 2024): P(a beats b) = sigmoid(beta_a - beta_b +
    gamma * z), z = (words_a - words_b) / (words_a + words_b), ties as half a win, fitted by Newton's method with
    a ridge of `ridge` on the strengths (the weak prior that keeps them finite, as the virtual draw does in
    `bradley_terry`). Returns ({player: Elo-scale rating, mean 1000}, gamma): what the judge would say were the two
    replies equally long, and how much a length advantage alone moves it (in logits, per unit of z)."""
    import numpy as np  # only here: the rest of the module is plain Python

    idx = {p: i for i, p in enumerate(players)}
    k = len(players)
    if not games:
        return dict.fromkeys(players, 1000.0), 0.0
    x = np.zeros((len(games), k + 1))
    y = np.zeros(len(games))
    for r, (a, b, score, z) in enumerate(games):
        x[r, idx[a]], x[r, idx[b]], x[r, k], y[r] = 1.0, -1.0, z, score
    penalty = np.full(k + 1, ridge)
    penalty[k] = 0.05  # gamma: a much weaker prior, so a judge that follows length alone shows it
    w = np.zeros(k + 1)
    for _ in range(iters):
        pr = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30.0, 30.0)))
        grad = x.T @ (pr - y) + penalty * w
        hess = (x * (pr * (1 - pr))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    beta = w[:k] - w[:k].mean()
    return {p: 1000.0 + 400.0 * float(beta[idx[p]]) / math.log(10) for p in players}, float(w[k])


def _length_z(j: dict) -> float:
    la, lb = float(j.get("len_a") or 0.0), float(j.get("len_b") or 0.0)
    return (la - lb) / (la + lb) if la + lb > 0 else 0.0


def length_controlled_ratings(judgments: list[dict], players: list[str], *, criterion: str = "overall",
                              bootstrap: int = 500, seed: int = 0) -> dict[str, Any]:
    """{"ratings": {player: {rating, low, high}}, "length_coef": {value, low, high}, "n"}: `length_controlled_bt`
    on every judgment of `criterion` that records both lengths, with 95% percentile intervals over resampled
    units (as `ratings`)."""
    js = [j for j in judgments if j["criterion"] == criterion and "len_a" in j and "len_b" in j]
    games = lambda sel: [(j["a"], j["b"], SCORE[j["outcome"]], _length_z(j)) for j in sel]  # noqa: E731
    point, gamma = length_controlled_bt(players, games(js))
    samples: dict[str, list[float]] = {p: [] for p in players}
    gammas: list[float] = []
    for drawn in unit_resamples(js, bootstrap, seed):
        r, g = length_controlled_bt(players, games(drawn))
        gammas.append(g)
        for p in players:
            samples[p].append(r[p])
    return {"criterion": criterion, "n": len(js),
            "ratings": {p: {"rating": round(point[p], 1), **percentile_interval(samples[p])} for p in players},
            "length_coef": {"value": round(gamma, 3), **percentile_interval(gammas, 3)}}


def win_tie_loss(judgments: list[dict], players: list[str], criteria: list[str]) -> list[dict[str, Any]]:
    """Table 9: for every pair (first vs second) and criterion, the share of wins, ties and losses of the first."""
    rows = []
    for a, b in combinations(players, 2):
        for c in criteria:
            res = Counter()
            for j in judgments:
                if j["criterion"] != c or {j["a"], j["b"]} != {a, b}:
                    continue
                o = j["outcome"] if j["a"] == a else {"a": "b", "b": "a", "tie": "tie"}[j["outcome"]]
                res[o] += 1
            n = sum(res.values())
            rows.append({"first": a, "second": b, "criterion": c, "n": n,
                         "win": res["a"] / n if n else None, "tie": res["tie"] / n if n else None,
                         "loss": res["b"] / n if n else None})
    return rows


def pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sx, sy = math.sqrt(sum((x - mx) ** 2 for x in xs)), math.sqrt(sum((y - my) ** 2 for y in ys))
    return None if sx == 0 or sy == 0 else sxy / (sx * sy)


def length_bias(judgments: list[dict], criterion: str = "overall") -> dict[str, Any]:
    """Correlation of the outcome (+1 a, 0 tie, -1 b) with the difference in mean reply words (a - b)."""
    js = [j for j in judgments if j["criterion"] == criterion and "len_a" in j]
    xs = [j["len_a"] - j["len_b"] for j in js]
    ys = [2 * SCORE[j["outcome"]] - 1 for j in js]
    r = pearson(xs, ys)
    return {"criterion": criterion, "n": len(js), "pearson_r": None if r is None else round(r, 3)}


def position_bias(judgments: list[dict]) -> dict[str, Any]:
    """How often the two orders' own answers disagreed (counted as a tie by a text-only judge; decided by the mean of
    both orders' likelihoods by a scoring one: `method` "balanced"), and how often the first shown won."""
    js = [j for j in judgments if "raw" in j]
    disagree = sum(1 for j in js if j.get("position_biased"))
    firsts = [v for j in js for v in (j["raw"][0], {"A": "B", "B": "A", "Tie": "Tie"}[j["raw"][1]]) if v != "Tie"]
    shown_first = sum(1 for j in js for v in j["raw"] if v == "A")
    decided = sum(1 for j in js for v in j["raw"] if v != "Tie")
    return {"judgments": len(js), "disagreements": disagree,
            "balanced": sum(1 for j in js if j.get("method") == "balanced"),
            "calibrated": sum(1 for j in js if j.get("calibrated")),
            "rate": round(disagree / len(js), 3) if js else None,
            "first_shown_won": round(shown_first / decided, 3) if decided else None,
            "decided_verdicts": len(firsts)}


def cohen_kappa(x: list[str], y: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items."""
    if len(x) != len(y) or not x:
        return None
    n = len(x)
    po = sum(a == b for a, b in zip(x, y, strict=True)) / n
    cx, cy = Counter(x), Counter(y)
    pe = sum(cx[k] * cy[k] for k in set(cx) | set(cy)) / (n * n)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)
