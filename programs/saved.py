"""Loading a saved program (`Module.save` JSON from compile or distill) with one error policy for every caller."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import dspy

from extes.errors import InputError

P = TypeVar("P", bound=dspy.Module)


def load_saved(program: P, path: str | Path, option: str, what: str) -> P:
    """`program` with the state saved at `path`, or a one-line InputError naming `option`, the file and `what` it
    should have been (`option FILE: not WHAT (why)`)."""
    try:
        program.load(str(path))
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        raise InputError(f"{option} {path}: not {what} ({str(e)[:120]})") from None
    return program
