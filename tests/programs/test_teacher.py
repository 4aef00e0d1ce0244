"""The offline teacher for real: assembled from its 22 installed wheels, sha256 checked, and one reply.

Skipped with the install command when the wheels are absent (`make teacher`); the llama.cpp tests also need
llama-cpp-python. A fast test of the assembly logic on fake parts is in test_split_gguf.py.
"""

import hashlib
import importlib.util
import json
import os

import pytest

from extes.errors import ModelError
from extes.programs.lm import load_lm, teacher
from extes.programs.lm.split_gguf import SPLIT_MODELS, assemble
from extes.signatures.support import STRATEGY_NAMES

SPEC = SPLIT_MODELS["qwen2.5-coder-1.5b-instruct"]
MODEL = "local/qwen2.5-coder-1.5b-instruct"
HAVE_PARTS = all(importlib.util.find_spec(p) is not None for p in SPEC.packages)
needs_parts = pytest.mark.skipif(not HAVE_PARTS, reason=f"teacher wheels not installed ({SPEC.hint})")
needs_llamacpp = pytest.mark.skipif(not (HAVE_PARTS and teacher.available()),
                                    reason=f"needs the teacher wheels and llama-cpp-python ({teacher.INSTALL})")


@pytest.fixture(scope="module")
def lm():
    return load_lm(MODEL, max_tokens=48)


@pytest.mark.model
@needs_parts
def test_the_assembled_gguf_is_the_published_file():
    path = assemble(SPEC)
    assert path.stat().st_size == 1_117_320_768
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # hashed here for real, not through the memo the loader trusts
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    assert digest.hexdigest() == SPEC.sha256
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"


@pytest.mark.model
@needs_llamacpp
def test_reply_cli_answers_with_the_teacher(cli):
    code, out, err = cli("reply", "-m", MODEL, "--strategy", "Emotional Validation", "--json", "--max-tokens", "40",
                         "I failed my driving test for the third time and I feel stupid")
    assert code == 0, err
    result = json.loads(out)
    assert result["strategy"] == "Emotional Validation"
    assert len(result["reply"].split()) >= 8 and not result["crisis"]


@pytest.mark.model
@needs_llamacpp
def test_generation_is_deterministic_and_counts_tokens(lm):
    messages = [{"role": "user", "content": "Say one short kind sentence to a friend who lost a job."}]
    first = lm.generate(messages, max_tokens=24)
    assert first == lm.generate(messages, max_tokens=24)
    text, prompt_tokens, completion_tokens = first
    assert text and 0 < completion_tokens <= 24 and prompt_tokens > 10
    assert lm.count_tokens("hello there") in (2, 3)


@pytest.mark.model
@needs_llamacpp
def test_scores_reuse_the_prompt_cache_without_changing_the_numbers(lm):
    history = [{"role": "user", "content": "My dog died yesterday. Which word fits how I feel: sad or hungry?"}]
    choices = ["sad", "hungry", "Reflective Statements"]
    first = lm.score_choices(history, choices)
    lm.llm.reset()  # a cold cache must give the same scores as the reused prompt above
    again = lm.score_choices(history, choices)
    assert first == pytest.approx(again, abs=1e-3)
    assert first[0] > first[1]


@pytest.mark.model
@needs_llamacpp
def test_strategy_chosen_by_likelihood_among_all_16(lm):
    import dspy

    from extes.programs.adapter import SmallChatAdapter
    from extes.signatures.classify import ClassifyStrategy

    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        pred = dspy.Predict(ClassifyStrategy)(
            history=[{"role": "user", "text": "I keep failing my exams."}],
            utterance="Could you tell me more about what happened in the last exam?")
    assert pred.strategy in STRATEGY_NAMES


@pytest.mark.model
@pytest.mark.skipif(not (HAVE_PARTS and os.environ.get("EXTES_TEACHER_TRANSFORMERS") == "1"),
                    reason="the transformers fallback of the 1.5B teacher takes minutes on 2 cores; "
                           "set EXTES_TEACHER_TRANSFORMERS=1 (with the teacher wheels installed) to run it")
def test_transformers_fallback_replies_without_llamacpp(monkeypatch):
    from extes.programs.lm.local import LocalLM

    monkeypatch.setenv("EXTES_LOCAL_BACKEND", "transformers")
    lm = load_lm(MODEL, max_tokens=12)
    assert isinstance(lm, LocalLM) and lm.hf_model.dtype.is_floating_point
    text, _, completion_tokens = lm.generate([{"role": "user", "content": "Say hello to a sad friend."}])
    assert text and 0 < completion_tokens <= 12


def test_threads_default_to_one_per_physical_core_and_the_env_is_checked(monkeypatch):
    monkeypatch.delenv("EXTES_LLAMACPP_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert teacher.default_threads() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert teacher.default_threads() == 8
    monkeypatch.setenv("EXTES_LLAMACPP_THREADS", "3")
    assert teacher.default_threads() == 3
    monkeypatch.setenv("EXTES_LLAMACPP_THREADS", "two")
    with pytest.raises(ModelError, match="EXTES_LLAMACPP_THREADS='two': give a positive number"):
        teacher.default_threads()
