"""The judges ask their question after the material, so the questions about one conversation share its prompt."""

import dspy
import pytest

from extes.corpus.rating import CRITERIA, render
from extes.programs.adapter import SmallChatAdapter
from extes.signatures.arena import JudgeSupportPair, RateSupportRubric
from extes.signatures.quality import RateDialogue

DIALOGUE = "User: I lost my job last week.\nSupporter: That sounds really hard. What happened?"


@pytest.mark.parametrize("signature, material, question", [
    (RateDialogue, {"dialogue": DIALOGUE}, "criterion"),
    (JudgeSupportPair, {"conversation_a": DIALOGUE, "conversation_b": DIALOGUE + "\nUser: ok"}, "question"),
    (RateSupportRubric, {"conversation": DIALOGUE}, "rubric"),
])
def test_two_questions_about_one_conversation_differ_only_in_the_last_message(signature, material, question):
    fmt = SmallChatAdapter().format
    one = fmt(signature, [], {**material, question: "Is the supporter warm?"})
    two = fmt(signature, [], {**material, question: "Does the supporter stay on topic?"})
    assert one[:-1] == two[:-1] and one[-1] != two[-1] and one[-1]["role"] == "user"
    assert all(v in one[0]["content"] for v in material.values())  # the material is in the shared system message
    assert "Is the supporter warm?" in one[-1]["content"] and "Is the supporter warm?" not in one[0]["content"]


def test_with_demos_each_exchange_carries_its_own_inputs():
    demo = {"dialogue": "User: hi\nSupporter: hello", "criterion": "Empathy: x", "score": "2"}
    msgs = SmallChatAdapter().format(RateDialogue, [demo], {"dialogue": DIALOGUE, "criterion": "Empathy: x"})
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert DIALOGUE in msgs[-1]["content"] and "hello" in msgs[1]["content"]


@pytest.mark.model
def test_the_five_criteria_on_one_dialogue_reuse_its_evaluated_prompt():
    """The Table 4 judge on the embedded model: after the first criterion, the lean loop's prefix cache supplies the
    dialogue, and each later criterion computes only its own question."""
    from extes.corpus.assets import assets_dir
    from extes.corpus.formats import read_corpus
    from extes.programs.judge import QualityJudge
    from extes.programs.lm import fastdecode
    from extes.programs.lm.local import LocalLM

    lm = LocalLM(cache=False)
    dec = fastdecode.decoder_for(lm.hf_model)
    dec.prefix.clear()
    text = render(read_corpus(assets_dir() / "seeds").dialogues[0])
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        judge = QualityJudge()
        first = judge.rate(dialogue=text, criterion=next(iter(CRITERIA)))
        after_first = dec.prefix.stats()
        scores = judge(dialogue=text)
    st = dec.prefix.stats()
    hits = st["hit_tokens"] - after_first["hit_tokens"]
    computed = st["computed_tokens"] - after_first["computed_tokens"]
    assert hits > 5 * computed, st
    assert int(first.score) == scores[next(iter(CRITERIA))]  # a reused prompt scores as a fresh one
