"""The base layer every other layer may import: where the assets are and how an asset file is read.

Nothing here imports the rest of extes (only `extes.errors`), so the contracts in `signatures/` can read the
strategy names they are typed with without reaching up into `corpus/`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from extes.errors import AssetError

ASSET_VERSION = 1


def assets_dir() -> Path:
    """The assets folder: `$EXTES_ASSETS` when set (for user-made asset sets), else the shipped one."""
    override = os.environ.get("EXTES_ASSETS")
    if override:
        return Path(override)
    return Path(str(resources.files("extes") / "assets"))


def read_yaml(path: Path) -> Any:
    """Read a YAML asset, turning any problem into a one-line AssetError naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (some Windows editors) is read, not rejected
    except FileNotFoundError:
        raise AssetError(
            f"{path}: asset file is missing; reinstall extes or set EXTES_ASSETS to a full asset folder"
        ) from None
    except UnicodeDecodeError as e:
        raise AssetError(f"{path}: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise AssetError(f"{path}:{where} invalid YAML ({problem}); fix the syntax") from None
    except RecursionError:  # PyYAML composes nodes recursively: a hostile nesting depth must not crash the reader
        raise AssetError(f"{path}: invalid YAML (nested too deeply to read); flatten the document") from None


def versioned_items(path: Path, key: str) -> list[Any]:
    """The list under `key` of a versioned asset file (`version: 1`), or a one-line AssetError."""
    data = read_yaml(path)
    if not isinstance(data, dict) or key not in data:
        raise AssetError(f"{path}: expected a mapping with 'version' and '{key}'; see the shipped file for the shape")
    if data.get("version") != ASSET_VERSION:
        raise AssetError(f"{path}: version {data.get('version')!r} is not supported; this extes reads version 1")
    items = data[key]
    if not isinstance(items, list):
        raise AssetError(f"{path}: '{key}' must be a list")
    return items


def asset_models(path: Path, key: str, model: type[BaseModel]) -> list[Any]:
    """`versioned_items` validated as `model`, the first bad item named by its index and field."""
    out = []
    for i, item in enumerate(versioned_items(path, key)):
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise AssetError(f"{path}: {key}[{i}].{loc}: {err['msg']}") from None
    return out


def die_with_parent() -> None:
    """Linux: get SIGTERM when the parent process dies (elsewhere: nothing)."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
