"""Strategy proficiency and preference bias (Kang et al., ACL 2024), for any predictor of support strategies.

Over pairs (gold, predicted) in one declared label set (ESConv's 8 for the ESConv benchmark):
- accuracy: share of exact matches, x100.
- per-strategy F1 (x100) and macro-F1 = proficiency Q: the unweighted mean over the labels that occur as gold or
  as prediction (scikit-learn's `average="macro"` convention); weighted-F1: the mean weighted by gold support.
- preferences: Bradley-Terry strengths fitted to the predicted x gold counts, where "strategy i beats j" once for
  every sample whose gold label is j and whose prediction is i (the diagonal is ignored). Fitted as in the authors'
  code: Hunter's (2004) minorize-maximize update, p_i <- sum_j w_ij p_j / (p_i + p_j) / sum_j w_ji / (p_i + p_j),
  applied to one strategy after the other (each update sees the ones already made), then divided by the geometric
  mean of the non-zero strengths; 20 sweeps from all ones; finally scaled so that they sum to the number of labels
  (a preference of 1 = no preference). A strategy that is never a gold label keeps its strength; a pair whose
  strengths are both 0 (two strategies never predicted) is skipped, where the authors' code divides by zero.
- bias B: the population standard deviation of the preferences.
All of it per conversation phase too (the paper's Figure 2: phase = ceil(4k/N) for the k-th of N utterances).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from extes.corpus.analytics import phase
from extes.errors import InputError

BT_SWEEPS = 20


def confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """counts[g][p]: samples with gold label labels[g] predicted as labels[p]."""
    index = {lab: i for i, lab in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for k, (g, p) in enumerate(zip(gold, pred, strict=True)):
        for what, lab in (("gold", g), ("predicted", p)):
            if lab not in index:
                raise InputError(f"sample {k}: {what} strategy {lab!r} is not in the declared label set "
                                 f"({', '.join(labels)}); map it first")
        counts[index[g]][index[p]] += 1
    return counts


def f1_scores(counts: list[list[int]]) -> list[float | None]:
    """F1 x100 per label; None for a label that is neither gold nor predicted anywhere."""
    k = len(counts)
    out: list[float | None] = []
    for i in range(k):
        tp = counts[i][i]
        gold = sum(counts[i])
        predicted = sum(counts[g][i] for g in range(k))
        if gold == 0 and predicted == 0:
            out.append(None)
        else:
            out.append(100 * 2 * tp / (gold + predicted))
    return out


def bt_preferences(counts: list[list[int]], sweeps: int = BT_SWEEPS) -> list[float]:
    """Bradley-Terry preference of each predicted strategy (see the module docstring); they sum to len(counts)."""
    k = len(counts)
    # wins[i][j]: times strategy i was predicted where j was gold.
    wins = [[counts[j][i] for j in range(k)] for i in range(k)]
    p = [1.0] * k
    for _ in range(sweeps):
        for i in range(k):
            pairs = [j for j in range(k) if j != i and p[i] + p[j] > 0]
            num = sum(wins[i][j] * p[j] / (p[i] + p[j]) for j in pairs)
            den = sum(wins[j][i] / (p[i] + p[j]) for j in pairs)
            if den > 0:
                p[i] = num / den
        positive = [x for x in p if x > 0]
        if positive:
            geo = math.exp(sum(math.log(x) for x in positive) / len(positive))
            p = [x / geo for x in p]
    total = sum(p)
    return [k * x / total for x in p] if total > 0 else [1.0] * k


def population_std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def strategy_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, Q (macro-F1), weighted-F1, per-strategy F1 and preference, bias B, the confusion matrix."""
    if not gold:
        raise InputError("no labelled samples to score strategies on")
    counts = confusion(gold, pred, labels)
    f1 = f1_scores(counts)
    support = [sum(row) for row in counts]
    present = [x for x in f1 if x is not None]
    prefs = bt_preferences(counts)
    return {
        "n": len(gold),
        "accuracy": 100 * sum(counts[i][i] for i in range(len(labels))) / len(gold),
        "macro_f1": sum(present) / len(present),
        "weighted_f1": sum((x or 0.0) * s for x, s in zip(f1, support, strict=True)) / sum(support),
        "bias": population_std(prefs),
        "per_strategy": {lab: {"f1": f1[i], "preference": prefs[i], "support": support[i],
                               "predicted": sum(counts[g][i] for g in range(len(labels)))}
                         for i, lab in enumerate(labels)},
        "labels": list(labels),
        "confusion": counts,
    }


def by_phase(gold: Sequence[str], pred: Sequence[str], positions: Sequence[tuple[int, int]],
             labels: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """`strategy_scores` per phase 1-4; positions[i] = (1-based utterance position k, dialogue length N)."""
    out: dict[str, dict[str, Any] | None] = {}
    for ph in range(1, 5):
        idx = [i for i, (k, n) in enumerate(positions) if phase(k, n) == ph]
        out[str(ph)] = strategy_scores([gold[i] for i in idx], [pred[i] for i in idx], labels) if idx else None
    return out


def confusion_png(scores: dict[str, Any], path, title: str = "Strategy confusion (rows: gold)") -> None:
    """Write the confusion matrix as a PNG heat map with counts in the cells (rows gold, columns predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, counts = scores["labels"], scores["confusion"]
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2.5, 0.8 * len(labels) + 2))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = max(max(r) for r in counts) or 1
    for g, row in enumerate(counts):
        for p, c in enumerate(row):
            ax.text(p, g, str(c), ha="center", va="center", fontsize=7, color="white" if c > top / 2 else "black")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
