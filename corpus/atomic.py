"""Atomic writes and output folders: an output appears whole or not at all, and nothing extes did not write is lost.

Every folder extes writes carries a marker file (`.extes-output.json`, naming the kind of output). A folder may
be written into (or replaced) only when it is new, empty, marked with the same kind, or laid out exactly as a
previous output of that kind (written before markers existed); anything else is refused with one line, so a
user's own folder is never deleted or overwritten. Outputs that are not regular files (a device, a FIFO,
/dev/stdout) are written in place, never renamed over.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from extes.errors import OutputError

MARKER = ".extes-output.json"

# kind -> layouts (files that must all be there, patterns every entry must match) of an output of that kind written
# before markers existed. A kind not listed here is recognized by its marker alone.
_TUNE_FILES = ("extes_tune.json", "adapter_config.json", "*.safetensors", "checkpoint", "README.md", "config.json",
               "generation_config.json", "tokenizer*", "special_tokens_map.json", "vocab.json", "merges.txt",
               "chat_template.jinja")
LEGACY_LAYOUTS: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "hf-dataset": [(("state.json", "dataset_info.json"), ("state.json", "dataset_info.json", "data-*.arrow",
                                                          "README.md"))],
    "split": [(("train.jsonl", "valid.jsonl", "test.jsonl"), ("train.jsonl", "valid.jsonl", "test.jsonl"))],
    "stats": [(("stats.json", "report.md"), ("stats.json", "report.md", "*_phases.png", "*_transitions.png",
                                              "*_phases.csv"))],
    "tune": [(("extes_tune.json",), _TUNE_FILES), (("checkpoint",), _TUNE_FILES)],
    "tune-checkpoint": [(("state.pt",), ("state.pt",))],
    "evaluate": [(("samples.jsonl",), ("samples.jsonl", "metrics.json", "report.md", "manifest.json"))],
    "synthesize": [(("manifest.json",), ("manifest.json", "accepted.jsonl", "rejected.jsonl", "queued.jsonl",
                                         "failed.jsonl", "review.jsonl"))],
}

# Write failures that are the place's fault, not the program's: reported in one line with the fix.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
                 errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


def _entries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]


def is_output_of(folder: Path, kind: str) -> bool:
    """True when `folder` holds a previous extes output of `kind` (its marker, or the exact legacy layout)."""
    marker = folder / MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text(encoding="utf-8")).get("kind") == kind
        except (ValueError, OSError, AttributeError):
            return False
    names = _entries(folder)
    return any(all(r in names for r in required) and all(any(fnmatch.fnmatch(n, p) for p in allowed) for n in names)
               for required, allowed in LEGACY_LAYOUTS.get(kind, []))


def check_output_dir(path: str | os.PathLike, kind: str, *, option: str = "--out") -> Path:
    """Raise OutputError unless `path` is new, an empty folder, or a previous extes output of `kind`.

    Call it before spending compute, so that a refused folder costs nothing.
    """
    folder = Path(path)
    if not folder.exists() and not folder.is_symlink():
        return folder
    if not folder.is_dir():
        raise OutputError(f"{option} {folder}: exists and is not a folder; give a new folder")
    if not _entries(folder) or is_output_of(folder, kind):
        return folder
    marker = folder / MARKER
    other = ""
    if marker.is_file():
        with contextlib.suppress(ValueError, OSError, AttributeError):
            other = f" (it holds an extes {json.loads(marker.read_text(encoding='utf-8')).get('kind')} output)"
    raise OutputError(f"{option} {folder}: a non-empty folder that is not an extes {kind} output{other}; extes "
                      f"never overwrites it: give a new or empty folder")


def mark_output_dir(folder: str | os.PathLike, kind: str) -> None:
    """Write the marker that lets a later run of the same kind recognize (and reuse) the folder."""
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind, "written_by": "extes"}) + "\n", encoding="utf-8")


def claim_output_dir(path: str | os.PathLike, kind: str, *, option: str = "--out") -> Path:
    """Check `path` (see `check_output_dir`), create it and mark it; for outputs written into a folder in place."""
    folder = check_output_dir(path, kind, option=option)
    with write_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / MARKER).exists():
            mark_output_dir(folder, kind)
    return folder


@contextlib.contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write (disk full, read-only, no permission) into a one-line OutputError naming `path`."""
    try:
        yield
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        raise OutputError(f"{path}: cannot write ({os.strerror(e.errno)}); free space or give another path") from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False, kind: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success it replaces `path`, on any error it is removed.

    A folder (`is_dir`) replaces `path` only if that is new, empty or a previous output of `kind` (checked
    before and after the work); it gets the marker. A `path` that exists and is not a regular file (a device, a
    FIFO, /dev/stdout) is yielded itself and written in place; a symlink to a file keeps the link.
    """
    target = Path(path)
    with write_errors(target):
        if is_dir:
            check_output_dir(target, kind)
        elif target.is_dir():
            raise OutputError(f"{target}: is a folder; give a file path")
        elif target.exists() and not stat.S_ISREG(os.stat(target).st_mode):
            yield target  # a device or pipe: renaming over it would replace it with a regular file
            return
        elif target.is_symlink():
            target = Path(os.path.realpath(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output file gets the usual permissions
        try:
            yield tmp
            if is_dir:
                mark_output_dir(tmp, kind)
                _replace_dir(tmp, target, kind)
            else:
                os.replace(tmp, target)
        except BaseException:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise


def _replace_dir(tmp: Path, target: Path, kind: str) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    check_output_dir(target, kind)  # again: the folder may have been filled while the work ran
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old / "x")
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)  # only ever a folder extes wrote (checked above)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
