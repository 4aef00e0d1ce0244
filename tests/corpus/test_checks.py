"""Each seed check, alone, on a dialogue built to fail exactly that check."""

import pytest

from extes.corpus.assets import load_taxonomy
from extes.corpus.checks import check_seed, check_seed_set, coverage_problems
from extes.signatures.dialogue import Dialogue, Meta, Turn

STRATS = ["Reflective Statements", "Clarification", "Emotional Validation", "Affirmation", "Suggest Options"]


def seed(n=14, **kw):
    turns = []
    for i in range(n):
        if i % 2 == 0:
            turns.append(Turn(role="user", text=f"user line {i} about my sister Mia and the wedding in May"))
        else:
            turns.append(Turn(role="assistant", text=f"assistant line {i}", strategy=STRATS[i % len(STRATS)]))
    fields = dict(id="t-01", scene="Sibling Rivalry or Family Conflict",
                  description="My older sister Mia stopped speaking to me after I missed her wedding rehearsal.",
                  turns=turns, meta=Meta(source="seed", origin="t.yaml#0"))
    fields.update(kw)
    return Dialogue(**fields)


def test_good_seed_passes():
    assert check_seed(seed(), load_taxonomy()) == []


@pytest.mark.parametrize("n", [10, 26])
def test_utterance_count(n):
    (p,) = check_seed(seed(n), load_taxonomy())
    assert f"{n} utterances" in p


def test_alternation():
    d = seed()
    d.turns[0], d.turns[1] = d.turns[1], d.turns[0]
    assert any("alternate" in p for p in check_seed(d, load_taxonomy()))


def test_unlabelled_middle_turn_but_greeting_and_goodbye_may_be_unlabelled():
    d = seed()
    d.turns[1].strategy = None
    d.turns[-1].strategy = None
    assert check_seed(d, load_taxonomy()) == []
    d.turns[5].strategy = None
    (p,) = check_seed(d, load_taxonomy())
    assert "turn 5 has no strategy" in p


def test_non_canonical_label():
    d = seed()
    d.turns[3].strategy = "RS"
    (p,) = check_seed(d, load_taxonomy())
    assert "'RS' is not a canonical name" in p


def test_unknown_scene_and_vague_description():
    probs = check_seed(seed(scene="Space Travel", description="Family problems."), load_taxonomy())
    assert len(probs) == 2 and "Space Travel" in probs[0] and "description" in probs[1]


def test_near_duplicates_and_coverage():
    a, b = seed(), seed(id="t-02")
    rep = check_seed_set([a, b], load_taxonomy())
    assert any("t-02: too similar to t-01" in p for p in rep.problems)
    cov = coverage_problems(rep)
    assert any("at least 87" in p for p in cov) and any("Stress Management" in p for p in cov)
