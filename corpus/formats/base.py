"""What every corpus reader shares: options, the result, record errors, label normalization, the JSON-list loop."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from extes.corpus import textio
from extes.corpus.atomic import write_text_atomic
from extes.corpus.formats.jsonerr import parse_array_prefix
from extes.corpus.labels import esconv_to_extes, normalizer
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue, Turn


class RecordError(Exception):
    """A problem with one record; the reader adds file and index, or skips it under --skip-invalid."""


@dataclass
class ReadOptions:
    """How to read: skip bad records or stop at the first; what to do with labels outside the label set."""

    skip_invalid: bool = False
    unknown_labels: str | None = None  # "error" | "keep"; None = the format's default
    map_esconv: bool = False  # ESConv labels → ExTES labels with the documented mapping


@dataclass
class ReadResult:
    """Dialogues read, records skipped (one-line reasons) and label flags counted by label."""

    dialogues: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    flagged: Counter = field(default_factory=Counter)

    def skip_or_raise(self, opts: ReadOptions, where: str, problem: str) -> None:
        if not opts.skip_invalid:
            raise InputError(f"{where}: {problem}")
        self.skipped.append(f"{where}: {problem}")

    def add(self, opts: ReadOptions, where: str, build: Callable[..., Dialogue], *args: Any) -> None:
        """The one record step of every reader: `build(*args)` appended, or its RecordError raised or skipped."""
        try:
            self.dialogues.append(build(*args))
        except RecordError as e:
            self.skip_or_raise(opts, where, str(e))


def build_dialogue(**fields: Any) -> Dialogue:
    """A Dialogue from its fields; pydantic's refusal becomes a RecordError (the reader adds file and index)."""
    try:
        return Dialogue(**fields)
    except ValidationError as e:
        raise RecordError(e.errors()[0]["msg"]) from None


def record_where(path: Path, index: int, line: int | None = None) -> str:
    return f"{path}: record {index}" + (f" (line {line})" if line is not None else "")


def labelled_turn(
    role: str, text: str, raw_label: str | None, *, label_set: str, opts: ReadOptions, default_unknown: str,
    turn_index: int, flags: list[dict],
) -> Turn:
    """Build a turn, normalizing its label; unknown labels are kept and flagged, or raise a RecordError."""
    if role != "assistant":
        if raw_label and isinstance(raw_label, str):
            flags.append({"turn": turn_index, "label": raw_label, "problem": "label on a user turn (dropped)"})
        return Turn(role=role, text=text)
    if raw_label is not None and not isinstance(raw_label, str):
        raise RecordError(f"turn {turn_index}: the strategy must be a string, got {type(raw_label).__name__} "
                          f"{str(raw_label)[:40]!r}; write the label as text (or leave it empty)")
    norm = normalizer(label_set).normalize(raw_label)
    label = norm.label
    raw = raw_label if norm.changed and raw_label not in (None, "") else None
    if not norm.known:
        if (opts.unknown_labels or default_unknown) == "error":
            raise RecordError(
                f"turn {turn_index}: unknown strategy {raw_label!r} (not one of the {label_set} labels in assets/); "
                "fix the label, or pass --unknown-labels keep to keep and flag it, or --skip-invalid"
            )
        flags.append({"turn": turn_index, "label": label, "problem": "unknown label"})
    elif label_set == "esconv" and opts.map_esconv and label is not None:
        raw = raw_label
        label = esconv_to_extes()[label]
    return Turn(role="assistant", text=text, strategy=label, strategy_raw=raw)


def read_text(path: Path) -> str:
    """Read a UTF-8 corpus file (a BOM is dropped); a missing file or bad bytes become a one-line InputError."""
    return textio.read_text(path, folder_hint="give a file, or --from seeds/hf/run for a folder")


def load_json_list(path: Path, opts: ReadOptions, result: ReadResult) -> list:
    """The records of a file holding one JSON list; a broken file names the record and line where it breaks."""
    text = read_text(path)
    items, bad, message = parse_array_prefix(text)
    if bad is not None:
        if not text.strip():
            raise InputError(f"{path}: the file is empty; expected a JSON list of dialogues")
        where = f"{path}: record {bad}"
        if not opts.skip_invalid:
            raise InputError(f"{where}: {message}; the file is truncated or malformed, re-export it or fix the JSON")
        result.skipped.append(f"{where}: {message}; this record and everything after it were skipped")
    return items


def read_json_records(path: Path, opts: ReadOptions, to_dialogue: Callable[..., Dialogue]) -> ReadResult:
    """Read a file holding one JSON list: `to_dialogue(record, index, path, opts)` for each record."""
    result = ReadResult()
    for i, rec in enumerate(load_json_list(path, opts, result)):
        result.add(opts, record_where(path, i), to_dialogue, rec, i, path, opts)
    return result


def write_json_records(dialogues: list[Dialogue], path: Path, to_record: Callable[[Dialogue], dict]) -> None:
    """Write a file holding one JSON list, `to_record(d)` for each dialogue (atomically)."""
    records = [to_record(d) for d in dialogues]
    write_text_atomic(path, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
