"""The embedded SmolLM2-135M-Instruct, for real, on CPU (marked `model`; still run in CI)."""

import json

import pytest

from extes.programs.lm.local import LocalLM
from extes.signatures.support import STRATEGY_NAMES

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def lm():
    return LocalLM(max_tokens=60)


def test_reply_cli_with_the_embedded_model(cli):
    code, out, err = cli("reply", "I failed my exam again and I feel worthless", "-m", "local/smollm2-135m-instruct",
                         "--strategy", "Suggest Options", "--max-tokens", "60", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["strategy"] == "Suggest Options" and obj["crisis"] is False
    words = obj["reply"].split()
    assert len(words) >= 5
    english = {"you", "your", "i", "it", "to", "and", "the", "a", "is", "that", "can", "this", "of"}
    assert sum(w.lower().strip(".,!?'") in english for w in words) >= 3


def test_generation_counts_tokens_and_respects_stop(lm):
    text, p_tok, c_tok = lm.generate([{"role": "user", "content": "Say hello in one short sentence."}], max_tokens=20)
    assert text and p_tok > 5 and 0 < c_tok <= 20
    cut, _, _ = lm.generate([{"role": "user", "content": "Count: one, two, three, four, five"}], max_tokens=30,
                            stop=["three"])
    assert "three" not in cut


def test_strategy_scored_over_all_16_labels(lm):
    scores = lm.score_choices([{"role": "user", "content": "Which support strategy? I'm stressed."}],
                              list(STRATEGY_NAMES))
    assert len(scores) == 16 and all(s < 0 for s in scores) and len(set(scores)) > 1


def test_dspy_usage_through_forward(lm):
    out = lm.forward(messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert out.choices[0]["message"]["content"] and out.usage["completion_tokens"] <= 8


def test_identical_calls_are_cached_and_rollout_ids_are_not(lm):
    m = [{"role": "user", "content": "Say hi."}]
    first = lm.forward(messages=m, max_tokens=4)
    assert lm.forward(messages=m, max_tokens=4) is first
    size = len(lm._memo)
    assert lm.forward(messages=m, max_tokens=4, rollout_id=7) is not first and len(lm._memo) == size
    assert lm.forward(messages=m, max_tokens=4, cache=False) is not first
