"""`llamacpp/<file.gguf>` on the embedded GGUF: chat, stop strings, token counts, streaming, scored Literals."""

import json

import pytest

from extes.errors import ModelError
from extes.programs.lm import backend_for, capabilities, get_model

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed (pip install 'extes[llamacpp]')")

MODEL = "llamacpp/smollm2-135m-instruct"
CHAT = [{"role": "system", "content": "You are a kind assistant."},
        {"role": "user", "content": "I failed my exam again."}]


def test_registered_with_its_options_and_capabilities(tmp_path):
    assert backend_for(MODEL).usage == "llamacpp/<file.gguf>"
    caps = capabilities(MODEL)
    assert caps.can_score and caps.can_stream and caps.in_process and not caps.trainable
    with pytest.raises(ModelError, match="--adapter does not apply to llamacpp/"):
        get_model(MODEL, adapter=str(tmp_path))
    with pytest.raises(ModelError, match="no such .gguf file"):
        get_model(f"llamacpp/{tmp_path / 'missing.gguf'}")


@pytest.fixture(scope="module")
def lm():
    return get_model(MODEL, max_tokens=8)


@pytest.mark.model
def test_chat_stop_strings_token_counts_and_streaming(lm):
    text, p_tok, c_tok = lm.generate(CHAT)
    assert text and 0 < c_tok <= 8 and p_tok == len(lm.llm.tokenize(lm.prompt_text(CHAT).encode(), special=True))
    assert "".join(lm.stream(CHAT)) == text  # greedy: the streamed pieces join to the same reply
    first_word = text.split()[0]
    cut, _, _ = lm.generate(CHAT, stop=[" "])
    assert cut == first_word
    out = lm(messages=CHAT)
    assert out == [text] and lm.history[-1]["usage"]["completion_tokens"] == c_tok


@pytest.mark.model
def test_scores_rank_the_models_own_continuation_first(lm):
    own, _, _ = lm.generate(CHAT, max_tokens=4)
    scores = lm.score_choices(CHAT, [own, "Zebra quantum gravel"])
    assert scores[0] > scores[1]
    assert lm.generate(CHAT)[0].startswith(own)  # scoring left no state behind for the next completion


@pytest.mark.model
def test_scoring_keeps_the_prompt_for_the_next_call_on_the_same_history(lm, monkeypatch):
    # The adapter scores a conversation's fields one after another and the arena and evaluation ask the same
    # conversation again: the prompt is evaluated once, then only the choices are (each one batch on top of it).
    choices = ["Emotional Validation", "Reflective Statements", "Affirmation"]
    lm.llm.reset()
    cold = lm.score_choices(CHAT, choices)
    evaluated = []
    real_eval = lm.llm.eval
    monkeypatch.setattr(lm.llm, "eval", lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1])
    again = lm.score_choices(CHAT, choices)
    assert evaluated == [] and again == pytest.approx(cold, abs=1e-6)
    longer = [*CHAT, {"role": "assistant", "content": "I'm sorry."}, {"role": "user", "content": "Thanks."}]
    lm.score_choices(longer, choices)
    assert 0 < sum(evaluated) < lm.last_prompt_tokens  # only what the longer chat adds


@pytest.mark.model
def test_reply_command_on_llamacpp(cli):
    code, stdout, err = cli("reply", "I failed my exam again", "-m", MODEL, "--max-tokens", "12", "--json")
    assert code == 0, err
    out = json.loads(stdout)
    assert out["model"] == MODEL and out["strategy"] and out["reply"] and not out["crisis"]
