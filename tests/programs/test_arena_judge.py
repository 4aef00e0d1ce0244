"""The pairwise judge: both orders, a flip with the order is a tie and position bias."""

import dspy

from extes.programs.adapter import SmallChatAdapter
from extes.programs.arena_judge import PairwiseJudge, combine
from extes.programs.lm.scripted import ScriptedLM


def test_combine():
    assert combine("A", "B") == ("a", False)  # A first, and A again when shown second
    assert combine("B", "A") == ("b", False)
    assert combine("Tie", "Tie") == ("tie", False)
    assert combine("A", "A") == ("tie", True)  # always the first shown: position, not quality
    assert combine("A", "Tie") == ("tie", True)


def test_a_judge_that_always_picks_the_first_is_all_position_bias():
    with dspy.context(lm=ScriptedLM(["A"]), adapter=SmallChatAdapter()):
        pred = PairwiseJudge()(transcript_a="Seeker: hi\nSupporter: hello", transcript_b="Seeker: hi\nSupporter: yo")
    assert set(pred.outcomes.values()) == {"tie"} and all(pred.position_bias.values())
    assert pred.raw["overall"] == ["A", "A"]


def test_the_scripted_judge_is_order_free_and_prefers_the_fuller_supporter():
    short, long = "Seeker: hi\nSupporter: ok", "Seeker: hi\nSupporter: I hear you, that sounds hard; tell me more."
    with dspy.context(lm=ScriptedLM(), adapter=SmallChatAdapter()):
        pred = PairwiseJudge()(transcript_a=short, transcript_b=long)
    assert set(pred.outcomes.values()) == {"b"} and not any(pred.position_bias.values())
