"""SFT samples are built in the prompt shape the serving path uses: the Supporter's messages, then the tagged reply."""

import dspy
import pytest

from extes.corpus.seeds import read_seed_folder
from extes.programs.adapter import SmallChatAdapter
from extes.programs.lm.scripted import ScriptedLM
from extes.programs.lm.weights import converted_folder, embedded_gguf
from extes.programs.supporter import Supporter
from extes.signatures.dialogue import Dialogue, Meta, Turn
from extes.signatures.support import Respond
from extes.tuning.sft import chat_sample, chat_samples, chat_turns, prompt_shape


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted_folder(embedded_gguf("smollm2-135m-instruct")))


def served(history, strategy=None, signature=None):
    """The messages the serving path sends the LM for this history (the Supporter with a given strategy, or the
    plain Respond predictor that `evaluate --strategy none` uses)."""
    lm = ScriptedLM(["[Offer Hope] fine"])
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        if signature is None:
            Supporter()(history=history, strategy=strategy)
        else:
            dspy.Predict(signature)(history=history)
    return lm.history[-1]["messages"]


def test_training_prompts_are_what_the_supporter_is_served(tok):
    d = read_seed_folder()[0]
    samples = chat_samples([d], tok, max_len=4096)
    turns = [(i, t) for i, t in enumerate(d.turns) if t.role == "assistant"]
    assert len(samples) == len(turns)
    for sample, (i, t) in zip(samples, turns, strict=True):
        history = [{"role": x.role, "text": x.text} for x in d.turns[:i]]
        messages = served(history, strategy=t.strategy)
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        prompt = list(prompt["input_ids"]) if hasattr(prompt, "keys") else list(prompt)
        # the sample starts with exactly the served prompt's tokens, and its loss is on the tagged reply alone
        assert sample.input_ids[: len(prompt)] == prompt
        assert all(x == -100 for x in sample.labels[: len(prompt)])
        trained = tok.decode([x for x in sample.labels if x != -100])
        assert trained.startswith(f"[{t.strategy}] {t.text}") and trained.rstrip().endswith("<|im_end|>")


def test_no_strategies_prompts_are_what_respond_is_served(tok):
    d = read_seed_folder()[1]
    (messages, target), *_ = chat_turns(d, "no-strategies")
    assert messages == served([{"role": "user", "text": d.turns[0].text}], signature=Respond)
    assert target == d.turns[1].text and not target.startswith("[")


def test_esconv_labels_are_served_as_their_extes_strategy():
    d = Dialogue(id="e", scene="x", meta=Meta(label_set="esconv"), turns=[
        Turn(role="user", text="I lost my job."), Turn(role="assistant", text="How long ago?", strategy="Question"),
        Turn(role="user", text="A week."), Turn(role="assistant", text="Hmm.", strategy="Something Odd")])
    (messages, target), = chat_turns(d)  # the unknown label is not trained on (the Supporter is never given it)
    assert "Strategy: Clarification" in messages[0]["content"] and target == "[Clarification] How long ago?"


def test_long_samples_lose_their_oldest_turns_and_start_at_a_user_turn(tok):
    d = read_seed_folder()[0]
    messages, target = chat_turns(d)[-1]
    full = chat_sample(tok, messages, target, 4096)
    cut = chat_sample(tok, messages, target, 300)
    assert len(cut.input_ids) <= 300 < len(full.input_ids)
    assert cut.labels[-cut.trained_tokens:] == full.labels[-full.trained_tokens:]  # the same reply is trained
    text = tok.decode(cut.input_ids)
    assert messages[0]["content"] in text and text.split("<|im_start|>")[2].startswith("user")
    assert chat_sample(tok, messages, target, 20) is None


def test_last_turn_only_trains_the_last_reply(tok):
    d = read_seed_folder()[0]
    (last,) = chat_samples([d], tok, max_len=4096, last_turn_only=True)
    assert tok.decode([x for x in last.labels if x != -100]).startswith(f"[{d.turns[-1].strategy}]")


def test_the_shape_record_names_the_signature_and_changes_with_it():
    shape = prompt_shape("strategies")
    assert shape["adapter"] == "SmallChatAdapter" and shape["signature"] == "RespondWithStrategy"
    assert shape["target"] == "tagged" and len(shape["sha256"]) == 64
    assert prompt_shape("no-strategies")["sha256"] != shape["sha256"]
