"""Load and validate the shipped assets (taxonomy, ESConv label set, prompts, seeds) in one place."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from extes.errors import AssetError
from extes.signatures.taxonomy import Scenario, Strategy, Taxonomy

ASSET_VERSION = 1


class EsconvStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    extes: str


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


def _versioned(path: Path, key: str) -> list[Any]:
    data = read_yaml(path)
    if not isinstance(data, dict) or key not in data:
        raise AssetError(f"{path}: expected a mapping with 'version' and '{key}'; see the shipped file for the shape")
    if data.get("version") != ASSET_VERSION:
        raise AssetError(f"{path}: version {data.get('version')!r} is not supported; this extes reads version 1")
    items = data[key]
    if not isinstance(items, list):
        raise AssetError(f"{path}: '{key}' must be a list")
    return items


def _models(path: Path, key: str, model: type[BaseModel]) -> list[Any]:
    out = []
    for i, item in enumerate(_versioned(path, key)):
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise AssetError(f"{path}: {key}[{i}].{loc}: {err['msg']}") from None
    return out


@functools.lru_cache(maxsize=4)
def _load_taxonomy(folder: str) -> Taxonomy:
    base = Path(folder)
    strategies = _models(base / "strategies.yaml", "strategies", Strategy)
    scenarios = _models(base / "scenarios.yaml", "scenarios", Scenario)
    try:
        return Taxonomy(strategies=strategies, scenarios=scenarios)
    except ValidationError as e:
        raise AssetError(f"{base}: {e.errors()[0]['msg']}") from None


def load_taxonomy() -> Taxonomy:
    """The 16 strategies and 36 scenarios, validated."""
    return _load_taxonomy(str(assets_dir()))


@functools.lru_cache(maxsize=4)
def _load_esconv(folder: str) -> list[EsconvStrategy]:
    return _models(Path(folder) / "esconv_strategies.yaml", "strategies", EsconvStrategy)


def load_esconv_strategies() -> list[EsconvStrategy]:
    """ESConv's 8 strategies with their variants and the optional mapping onto ExTES."""
    return _load_esconv(str(assets_dir()))


@functools.lru_cache(maxsize=4)
def _load_from_extes(folder: str) -> dict[str, str]:
    path = Path(folder) / "esconv_strategies.yaml"
    data = read_yaml(path)
    table = data.get("from_extes") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise AssetError(f"{path}: no 'from_extes' mapping (ExTES strategy -> ESConv strategy); see the shipped file")
    esconv = {s.name for s in _load_esconv(folder)}
    extes = {s.name for s in _load_taxonomy(folder).strategies}
    for k, v in table.items():
        if k not in extes or v not in esconv:
            raise AssetError(f"{path}: from_extes: {k!r} -> {v!r} must map an ExTES strategy onto an ESConv one")
    missing = sorted(extes - set(table))
    if missing:
        raise AssetError(f"{path}: from_extes lacks {', '.join(missing)}; map every ExTES strategy")
    return dict(table)


def load_extes_to_esconv() -> dict[str, str]:
    """The documented ExTES → ESConv mapping (`from_extes` in esconv_strategies.yaml), validated."""
    return _load_from_extes(str(assets_dir()))


def prompt_text(name: str) -> str:
    """A prompt template from assets/prompts/ (e.g. `self_chat.txt`)."""
    path = assets_dir() / "prompts" / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AssetError(f"{path}: prompt template is missing; reinstall extes or restore the file") from None
