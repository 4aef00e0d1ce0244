"""A synthesis run folder: accepted, rejected, queued and failed records appended to JSONL, never lost.

Accepted and queued records are corpus Dialogues (so `accepted.jsonl` is a JSONL corpus as it stands), with the
task, round, demos, model, program hash, validation and usage in `meta`; rejected and failed records are objects
with `task`, `status`, `reasons`, `detail` and whatever was produced. Each record is one line written with a
single `write` and `fsync`, so a run killed at any moment (SIGKILL) leaves
at most one partial last line; opening the store again cuts it off (that task is simply run again). Every record
carries the task id, so a resumed run skips finished tasks and never writes a task twice.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from extes.signatures.dialogue import Dialogue

FILES = ("accepted", "rejected", "queued", "failed")


class RunStore:
    """The four JSONL files of a run folder, appended to under a lock."""

    def __init__(self, folder: Path, files: tuple[str, ...] = FILES, dialogues: tuple[str, ...] = ("accepted",)):
        """`files`: the JSONL files of the folder; `dialogues`: those whose records are corpus Dialogues."""
        self.folder = Path(folder)
        self.files, self.dialogue_files = files, dialogues
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.records: dict[str, list[dict[str, Any]]] = {name: self._load(name) for name in files}
        self.done: set[str] = {task_of(r) for recs in self.records.values() for r in recs}
        self._accepted = [Dialogue.model_validate(r) for n in dialogues for r in self.records[n]]

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def _load(self, name: str) -> list[dict[str, Any]]:
        path = self.path(name)
        if not path.exists():
            return []
        data = path.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]  # a partial last line is the task that was cut off
        if len(keep) != len(data):
            with open(path, "r+b") as fh:
                fh.truncate(len(keep))
        out = []
        for line in keep.decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out.append(rec)
        return out

    def append(self, name: str, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.records[name].append(record)
            self.done.add(task_of(record))
            if name in self.dialogue_files:
                self._accepted.append(Dialogue.model_validate(record))

    def count(self, name: str) -> int:
        return len(self.records[name])

    def accepted_dialogues(self) -> list[Dialogue]:
        """The accepted dialogues, parsed once (kept in step with every append)."""
        with self._lock:
            return list(self._accepted)

    def totals(self) -> dict[str, float]:
        tot = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "program_calls": 0}
        for recs in self.records.values():
            for r in recs:
                u = usage_of(r)
                for k in tot:
                    tot[k] += u.get(k, 0)
        return tot


def task_of(record: dict[str, Any]) -> str:
    return record.get("task") or record["meta"]["task"]


def usage_of(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("usage") or (record.get("meta") or {}).get("usage") or {}
