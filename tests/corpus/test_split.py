import hashlib

import pytest

from extes.corpus.split import parse_ratios, split_dialogues, targets
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue, Turn


def corpus(scenes=6, per_scene=(2, 3, 5, 7, 11, 13)):
    out = []
    for s in range(scenes):
        for k in range(per_scene[s % len(per_scene)]):
            out.append(Dialogue(id=f"s{s}-{k}", scene=f"scene {s}", turns=[Turn(role="user", text="x")]))
    return out


def test_exact_global_shares_and_disjoint_cover():
    ds = corpus()
    parts = split_dialogues(ds, seed=3)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == dict(zip(("train", "valid", "test"), targets(len(ds), (0.8, 0.1, 0.1)), strict=True))
    ids = [d.id for v in parts.values() for d in v]
    assert sorted(ids) == sorted(d.id for d in ds)


def test_stratified_by_scene():
    ds = corpus(per_scene=(40,))
    parts = split_dialogues(ds, seed=1)
    for s in range(6):
        n = {k: sum(d.scene == f"scene {s}" for d in v) for k, v in parts.items()}
        assert n["train"] in (31, 32, 33) and n["valid"] in (3, 4, 5) and n["test"] in (3, 4, 5)


def test_deterministic_order_independent_and_seed_dependent():
    ds = corpus()
    a = split_dialogues(ds, seed=7)
    b = split_dialogues(list(reversed(ds)), seed=7)
    assert {k: [d.id for d in v] for k, v in a.items()} == {k: [d.id for d in v] for k, v in b.items()}
    c = split_dialogues(ds, seed=8)
    assert {d.id for d in a["test"]} != {d.id for d in c["test"]}


def test_split_is_pinned_across_machines():
    # String-seeded random.Random is SHA-512 based: this digest must be the same on every machine and Python.
    parts = split_dialogues(corpus(), seed=0)
    digest = hashlib.sha256("|".join(f"{k}:{d.id}" for k, v in parts.items() for d in v).encode()).hexdigest()
    assert digest[:16] == PINNED


PINNED = "eb3adb994802a7be"


def test_ratios_and_duplicates():
    assert parse_ratios("8:1:1") == (0.8, 0.1, 0.1)
    with pytest.raises(InputError, match="--ratios"):
        parse_ratios("8:1")
    ds = corpus()
    with pytest.raises(InputError, match="occurs more than once"):
        split_dialogues(ds + ds[:1])
