"""Each validation check alone, on a dialogue built to trip exactly that check."""

import pytest

from extes.corpus.assets import assets_dir
from extes.corpus.dedup import DedupIndex
from extes.corpus.formats import read_corpus
from extes.corpus.formats.base import ReadOptions
from extes.corpus.formats.extes_json import record_to_dialogue
from extes.corpus.validation import (
    check_ai_description,
    check_alternation,
    check_demo_copy,
    check_description,
    check_duplicate,
    check_labels,
    check_length,
    check_repeats,
    check_scene,
    check_seeker_role,
    check_unsafe,
    dialogue_text,
    merge_consecutive,
    normalize_labels,
    validate,
)
from extes.programs.lm.scripted_dialogues import compose_record
from extes.signatures.dialogue import Dialogue, Turn


class _P:
    name = stem = "t"


def make(seed=1, scene="Academic Stress") -> Dialogue:
    return record_to_dialogue(compose_record(scene, seed) | {"id": f"d{seed}"}, 0, _P(), ReadOptions())


def test_a_good_dialogue_is_accepted():
    o = validate(make(), scene="Academic Stress", demos=[make(2)], index=DedupIndex())
    assert o.status == "accepted" and o.problems == []


def test_merge_consecutive_keeps_first_label():
    turns = [Turn(role="user", text="a"), Turn(role="user", text="b"),
             Turn(role="assistant", text="c", strategy="Offer Hope"), Turn(role="assistant", text="d")]
    merged, n = merge_consecutive(turns)
    assert n == 2 and [t.text for t in merged] == ["a b", "c d"] and merged[1].strategy == "Offer Hope"


def test_label_normalization_is_a_recorded_fix():
    d = make()
    d.turns[1].strategy = "rs"
    o = validate(d, scene="Academic Stress", demos=[])
    assert o.dialogue.turns[1].strategy == "Reflective Statements" and o.fixes and o.status == "accepted"
    assert o.dialogue.meta.fixes == o.fixes


def test_unknown_strategy_is_hard():
    d = make()
    d.turns[3].strategy = "Mind Control"
    o = validate(d, scene="Academic Stress", demos=[])
    assert o.status == "rejected" and "unknown_strategy" in o.reasons()
    assert normalize_labels(d.turns)[1] == ["Mind Control"]


def test_alternation():
    d = make()
    assert check_alternation(d.turns) is None
    assert check_alternation(d.turns[1:]).code == "alternation"


def test_unlabelled_middle_turn_is_soft():
    d = make()
    d.turns[3].strategy = None
    p = check_labels(d.turns)
    assert p.code == "unlabelled" and p.severity == "soft"
    assert validate(d, scene="Academic Stress", demos=[]).status == "queued"


def test_length_bounds():
    d = make()
    assert check_length(d.turns) == []
    assert [p.code for p in check_length(d.turns[:4])] == ["length"]
    d.turns[0].text = "x"
    assert [p.code for p in check_length(d.turns)] == ["utterance_length"]


def test_scene_and_description():
    d = make()
    assert check_scene(d, "Academic Stress") is None
    assert check_scene(d, "Caregiver Support").code == "wrong_scene"
    d.description = "Stress."
    assert check_description(d).code == "vague_description"


@pytest.mark.parametrize("description", [
    "As an AI language model, I don't have access to personal information or emotions.",
    "I'm sorry, but I can't assist with that request.",
])
def test_a_description_in_an_ai_voice_is_hard(description):
    d = make()
    assert check_ai_description(d) is None
    d.description = description
    o = validate(d, scene="Academic Stress", demos=[], index=DedupIndex())
    assert check_ai_description(d).code == "ai_description" and o.status == "rejected"


def test_a_seeker_that_talks_like_the_supporter_is_hard():
    # The seeker turns the 1.5B teacher wrote in turn mode before its prompt became a transcript.
    for text in ["It's okay to feel overwhelmed or conflicted when things don't go as planned.",
                 "You're welcome! Remember, it's important to take care of yourself.",
                 "If you ever need someone to talk to, I'm here.",
                 "I'm sorry, but I can't assist with that request.",
                 "I'm sorry to hear that. Could you please provide more information about what happened?"]:
        turns = [Turn(role="user", text=text), Turn(role="assistant", text="Thank you for telling me.")]
        assert check_seeker_role(turns).code == "seeker_role", text
    # A seeker asking what they can do is a seeker (a real ESConv turn).
    asking = "My doctor says that I am suffering from depression. Is there anything I can do that might help?"
    assert check_seeker_role([Turn(role="user", text=asking)]) is None
    # Said by the supporter, the same words are fine.
    assert check_seeker_role([Turn(role="user", text="hi"), Turn(role="assistant", text=text)]) is None


def test_a_turn_repeating_an_earlier_one_of_its_role_is_hard():
    reply = "You're welcome! If you have any other questions or need further support, feel free to ask."
    turns = [Turn(role="user", text="Thanks a lot for listening to me tonight, really."),
             Turn(role="assistant", text=reply), Turn(role="user", text="Thank you."),
             Turn(role="assistant", text=reply)]
    assert check_repeats(turns).code == "repeated_turn"
    short = [Turn(role="user", text="Thank you."), Turn(role="assistant", text="Any time."),
             Turn(role="user", text="Thank you.")]
    assert check_repeats(short) is None  # a short thanks twice is a conversation


def test_the_seeds_pass_the_role_and_repeat_checks():
    seeds = read_corpus(assets_dir() / "seeds").dialogues
    assert len(seeds) >= 100
    flagged = [d.id for d in seeds if check_seeker_role(d.turns) or check_repeats(d.turns) or check_ai_description(d)]
    assert flagged == []


def test_demo_copy_and_near_duplicate():
    d, other = make(1), make(2)
    assert check_demo_copy(d, [other]) is None
    assert check_demo_copy(d, [d]).code == "demo_copy"
    index = DedupIndex()
    index.add("x", dialogue_text(other))
    assert check_duplicate(d, index, 0.5) is None
    index.add("y", dialogue_text(d))
    p = check_duplicate(d, index, 0.5)
    assert p.code == "near_duplicate" and "with accepted y" in p.message


@pytest.mark.parametrize("text", ["You are a fucking idiot.", "Maybe you should just kill yourself."])
def test_unsafe_assistant_text_goes_to_review(text):
    d = make()
    d.turns[5].text = text
    p = check_unsafe(d)
    assert p.code == "unsafe" and p.severity == "soft"
