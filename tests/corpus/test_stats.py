from extes.corpus.stats import basic_stats, word_tokens
from extes.signatures.dialogue import Dialogue, Turn


def test_basic_stats_hand_computed():
    d1 = Dialogue(id="a", scene="A", turns=[
        Turn(role="user", text="I can't sleep."),  # I ca n't sleep . → 5 tokens
        Turn(role="assistant", text="That sounds hard.", strategy="Emotional Validation"),  # 4
        Turn(role="user", text="Yes"),  # 1
        Turn(role="assistant", text="Bye!"),  # 2, unlabelled
    ])
    d2 = Dialogue(id="b", scene="B", turns=[
        Turn(role="user", text="Hello there"),  # 2
        Turn(role="assistant", text="Hi, what happened?", strategy="Clarification"),  # 5
    ])
    s = basic_stats([d1, d2])
    assert word_tokens("I can't sleep.") == ["I", "ca", "n't", "sleep", "."]
    assert s["dialogues"] == 2 and s["utterances"] == 6
    assert s["avg_utterances_per_dialogue"] == 3.0
    assert s["avg_utterance_length"] == round(19 / 6, 2)
    assert s["scenarios"] == {"A": 1, "B": 1}
    assert s["strategies"] == {"Emotional Validation": 1, "Clarification": 1}
    assert s["unlabelled_assistant_turns"] == 1 and s["num_strategies"] == 2
