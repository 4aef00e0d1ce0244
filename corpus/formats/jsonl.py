"""JSONL, the project's own lossless format: one Dialogue (pydantic JSON) per line."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from extes.corpus.atomic import atomic_path
from extes.corpus.formats.base import ReadOptions, ReadResult, RecordError, read_text, record_where
from extes.corpus.labels import normalizer
from extes.signatures.dialogue import Dialogue


def _check_labels(d: Dialogue, opts: ReadOptions) -> str | None:
    if (opts.unknown_labels or "error") == "keep":
        return None
    norm = normalizer(d.meta.label_set)
    for j, t in enumerate(d.turns):
        if t.role == "assistant" and not norm.is_known(t.strategy):
            flagged = any(f.get("turn") == j and f.get("problem") == "unknown label" for f in d.meta.flags)
            if not flagged:
                return (f"turn {j}: unknown strategy {t.strategy!r} (not one of the {d.meta.label_set} labels); fix "
                        "the label, or pass --unknown-labels keep to keep and flag it, or --skip-invalid")
    return None


def read_jsonl(path: Path, opts: ReadOptions) -> ReadResult:
    """Read a JSONL corpus; a broken line names its record index and line number."""
    result = ReadResult()
    index = 0
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            result.add(opts, record_where(path, index, lineno), line_to_dialogue, line, opts)
            index += 1
    return result


def line_to_dialogue(line: str, opts: ReadOptions) -> Dialogue:
    """One JSONL line → Dialogue (raises RecordError naming the column or field that is wrong)."""
    try:
        d = Dialogue.model_validate_json(line)  # pydantic-core parses and validates in one pass
    except ValidationError as e:
        err = e.errors()[0]
        if err["type"] == "json_invalid":
            why = str((err.get("ctx") or {}).get("error", err["msg"]))
            col = re.search(r"column (\d+)", why)
            at = col.group(1) if col else "?"
            raise RecordError(f"invalid JSON at column {at} ({why}); fix or remove the line") from None
        raise RecordError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    problem = _check_labels(d, opts)
    if problem:
        raise RecordError(problem)
    return d


def dialogue_line(d: Dialogue) -> str:
    return d.model_dump_json(exclude_none=False)


def write_jsonl(dialogues: list[Dialogue], path: Path) -> None:
    """Write dialogues as JSONL (atomically)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for d in dialogues:
            fh.write(dialogue_line(d) + "\n")
