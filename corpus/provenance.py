"""What every run's manifest records about the code that made it (git hash, package versions), and what it must
not record (credentials inside URLs)."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def git_hash() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[1])
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Python and the versions of the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("extes", "dspy", "transformers", "torch", "peft", "openai", "litellm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


# Credentials inside URLs: userinfo (http://user:secret@host) and secret-looking query parameters (?api_key=...).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|secret|client[_-]?secret|password|passwd|pass|pwd|"
    r"sig|signature|auth|authorization|code)=)[^&#;\s]*"
)


def redact(value: Any) -> Any:
    """`value` with every credential inside a URL replaced by `***` (strings, and lists/dicts of them, walked).

    Used wherever a URL is recorded (manifests, logs, error messages), so that `--api-base
    http://user:secret@host/v1` or `...?key=sk-...` never reaches a file or a terminal in full.
    """
    if isinstance(value, str):
        return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def scrub(text: str, url: str | None) -> str:
    """`text` (a library's error message) with `url`'s credentials replaced by `***` wherever they appear, even
    where the library quotes them without the scheme (`cannot connect to user:secret@host`)."""
    text = redact(text)
    if not url:
        return text
    parts = urlsplit(url)
    secrets = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        secrets += [userinfo, *userinfo.split(":")]
    secrets += [v for k, v in parse_qsl(parts.query) if _SECRET_QUERY.search(f"?{k}={v}")]
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def recorded_argv(argv: list[str]) -> list[str]:
    """The command line as a manifest records it: arguments naming a key dropped, URLs redacted."""
    return [redact(a) for a in argv if "key" not in a.lower().split("://")[0]]


def content_sha256(path: str | Path | None) -> str | None:
    """SHA-256 of a file's bytes, or of every file under a folder (names and bytes, in sorted order); None for None.

    Resumable runs record it, so that a resume on changed data is refused instead of mixing two runs.
    """
    import hashlib

    if path is None:
        return None
    root = Path(path)
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        if f != root:
            h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
