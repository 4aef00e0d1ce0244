"""`QualityJudge`: an LM rates a dialogue on the five criteria of Table 4, one single-field call per criterion
(so small models answer through the project's adapter by likelihood scoring of 0-3)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
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


def judge_sheet(sheet: Path, out: Path, lm, *, on_row: Callable[[], None] | None = None) -> int:
    """Fill every row of a rating sheet with the judge's scores; returns the number of rows.

    Each judged row is appended to OUT.partial.jsonl as it is done, so a killed run loses at most the row it was on:
    the same command continues from there (rows already judged are not asked again), and the partial file goes
    once OUT is written (atomically). `on_row` is called after each row (a progress bar)."""
    try:
        with open(sheet, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError(f"{sheet}: no such rating sheet; create one with `extes rate export`") from None
    if rows and not {"item", "dialogue"} <= set(rows[0]):
        raise InputError(f"{sheet}: needs the columns item and dialogue (an exported sheet)")
    partial = Path(f"{out}.partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, int]] = {}
    if partial.exists():
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[rec["item"]] = {c: int(rec[c]) for c in CRITERIA}
            except (ValueError, KeyError, TypeError):
                break  # a line cut by the kill: judged again
    judge = QualityJudge()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()), open(partial, "a", encoding="utf-8") as log:
        for row in rows:
            if row["item"] not in done:
                pred = judge(dialogue=row["dialogue"])
                done[row["item"]] = {c: pred[c] for c in CRITERIA}
                log.write(json.dumps({"item": row["item"], **done[row["item"]]}) + "\n")
                log.flush()
                os.fsync(log.fileno())
            row.update(done[row["item"]])
            if on_row:
                on_row()
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["item", "dialogue", *CRITERIA])
        w.writeheader()
        w.writerows(rows)
    partial.unlink(missing_ok=True)
    return len(rows)
