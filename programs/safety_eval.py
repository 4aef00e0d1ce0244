"""Measuring the crisis check on a labelled JSONL set: overall, per category, per language, and a threshold sweep.

A line: {"text": str, "crisis": bool, "category": one of the categories or null, "kind": str, "language":
"en"|"es"|"fr"|"pt"|"de" (default "en"), "context": [{"role": "user"|"assistant", "text": str}, ...] (optional)}.
Per category, recall is over the messages of that category and precision over the messages flagged with it (a
crisis flagged under another category still counts as caught: the user gets an escalation either way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extes.corpus import textio
from extes.corpus.safety_context import check_context
from extes.corpus.safety_rules import LANGUAGES, ORDER
from extes.errors import InputError
from extes.programs.safety_classifier import sweep_point

PREFETCH = 400  # messages embedded together (at most 3 texts each, 8 windows for a long one)
LINE = '{"text": str, "crisis": true|false, "category": ..., "language": ..., "context": [...]}'


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSONL file; a bad line is a one-line error naming the file, the line and the fix."""
    path = Path(path)
    lines = textio.read_text(path, folder_hint=f"give a JSONL file of {LINE} lines").splitlines()
    rows = [_row(path, i, line) for i, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise InputError(f"{path}: no labelled messages; give a JSONL file of {LINE} lines")
    return rows


def _row(path: Path, i: int, line: str) -> dict[str, Any]:
    where = f"{path}: line {i}"
    try:
        row = textio.loads(line)
        assert isinstance(row, dict) and isinstance(row["text"], str) and isinstance(row["crisis"], bool)
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError):
        raise InputError(f"{where}: expected {LINE}") from None
    if row.get("category") not in (None, *ORDER):
        raise InputError(f"{where}: category {row['category']!r} is not one of {', '.join(ORDER)} (or null)")
    row.setdefault("language", "en")
    if row["language"] not in LANGUAGES:
        raise InputError(f"{where}: language {row['language']!r} is not one of {', '.join(LANGUAGES)}")
    row["context"] = check_context(row.get("context"), f"{where}: context")
    return row


def _scores(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    tp = sum(g and y for g, y in pairs)
    fp = sum(g and not y for g, y in pairs)
    fn = sum(y and not g for g, y in pairs)
    return {"n": len(pairs), "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
            "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "tp": tp, "fp": fp, "fn": fn, "tn": len(pairs) - tp - fp - fn}


def evaluate(rows: list[dict[str, Any]], checker, *, sweep: bool = False) -> dict[str, Any]:
    """Recall and precision of the crisis flag overall, per category and per language, with the errors listed
    (and, with `sweep`, recall/precision at classifier thresholds 0.10 ... 0.95)."""
    verdicts, caught, probs = [], [], []
    for i, row in enumerate(rows):
        if i % PREFETCH == 0:
            checker.prefetch([(r["text"], r["context"]) for r in rows[i:i + PREFETCH]])
        hit, p = checker.screen(row["text"], row["context"])
        caught.append(hit is not None and p is None)  # decided without the classifier
        probs.append(None if p is None else 1.0 - p["none"])
        verdicts.append(checker.verdict(hit, p))
    pairs = [(v.crisis, r["crisis"]) for v, r in zip(verdicts, rows, strict=True)]
    out = _scores(pairs)
    out["per_category"] = {}
    for cat in ORDER:
        mine = [(v.crisis, r["crisis"]) for v, r in zip(verdicts, rows, strict=True) if r.get("category") == cat]
        flagged = [r["crisis"] for v, r in zip(verdicts, rows, strict=True) if v.crisis and v.category == cat]
        if mine or flagged:
            rec = _scores(mine)["recall"]
            prec = round(sum(flagged) / len(flagged), 4) if flagged else 1.0
            out["per_category"][cat] = {"n": len(mine), "recall": rec, "precision": prec, "flagged": len(flagged)}
    out["per_language"] = {}
    for lang in LANGUAGES:
        mine = [p for p, r in zip(pairs, rows, strict=True) if r["language"] == lang]
        if mine:
            out["per_language"][lang] = _scores(mine)
    out["errors"] = [
        {"error": "miss" if r["crisis"] else "false alarm", "text": r["text"], "language": r["language"],
         "category": r.get("category"), "got": v.category, "source": v.source, "rule": v.rule}
        for v, r in zip(verdicts, rows, strict=True) if v.crisis != r["crisis"]
    ]
    if sweep:
        truth = [r["crisis"] for r in rows]
        out["sweep"] = [sweep_point(t / 20, probs, truth, caught) for t in range(2, 20)]
    return out
