"""Load and validate the shipped assets (taxonomy, ESConv label set, prompts, seeds) in one place."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from extes.base import ASSET_VERSION as ASSET_VERSION
from extes.base import asset_models as _models
from extes.base import assets_dir as assets_dir
from extes.base import read_yaml as read_yaml
from extes.errors import AssetError
from extes.signatures.taxonomy import Scenario, Strategy, Taxonomy


class EsconvStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    extes: str


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
