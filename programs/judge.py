"""`QualityJudge`: an LM rates a dialogue on the five criteria of Table 4, one single-field call per criterion
(so small models answer through the project's adapter by likelihood scoring of 0-3)."""

from __future__ import annotations

import csv
from pathlib import Path

import dspy

from extes.corpus.atomic import atomic_path
from extes.corpus.rating import CRITERIA
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.signatures.quality import RateDialogue


class QualityJudge(dspy.Module):
    """dialogue text → {criterion: 0-3}."""

    def __init__(self):
        super().__init__()
        self.rate = dspy.Predict(RateDialogue)

    def forward(self, dialogue: str) -> dspy.Prediction:
        scores = {c: int(self.rate(criterion=f"{c.capitalize()}: {d}", dialogue=dialogue).score)
                  for c, d in CRITERIA.items()}
        return dspy.Prediction(**scores)


def judge_sheet(sheet: Path, out: Path, lm) -> int:
    """Fill every row of a rating sheet with the judge's scores; returns the number of rows."""
    try:
        with open(sheet, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError(f"{sheet}: no such rating sheet; create one with `extes rate export`") from None
    if rows and not {"item", "dialogue"} <= set(rows[0]):
        raise InputError(f"{sheet}: needs the columns item and dialogue (an exported sheet)")
    judge = QualityJudge()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        for row in rows:
            pred = judge(dialogue=row["dialogue"])
            row.update({c: pred[c] for c in CRITERIA})
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["item", "dialogue", *CRITERIA])
        w.writeheader()
        w.writerows(rows)
    return len(rows)
