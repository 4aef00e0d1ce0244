"""Saved KV caches on llama.cpp: prompts taking turns keep their prefix, and nothing they produce changes.

Runs on the embedded SmolLM2 GGUF through `TeacherLM` (the class the 1.5B teacher uses), so it is fast; skipped
without the llamacpp extra.
"""

import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed (pip install 'extes[llamacpp]')")

from extes.programs.lm.kv_snapshots import KVSnapshots, Snapshot, shared_prefix  # noqa: E402
from extes.programs.lm.teacher import TeacherLM  # noqa: E402
from extes.programs.lm.weights import embedded_gguf  # noqa: E402

SEEKER = "You are a person who lost their job last week. Answer in one short sentence as that person."
SUPPORTER = "You are a warm, careful listener. Answer in one short sentence."


def _turns(lm, exchanges=3):
    """A little self-chat: two system prompts that take turns, each history growing, as turn-mode synthesis does."""
    seeker, supporter, out = [], [], []
    said = "Hello, how are you today?"
    for _ in range(exchanges):
        seeker.append({"role": "user", "content": said})
        msg = lm.generate([{"role": "system", "content": SEEKER}, *seeker], max_tokens=20)[0]
        seeker.append({"role": "assistant", "content": msg})
        supporter.append({"role": "user", "content": msg})
        prompt = [{"role": "system", "content": SUPPORTER}, *supporter]
        scores = lm.score_choices(prompt, ["I hear you", "Tell me more"])
        said = lm.generate(prompt, max_tokens=20)[0]
        supporter.append({"role": "assistant", "content": said})
        out.append((msg, said, scores))
    return out


@pytest.fixture(scope="module")
def lm():
    return TeacherLM(embedded_gguf("smollm2-135m-instruct"), model_id="local/smollm2-test", n_ctx=2048, threads=1,
                     cache=False)


def test_replies_and_scores_are_the_same_with_and_without_saved_caches(lm):
    snaps = lm.snapshots
    snaps.slots, snaps.saved = 0, []
    lm.llm.reset()
    cold = _turns(lm)
    snaps.slots = 4
    lm.llm.reset()
    warm = _turns(lm)
    # The same replies; the scores agree up to llama.cpp's rounding, which depends on how a prompt was split into
    # batches (a cold evaluation splits it otherwise than a restored prefix and its suffix do).
    assert [(m, r) for m, r, _ in warm] == [(m, r) for m, r, _ in cold]
    for (_, _, w), (_, _, c) in zip(warm, cold, strict=True):
        assert w == pytest.approx(c, abs=0.1)
    assert snaps.restored >= 4  # each prompt came back to its own saved prefix, turn after turn
    assert snaps.reused_tokens > 100


def test_a_restored_prefix_gives_the_logits_of_the_prefix_it_saved(lm):
    import llama_cpp
    import numpy as np

    llm, snaps = lm.llm, lm.snapshots
    snaps.slots, snaps.saved = 4, []
    prompt = lm.prompt_tokens([{"role": "system", "content": SEEKER},
                               {"role": "user", "content": "Tell me about your week at work. " * 8}])

    def last_logits():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()

    llm.reset()
    llm.eval(prompt[:60])
    snaps.save(prompt)
    llm.eval(prompt[60:])
    live = last_logits()
    llm.reset()
    llm.eval(lm.prompt_tokens([{"role": "system", "content": SUPPORTER}]))  # another prompt takes the cache
    assert snaps.restore_for(prompt) == 60 and llm.n_tokens == 60
    llm.eval(prompt[60:])
    assert np.array_equal(last_logits(), live)


def test_the_snapshot_a_prompt_extends_is_replaced_and_the_oldest_goes():
    snaps = KVSnapshots(llm=None, slots=2)
    snaps.keep(Snapshot([1, 2], b""))
    snaps.keep(Snapshot([1, 2, 3], b""))  # the same prompt a turn later replaces its snapshot
    assert [s.tokens for s in snaps.saved] == [[1, 2, 3]]
    snaps.keep(Snapshot([7, 8], b""))
    snaps.keep(Snapshot([9], b""))  # a third prompt: the oldest goes
    assert [s.tokens for s in snaps.saved] == [[7, 8], [9]]
    assert shared_prefix([1, 2, 3], [1, 2, 4]) == 2 and shared_prefix([], [1]) == 0
