"""Read the hand-made seed dialogues (assets/seeds/*.yaml, one file per scenario)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from extes.corpus.assets import assets_dir, read_yaml
from extes.errors import AssetError, InputError
from extes.signatures.dialogue import Dialogue, Meta, Turn


def seeds_dir() -> Path:
    return assets_dir() / "seeds"


def _turn(item: object, where: str) -> Turn:
    if not isinstance(item, dict):
        raise InputError(f"{where}: a turn must be a mapping like '- user: ...' or '- assistant: ...'")
    roles = [r for r in ("user", "assistant") if r in item]
    extra = set(item) - {"user", "assistant", "strategy"}
    if len(roles) != 1 or extra:
        raise InputError(
            f"{where}: a turn has exactly one of 'user'/'assistant' (+ 'strategy'); got keys {sorted(item)}"
        )
    role = roles[0]
    text = item[role]
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: the {role} text is empty; write the utterance")
    if role == "user" and item.get("strategy") is not None:
        raise InputError(f"{where}: a user turn carries no strategy; move it to the assistant turn")
    return Turn(role=role, text=text.strip(), strategy=item.get("strategy"))


def read_seed_file(path: Path) -> list[Dialogue]:
    """One scenario's seed file → dialogues (provenance: source=seed, origin=file#index)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not {"version", "scene", "dialogues"} <= set(data):
        raise InputError(f"{path}: a seed file is a mapping with 'version', 'scene' and 'dialogues'")
    if data["version"] != 1:
        raise InputError(f"{path}: version {data['version']!r} is not supported; use version: 1")
    out = []
    for i, d in enumerate(data["dialogues"] or []):
        where = f"{path} record {i}"
        if not isinstance(d, dict) or not {"id", "description", "turns"} <= set(d):
            raise InputError(f"{where}: a seed dialogue needs 'id', 'description' and 'turns'")
        turns = [_turn(t, f"{where} turn {j}") for j, t in enumerate(d["turns"] or [])]
        try:
            out.append(
                Dialogue(
                    id=str(d["id"]),
                    scene=data["scene"],
                    description=str(d["description"]).strip(),
                    turns=turns,
                    meta=Meta(source="seed", origin=f"{path.name}#{i}"),
                )
            )
        except ValidationError as e:
            raise InputError(f"{where} ({d['id']}): {e.errors()[0]['msg']}") from None
    return out


def read_seed_folder(folder: Path | None = None) -> list[Dialogue]:
    """Every seed dialogue of a folder of seed files, in file order."""
    folder = Path(folder) if folder else seeds_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise AssetError(f"{folder}: no seed files (*.yaml) found; restore assets/seeds or point to a seed folder")
    out: list[Dialogue] = []
    for f in files:
        out.extend(read_seed_file(f))
    return out
