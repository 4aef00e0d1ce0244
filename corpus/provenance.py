"""What every run's manifest records about the code that made it: git hash and package versions."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


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
