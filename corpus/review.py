"""Human review of a run's queue: dialogues that failed soft checks wait in queued.jsonl until a person accepts,
edits or discards them. Decisions are appended to review.jsonl (one per task, the latest wins); an accepted or
edited dialogue is appended to accepted.jsonl with the decision in its provenance."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from extes.corpus import textio
from extes.corpus.formats.jsonl import write_jsonl
from extes.corpus.runstore import RunStore, task_of
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue

DECISIONS = ("accept", "discard")


def open_run(folder: Path) -> RunStore:
    if not (Path(folder) / "manifest.json").exists():
        raise InputError(f"{folder}: not a synthesis run folder (no manifest.json); give the --out of extes synthesize")
    return RunStore(folder)


def decisions(folder: Path) -> dict[str, dict[str, Any]]:
    path = Path(folder) / "review.jsonl"
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["task"]] = rec
    return out


def pending(folder: Path) -> list[Dialogue]:
    """Queued dialogues without a decision, in queue order."""
    store = open_run(folder)
    done = decisions(folder)
    return [Dialogue.model_validate(r) for r in store.records["queued"] if task_of(r) not in done]


def decide(folder: Path, task: str, decision: str, *, edited: Dialogue | None = None, reviewer: str = "") -> None:
    """Record one decision; accept (or an edit) also appends the dialogue to accepted.jsonl."""
    if decision not in DECISIONS:
        raise InputError(f"decision {decision!r} for {task}: use accept or discard")
    store = open_run(folder)
    queued = {task_of(r): r for r in store.records["queued"]}
    if task not in queued:
        raise InputError(f"{folder}: task {task!r} is not in the review queue")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    record = {"task": task, "decision": decision, "edited": edited is not None, "reviewer": reviewer, "at": now}
    if decision == "accept":
        d = edited or Dialogue.model_validate(queued[task])
        d.meta.review = record
        validation = dict(getattr(d.meta, "validation", None) or {})
        validation["status"] = "accepted"
        d.meta.validation = validation
        store.append("accepted", d.model_dump(mode="json"))
    path = Path(folder) / "review.jsonl"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def export_queue(folder: Path, out: Path) -> int:
    """Write the pending queue as corpus JSONL for review in other tools; returns how many."""

    items = pending(folder)
    write_jsonl(items, out)
    return len(items)


def import_decisions(folder: Path, file: Path) -> dict[str, int]:
    """Apply decisions made elsewhere: JSONL lines {"task", "decision": accept|discard, "dialogue"?: edited}."""
    counts = {"accept": 0, "discard": 0}
    rows = []
    for i, line in enumerate(textio.read_text(file, label="--import").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = textio.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a line must be an object, got {type(row).__name__}")
            edited = Dialogue.model_validate(row["dialogue"]) if row.get("dialogue") else None
            rows.append((str(row["task"]), str(row["decision"]), edited))
        except (ValueError, KeyError, TypeError, ValidationError) as e:
            why = f"{type(e).__name__} {e}" if isinstance(e, KeyError) else textio.first_line(e)
            raise InputError(f"{file}: line {i}: expected {{\"task\", \"decision\", \"dialogue\"?}} ({why})") from None
    for task, decision, edited in rows:
        decide(folder, task, decision, edited=edited, reviewer=f"import:{Path(file).name}")
        counts[decision] += 1
    return counts
