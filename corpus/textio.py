"""Reading user files the same way everywhere: UTF-8 with or without a BOM, and one-line errors naming the file.

Every reader of a user-given file (corpora, histories, labelled sets, decisions, sheets, text lines) goes through
`read_text`, so a folder, a missing or unreadable file, bad bytes or a BOM are handled once; `loads` is
`json.loads` with the one failure the standard library does not turn into a `ValueError` (deep nesting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from extes.errors import InputError

MAX_DEPTH_HINT = "nested too deeply (more levels than any corpus record has); fix or remove it"


def read_text(path: str | Path, *, label: str = "", folder_hint: str = "give a file") -> str:
    """The file's text (UTF-8, a leading BOM dropped); any problem is one InputError naming `label path`."""
    where = f"{label} {path}".strip()
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{where}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a folder; {folder_hint}") from None
    except PermissionError:
        raise InputError(f"{where}: permission denied; make the file readable (chmod +r) or copy it") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 (bad byte at offset {e.start}); re-save the file as UTF-8") from None
    except OSError as e:
        raise InputError(f"{where}: cannot be read ({e.strerror or e}); check the path") from None


def loads(text: str) -> Any:
    """`json.loads`, raising ValueError (not RecursionError) for a value nested too deeply to parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(MAX_DEPTH_HINT) from None


def first_line(e: BaseException | str, limit: int = 160) -> str:
    """The first line of an exception's message, cut to `limit` characters (messages must stay on one line)."""
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:limit]
