"""Hugging Face `datasets`: to and from a `Dataset`, and `save_to_disk` folders.

Columns: id, scene, description, turns (list of {role, text, strategy, strategy_raw}), meta (JSON text, so that
provenance of any shape survives Arrow's fixed schemas).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from extes.corpus.atomic import atomic_path
from extes.corpus.formats.base import ReadOptions, ReadResult, RecordError
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue


def to_hf_dataset(dialogues: list[Dialogue]):
    """Dialogues → `datasets.Dataset` (lossless)."""
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "scene": datasets.Value("string"),
            "description": datasets.Value("string"),
            "turns": datasets.List(
                {
                    "role": datasets.Value("string"),
                    "text": datasets.Value("string"),
                    "strategy": datasets.Value("string"),
                    "strategy_raw": datasets.Value("string"),
                }
            ),
            "meta": datasets.Value("string"),
        }
    )
    rows = [
        {
            "id": d.id,
            "scene": d.scene,
            "description": d.description,
            "turns": [t.model_dump() for t in d.turns],
            "meta": d.meta.model_dump_json(),
        }
        for d in dialogues
    ]
    return datasets.Dataset.from_list(rows, features=features)


def from_hf_dataset(ds, *, origin: str = "dataset", opts: ReadOptions | None = None) -> ReadResult:
    """`datasets.Dataset` (or DatasetDict, splits concatenated in order) → dialogues."""
    import datasets

    opts = opts or ReadOptions()
    result = ReadResult()
    parts = list(ds.values()) if isinstance(ds, datasets.DatasetDict) else [ds]
    index = 0
    for part in parts:
        for row in part:
            result.add(opts, f"{origin}: record {index}", row_to_dialogue, row)
            index += 1
    return result


def row_to_dialogue(row: dict) -> Dialogue:
    """One dataset row → Dialogue (meta is JSON text; raises RecordError on a row of another shape)."""
    try:
        meta = json.loads(row["meta"]) if isinstance(row.get("meta"), str) else (row.get("meta") or {})
        return Dialogue.model_validate({**row, "meta": meta})
    except (ValidationError, json.JSONDecodeError, TypeError) as e:
        raise RecordError(f"not a dialogue row ({str(e).splitlines()[0]})") from None


def read_hf(path: Path, opts: ReadOptions) -> ReadResult:
    """Read a folder written by `save_to_disk`."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        msg = "not a Hugging Face dataset folder (no dataset_info/state files); check the path"
        raise InputError(f"{path}: {msg}") from None
    return from_hf_dataset(ds, origin=str(path), opts=opts)


def write_hf(dialogues: list[Dialogue], path: Path, card: str | None = None) -> None:
    """Write a `save_to_disk` folder (atomically: built aside, then moved into place), with a README.md card."""
    ds = to_hf_dataset(dialogues)
    with atomic_path(path, is_dir=True, kind="hf-dataset") as tmp:
        ds.save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card or dataset_card(dialogues), encoding="utf-8")


def dataset_card(dialogues: list[Dialogue], run: dict | None = None) -> str:
    """A dataset card: counts, scenes, strategies, models, and (for a synthesis run) cost and yield."""
    from collections import Counter

    scenes = Counter(d.scene for d in dialogues)
    strategies = Counter(t.strategy for d in dialogues for t in d.assistant_turns() if t.strategy)
    models = Counter(d.meta.model or d.meta.source for d in dialogues)
    lines = ["---", "language: en", "task_categories: [text-generation]", "tags: [emotional-support, dialogue, extes]",
             "---", "", "# Emotional-support dialogues (extes)", "",
             f"{len(dialogues)} dialogues, {sum(len(d.turns) for d in dialogues)} utterances, "
             f"{len(scenes)} scenes, {len(strategies)} strategies. Written by `extes`.", ""]
    if run:
        lines += ["## Synthesis run", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in run.items()]
        lines.append("")
    lines += ["## Models", "", *(f"- {m}: {n}" for m, n in models.most_common()), "",
              "## Scenes", "", "| scene | dialogues |", "|---|---|",
              *(f"| {s} | {n} |" for s, n in scenes.most_common()), "",
              "## Strategies", "", "| strategy | assistant turns |", "|---|---|",
              *(f"| {s} | {n} |" for s, n in strategies.most_common()), ""]
    return "\n".join(lines)

