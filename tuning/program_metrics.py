"""Metrics per program, as DSPy metrics `(example, prediction, trace=None)` plus their corpus aggregates.

- classifier: exact match of the strategy (accuracy); `macro_f1` over a list of (gold, predicted) pairs.
- supporter: 0.5 ROUGE-L F + 0.5 METEOR of the reply against the reference (both in [0, 1]).
- synthesizer: 1 if the generated dialogue passes validation (hard and soft checks), else 0.
- seeker: 0 if the message breaks role (corpus/role_checks.py), else 0.5 + 0.5 ROUGE-L F against the person's.
- judge: 1 if the verdict is the person's (A, B or Tie), else 0.
"""

from __future__ import annotations

from collections import Counter

from extes.corpus.validation import validate
from extes.tuning import metrics as M


def classifier_metric(example, prediction, trace=None) -> float:
    return float(prediction.strategy == example.strategy)


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    labels = {g for g, _ in pairs} | {p for _, p in pairs}
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in pairs:
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    f1s = []
    for label in labels:
        prec = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        rec = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def supporter_metric(example, prediction, trace=None) -> float:
    hyp, ref = prediction.reply, example.reply
    return 0.5 * M.rouge_l_pair(M.tokens(hyp), M.tokens(ref)) + 0.5 * M.meteor([hyp], [ref]) / 100


def synthesizer_metric(example, prediction, trace=None) -> float:
    d = getattr(prediction, "dialogue", None)
    if d is None:
        return 0.0
    return float(validate(d, scene=example.scene, demos=[]).status == "accepted")


def seeker_metric(example, prediction, trace=None) -> float:
    if getattr(prediction, "problems", None) or not getattr(prediction, "message", ""):
        return 0.0
    return 0.5 + 0.5 * M.rouge_l_pair(M.tokens(prediction.message), M.tokens(example.message))


def judge_metric(example, prediction, trace=None) -> float:
    return float(getattr(prediction, "verdict", None) == example.verdict)


METRICS = {"classifier": classifier_metric, "supporter": supporter_metric, "synthesizer": synthesizer_metric,
           "seeker": seeker_metric, "judge": judge_metric}
