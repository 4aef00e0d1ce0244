"""A deterministic split by dialogue: seeded, stratified by scene, identical on every machine.

Dialogues are grouped by scene; scenes are ordered, and dialogues shuffled within each scene, by `random.Random`
seeded with a string (Python hashes string seeds with SHA-512, so the order does not depend on the platform or
PYTHONHASHSEED). Walking the scenes in that order, each dialogue goes to the split that is furthest behind its
target share so far. So every split gets its exact global share (largest remainder), and each scene's dialogues
are spread over the splits in proportion, as far as its size allows.
"""

from __future__ import annotations

import random
from collections import defaultdict

from extes.errors import InputError
from extes.signatures.dialogue import Dialogue

SPLITS = ("train", "valid", "test")


def parse_ratios(text: str) -> tuple[float, float, float]:
    """`8:1:1` → (0.8, 0.1, 0.1)."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise InputError(f"--ratios {text!r}: give three non-negative numbers like 8:1:1 (train:valid:test)")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def targets(n: int, ratios: tuple[float, ...]) -> list[int]:
    """Largest-remainder allocation of n items to the ratios (ties go to the earlier split)."""
    raw = [n * r for r in ratios]
    counts = [int(x) for x in raw]
    order = sorted(range(len(ratios)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def split_dialogues(
    dialogues: list[Dialogue], *, seed: int = 0, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, list[Dialogue]]:
    """Split by dialogue (never by turn) into train/valid/test."""
    ids = [d.id for d in dialogues]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"dialogue id {dup!r} occurs more than once; ids must be unique to split by dialogue")
    by_scene: dict[str, list[Dialogue]] = defaultdict(list)
    for d in dialogues:
        by_scene[d.scene].append(d)
    rng = random.Random(f"extes-split:{seed}")
    scenes = sorted(by_scene)
    rng.shuffle(scenes)
    ordered: list[Dialogue] = []
    for scene in scenes:
        group = sorted(by_scene[scene], key=lambda d: d.id)
        random.Random(f"extes-split:{seed}:{scene}").shuffle(group)
        ordered.extend(group)
    goal = targets(len(ordered), ratios)
    out: dict[str, list[Dialogue]] = {name: [] for name in SPLITS}
    n = len(ordered)
    for k, d in enumerate(ordered, 1):
        # The split furthest behind its pro-rata share of the first k items, among those not yet full.
        behind = [
            (goal[i] * k / n - len(out[name]), -i)
            for i, name in enumerate(SPLITS)
            if len(out[name]) < goal[i]
        ]
        _, neg_i = max(behind)
        out[SPLITS[-neg_i]].append(d)
    return out
