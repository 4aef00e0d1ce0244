"""Find where a broken JSON array breaks: which record, which line; and salvage the records before it."""

from __future__ import annotations

import json


def parse_array_prefix(text: str) -> tuple[list, int | None, str]:
    """Parse a top-level JSON array element by element.

    Returns the elements parsed, the index of the first element that failed (None when all parsed) and the
    decoder's message for it, so that a truncated file can name the record and line where it breaks.
    """
    dec = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "[":
        return [], 0, "the file is not a JSON list"
    i = _skip_ws(text, i + 1)
    items: list = []
    if i < len(text) and text[i] == "]":
        return items, None, ""
    while True:
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            return items, len(items), f"invalid JSON at line {e.lineno} column {e.colno} ({e.msg})"
        except RecursionError:  # the stdlib parser recurses per level; a hostile file must not crash the reader
            line = text.count("\n", 0, i) + 1
            return items, len(items), f"invalid JSON at line {line} (nested too deeply to parse)"
        items.append(obj)
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            return items, None, ""
        line = text.count("\n", 0, i) + 1
        return items, len(items), f"invalid JSON at line {line} (expected ',' or ']'; the file ends early or is cut)"


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
