"""The pairwise judge: both orders, a flip with the order is a tie and position bias."""

import dspy
import pytest

from extes.programs.adapter import SmallChatAdapter
from extes.programs.arena_judge import PairwiseJudge, balanced, combine
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


class PositionBiasedScorer:
    """A scoring LM (its model string is a local one, so the adapter and the judge see `can_score`) that adds 2 to
    A's log-likelihood whatever is shown, and 1.5 to the answer naming the conversation that says "tell me more"."""

    model = "local/position-biased-scorer"

    def score_choices(self, messages, choices):
        text = "\n".join(m["content"] for m in messages)
        if "tell me more" not in text:  # the content-free calibration pair: only the position preference is left
            return [2.0, 0.0, -5.0]
        fuller_is_a = text.index("tell me more") < text.index("Conversation b:")
        return [2.0 + 1.5 * fuller_is_a, 1.5 * (not fuller_is_a), -5.0]


def test_balanced_scoring_cancels_a_position_preference():
    short, long = "Seeker: hi\nSupporter: ok", "Seeker: hi\nSupporter: I hear you, that sounds hard; tell me more."
    with dspy.context(lm=PositionBiasedScorer(), adapter=SmallChatAdapter()):
        pred = PairwiseJudge()(transcript_a=short, transcript_b=long)
        back = PairwiseJudge()(transcript_a=long, transcript_b=short)
    assert pred.method == "balanced" and pred.raw["overall"] == ["A", "A"] and all(pred.position_bias.values())
    # A text-only judge with these answers would call every criterion a tie; the means pick the fuller supporter
    assert set(pred.outcomes.values()) == {"b"} and set(back.outcomes.values()) == {"a"}
    assert pred.scores["overall"] == [[2.0, 1.5, -5.0], [3.5, 0.0, -5.0]]


def test_balanced_ties_only_on_equal_means():
    assert balanced([0.0, -1.0, -3.0], [0.0, -1.0, -3.0]) == "tie"  # A both times: a's mean -0.5 = b's
    assert balanced([0.0, -1.0, -3.0], [-2.0, 0.0, -3.0]) == "a"
    assert balanced([-9.0, -9.0, 0.0], [-9.0, -9.0, 0.0]) == "tie"


class TieLovingScorer:
    """A scoring judge that says "Tie" whatever it reads (as the 1.5B teacher did on Overall), moved only a little
    towards the conversation that says "tell me more"; it counts its calls."""

    model = "local/tie-loving-scorer"

    def __init__(self):
        self.calls = 0

    def score_choices(self, messages, choices):
        self.calls += 1
        text = "\n".join(m["content"] for m in messages)
        if "tell me more" not in text:
            return [-1.2, -1.3, -0.5]
        fuller_is_a = text.index("tell me more") < text.index("Conversation b:")
        return [-1.2 + 0.2 * fuller_is_a, -1.3 + 0.2 * (not fuller_is_a), -0.5]


def test_calibration_against_a_content_free_pair_lets_a_tie_loving_judge_decide():
    short, long = "Seeker: hi\nSupporter: ok", "Seeker: hi\nSupporter: I hear you, that sounds hard; tell me more."
    lm = TieLovingScorer()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        plain = PairwiseJudge(calibrate=False)(transcript_a=short, transcript_b=long)
        judge = PairwiseJudge()
        pred = judge(transcript_a=short, transcript_b=long)
        calls = lm.calls
        back = judge(transcript_a=long, transcript_b=short)
    assert set(plain.outcomes.values()) == {"tie"} and not plain.priors  # Tie's likelihood is the largest
    assert set(pred.outcomes.values()) == {"b"} and set(back.outcomes.values()) == {"a"}
    assert pred.priors["overall"] == [-1.2, -1.3, -0.5]
    # uncalibrated: 5 criteria x 2 orders; calibrated: those plus one prior per criterion, asked once, so the
    # second pair costs no more priors
    assert calls == 10 + 15 and lm.calls - calls == 10


def test_balanced_with_a_prior_subtracts_it_first():
    assert balanced([-1.0, -1.2, -0.5], [-1.2, -1.0, -0.5]) == "tie"
    assert balanced([-1.0, -1.2, -0.5], [-1.2, -1.0, -0.5], prior=[-1.2, -1.2, -0.5]) == "a"


def test_redecide_recomputes_outcomes_from_the_stored_likelihoods():
    from extes.errors import InputError
    from extes.tuning.arena_report import redecide

    rec = {"a": "x", "b": "y", "method": "balanced", "outcomes": {"overall": "a"},
           "scores": {"overall": [[-1.0, -1.2, -0.5], [-1.2, -1.0, -0.5]]}, "priors": {"overall": [-1.2, -1.2, -0.5]}}
    assert redecide([rec], "as-judged") == [rec]
    assert redecide([rec], "balanced")[0]["outcomes"] == {"overall": "tie"}  # Tie's mean is the largest
    assert redecide([rec], "calibrated")[0]["outcomes"] == {"overall": "a"}
    assert redecide([rec], "balanced")[0]["priors"] == {}  # so the report does not count it as calibrated
    with pytest.raises(InputError, match="judgment 1 has no prior"):
        redecide([{**rec, "priors": {}}], "calibrated", "RUN")
    with pytest.raises(InputError, match="read from text"):
        redecide([{**rec, "method": "verdicts"}], "balanced", "RUN")
