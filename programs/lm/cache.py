"""The extes cache folder (`$EXTES_CACHE`, default `~/.cache/extes`) and file hashes remembered in it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from extes.corpus.atomic import atomic_path


def cache_root() -> Path:
    base = os.environ.get("EXTES_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "extes"
    )
    return Path(base)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so a cached load does not re-read 100 MB."""
    st = path.stat()
    memo = cache_root() / "hashes.json"
    key = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    known = {}
    if memo.exists():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    known[key] = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(memo) as tmp:
        tmp.write_text(json.dumps(known))
    return known[key]
