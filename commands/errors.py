"""What the CLI's one top-level handler says about a failure: one line with the fix, and the exit code.

Readers name the file and record themselves (InputError); this table is the net under them, for failures that
reach the top as third-party exceptions: files (OSError and its kinds), bytes (UnicodeDecodeError), parsers
(RecursionError, JSONDecodeError), LM servers (DSPy's LMError family) and Ctrl-C.
"""

from __future__ import annotations

import errno
import json
import os

import click

from extes.corpus.provenance import redact
from extes.errors import ExtesError

RERUN = "run with -v for the traceback"


def one_line(message: object, limit: int = 400) -> str:
    """A message on one line: newlines folded, credentials in URLs redacted, cut to `limit` characters."""
    text = " ".join(str(message).split())
    return redact(text if len(text) <= limit else text[: limit - 3] + "...")


def debug_enabled(ctx: click.Context) -> bool:
    """`extes -v ...` or EXTES_DEBUG=1: let an unexpected exception show its traceback."""
    return bool(ctx.find_root().params.get("verbose")) or os.environ.get("EXTES_DEBUG", "") not in ("", "0")


def _api_base(ctx: click.Context) -> str | None:
    args = list(ctx.meta.get("extes.argv") or [])
    for i, a in enumerate(args):
        if a == "--api-base" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--api-base="):
            return a.split("=", 1)[1]
    return None


# The fix for an OSError, by its kind or its errno: the first row that matches answers.
_OS_FIXES: tuple[tuple[tuple[type[OSError], ...], tuple[int, ...], str], ...] = (
    ((PermissionError,), (errno.EACCES, errno.EPERM),
     "permission denied; choose a path you can write (or read), or fix its permissions"),
    ((IsADirectoryError,), (), "is a folder; give a file path"),
    ((FileExistsError,), (), "exists and is not a folder; choose another path"),
    ((NotADirectoryError,), (), "a part of this path is a file, not a folder; choose another path"),
    ((FileNotFoundError,), (),
     "no such file or folder; check the path (a folder to write in must exist or be creatable)"),
    ((), (errno.ENOSPC,), "no space left on the device; free some space and rerun"),
    ((), (errno.EROFS,), "the file system is read-only; write somewhere else"),
)

# What an LM failure means, by DSPy's exception class (in dspy.utils.exceptions); the first match answers.
_LM_FIXES = (
    ("LMTransportError", "cannot reach {where} ({first}); start the server (or fix --api-base, or check the network)"),
    ("LMAuthError", "{where} refused the key ({first}); set a valid OPENAI_API_KEY"),
    ("LMRateLimitError", "{where} is rate-limiting ({first}); wait and rerun, or lower --workers"),
    ("LMTimeoutError", "{where} timed out ({first}); rerun, or raise --timeout"),
)


def _os_error(e: OSError) -> str:
    path = e.filename if e.filename is not None else "a file"
    if e.filename2 is not None:
        path = f"{path} -> {e.filename2}"
    for kinds, errnos, fix in _OS_FIXES:
        if isinstance(e, kinds) or e.errno in errnos:
            return f"{path}: {fix}"
    return f"{path}: {e.strerror or type(e).__name__}; check the path"


def _lm_error(e: Exception, ctx: click.Context) -> str:
    from dspy.utils import exceptions

    base = _api_base(ctx)
    where = f"the LM server at {redact(base)}" if base else "the LM provider"
    first = one_line(str(e).splitlines()[0] if str(e) else type(e).__name__, 200)
    for name, fix in _LM_FIXES:
        if isinstance(e, getattr(exceptions, name)):
            return fix.format(where=where, first=first)
    return f"the LM call to {where} failed ({first}); check the model name and the server"


def describe_failure(e: BaseException, ctx: click.Context) -> tuple[str, int]:
    """(the line to print, the exit code) for an exception that reached the top of a command."""
    if isinstance(e, ExtesError):
        return f"Error: {one_line(e)}", e.exit_code
    if isinstance(e, KeyboardInterrupt):
        return "Interrupted (Ctrl-C); outputs are written whole or not at all, rerun the same command to resume", 130
    if isinstance(e, RecursionError):
        return "Error: an input is nested too deeply to read (RecursionError); check the input files", 2
    if isinstance(e, UnicodeDecodeError):
        return f"Error: an input file is not UTF-8 (bad byte at offset {e.start}); re-save it as UTF-8", 2
    if isinstance(e, json.JSONDecodeError):
        return f"Error: invalid JSON at line {e.lineno} column {e.colno} ({e.msg}); fix the file", 2
    if isinstance(e, OSError) and (e.filename is not None or e.errno in (errno.ENOSPC, errno.EROFS)):
        return f"Error: {one_line(_os_error(e))}", 2
    try:
        from dspy.utils.exceptions import LMError
    except ImportError:  # pragma: no cover - dspy is a dependency; the table must not fail without it
        LMError = ()  # noqa: N806
    if LMError and isinstance(e, LMError):
        return f"Error: {_lm_error(e, ctx)}", 2
    if isinstance(e, MemoryError):
        return f"Error: out of memory; use a smaller model, batch or input ({RERUN})", 1
    return f"Error: unexpected {type(e).__name__}: {one_line(e, 240)} ({RERUN})", 1
