import json
import logging

import dspy
import pytest

from extes.errors import InputError, ModelError
from extes.programs.adapter import SmallChatAdapter, pick_label
from extes.programs.lm import load_lm
from extes.programs.lm.scripted import ScriptedLM
from extes.programs.runtime import canonical_strategy, check_message, respond
from extes.programs.supporter import Supporter
from extes.signatures.classify import ClassifyStrategy
from extes.signatures.support import STRATEGY_NAMES, RespondWithStrategy, SelectStrategy

HISTORY = [{"role": "user", "text": "Hi"}, {"role": "assistant", "text": "Hello, how are you?"}]


def test_signature_strategy_is_the_16_labels():
    assert len(STRATEGY_NAMES) == 16
    assert "strategy" in SelectStrategy.output_fields and "reply" in RespondWithStrategy.output_fields


def test_adapter_formats_plain_chat_with_demos():
    msgs = SmallChatAdapter().format(
        RespondWithStrategy,
        demos=[{"history": [{"role": "user", "text": "I lost my job"}], "strategy": "Offer Hope",
                "strategy_definition": "d", "reply": "Things can turn around."}],
        inputs={"history": [*HISTORY, {"role": "user", "text": "I failed my exam"}], "strategy": "Suggest Options",
                "strategy_definition": "Offer practical suggestions."},
    )
    assert msgs[0]["role"] == "system" and "Strategy:" not in msgs[0]["content"]
    assert "[[" not in str(msgs)  # no field markers for a small model to copy
    # fields that differ between a demo and the call travel with each exchange
    assert msgs[1]["content"].startswith("I lost my job\n\nStrategy: Offer Hope")
    assert msgs[2] == {"role": "assistant", "content": "Things can turn around."}
    assert msgs[-1]["content"].startswith("I failed my exam\n\nStrategy: Suggest Options")
    assert msgs[-2]["role"] == "assistant"
    # without demos a reply's inputs are instructions: shared, in the system message once
    plain = SmallChatAdapter().format(RespondWithStrategy, demos=[], inputs={
        "history": [{"role": "user", "text": "hi"}], "strategy": "Offer Hope", "strategy_definition": "d"})
    assert "Strategy: Offer Hope" in plain[0]["content"] and plain[-1] == {"role": "user", "content": "hi"}
    # the utterance a classifier labels goes after the history, so the system message stays the same from call
    # to call and consecutive turns share every earlier turn of their prompts (the prefix cache reuses them)
    history = [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "Hello."}, {"role": "user", "text": "x"}]
    one = SmallChatAdapter().format(ClassifyStrategy, demos=[], inputs={"history": history, "utterance": "u"})
    other = SmallChatAdapter().format(ClassifyStrategy, demos=[], inputs={"history": history[:1], "utterance": "v"})
    assert "Utterance" not in one[0]["content"] and one[0] == other[0]
    assert one[1] == {"role": "user", "content": "hi"} and one[-1] == {"role": "user", "content": "x\n\nUtterance: u"}


def test_pick_label():
    assert pick_label("Strategy: Suggest Options.", list(STRATEGY_NAMES)) == "Suggest Options"
    assert pick_label("RS", list(STRATEGY_NAMES)) == "Reflective Statements"
    assert pick_label("no idea", list(STRATEGY_NAMES)) is None


def test_supporter_with_scripted_lm():
    with dspy.context(lm=ScriptedLM(), adapter=SmallChatAdapter()):
        pred = Supporter()(history=[{"role": "user", "text": "I feel worthless"}])
    assert pred.strategy == "Reframe Negative Thoughts" and "worthless" in pred.reply


def test_given_strategy_is_used_as_is():
    with dspy.context(lm=ScriptedLM(), adapter=SmallChatAdapter()):
        pred = Supporter()(history=[{"role": "user", "text": "hi"}], strategy="Offer Hope")
    assert pred.strategy == "Offer Hope" and not pred.strategy_fallback


def test_unparseable_strategy_is_retried_then_falls_back(tmp_path, caplog):
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["banana", "still banana", "A kind reply."]))
    lm = ScriptedLM.from_spec(f"scripted:{script}")
    with caplog.at_level(logging.WARNING), dspy.context(lm=lm, adapter=SmallChatAdapter()):
        pred = Supporter()(history=[{"role": "user", "text": "hi"}])
    assert pred.strategy == "Emotional Validation" and pred.strategy_fallback and pred.reply == "A kind reply."
    assert "falling back" in caplog.text and lm.calls == 3


def test_crisis_message_never_reaches_the_lm():
    lm = ScriptedLM()
    out = respond(lm, [], "I said my goodbyes to my family today")
    assert out["crisis"] and out["strategy"] is None and lm.calls == 0 and "emergency" in out["reply"]


def test_input_checks():
    with pytest.raises(InputError, match="empty"):
        check_message("   ")
    with pytest.raises(InputError, match="20000 characters"):
        check_message("x" * 20000)
    assert canonical_strategy("so") == "Suggest Options"
    with pytest.raises(InputError, match="--strategy 'Hugging'"):
        canonical_strategy("Hugging")


def test_model_strings():
    with pytest.raises(ModelError, match="unknown model 'gpt5'"):
        load_lm("gpt5")
    with pytest.raises(ModelError, match="no such folder"):
        load_lm("local/smollm2-135m-instruct", adapter="/nonexistent/adapter")
    with pytest.raises(ModelError, match="--adapter does not apply to scripted"):
        load_lm("scripted", adapter="x")


@pytest.mark.parametrize("args, needle", [
    (["reply", ""], "empty"),
    (["reply", "x" * 20000], "characters"),
    (["reply", "hi", "--strategy", "Hugging"], "--strategy"),
    (["reply", "hi", "-m", "nope/model"], "unknown model"),
    (["reply", "hi", "-m", "local/smollm2-135m-instruct", "--adapter", "/no/such/dir"], "--adapter"),
])
def test_reply_cli_bad_input(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and needle in err


def test_reply_cli_scripted(cli):
    code, out, _ = cli("reply", "I failed my exam again", "-m", "scripted", "--strategy", "SO", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["strategy"] == "Suggest Options" and obj["reply"] and obj["crisis"] is False


def test_compiled_demos_flow_through_the_adapter(tmp_path):
    """Demos placed by a DSPy optimizer (LabeledFewShot) reach the LM as earlier exchanges, and survive save/load."""
    trainset = [
        dspy.Example(history=[{"role": "user", "text": f"I lost my job {i}"}], strategy="Offer Hope",
                     strategy_definition="d", reply=f"Things can turn around {i}.").with_inputs(
            "history", "strategy", "strategy_definition")
        for i in range(3)
    ]
    program = dspy.LabeledFewShot(k=2).compile(dspy.Predict(RespondWithStrategy), trainset=trainset)
    program.save(tmp_path / "p.json")
    loaded = dspy.Predict(RespondWithStrategy)
    loaded.load(tmp_path / "p.json")
    lm = ScriptedLM()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        loaded(history=[{"role": "user", "text": "I failed"}], strategy="Offer Hope", strategy_definition="d")
    messages = lm.history[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"].startswith("Things can turn around")


def test_multi_output_signatures_are_decomposed_into_single_field_calls():
    class Two(dspy.Signature):
        """Answer."""

        question: str = dspy.InputField()
        first: str = dspy.OutputField(desc="first part")
        second: str = dspy.OutputField(desc="second part")

    lm = ScriptedLM.from_spec("scripted")
    lm._cycle = iter(["one", "two"])  # scripted answers in order
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        pred = dspy.Predict(Two)(question="q")
    assert (pred.first, pred.second) == ("one", "two") and lm.calls == 2
    second_call = lm.history[-1]["messages"]
    assert "First: one" in second_call[0]["content"]  # the first output is an input of the second call
