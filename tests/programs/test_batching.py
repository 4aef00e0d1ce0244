"""Batched decoding (programs/lm/batching.py): token-identical to the single-sequence loop at temperature 0."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from extes.programs.lm import fastdecode
from extes.programs.lm.batching import Batcher
from extes.programs.lm.local import LocalLM, _last_sentence

pytestmark = pytest.mark.model

PROMPTS = [
    "Hi.",
    "My dog died last week and I can't stop crying.",
    "I failed my exam again and my parents will be so disappointed in me; I studied for weeks and still froze "
    "when I saw the first question. I don't know what to do next semester.",
    "Work is overwhelming.",
]


@pytest.fixture(scope="module")
def lm():
    return LocalLM(max_tokens=24)


@pytest.fixture(scope="module")
def refs(lm):
    return [_single(lm, p) for p in PROMPTS]


def _single(lm, prompt, max_tokens=24, **kw):
    ids = lm._inputs([{"role": "user", "content": prompt}])
    gen = lm._gen_kwargs({"max_tokens": max_tokens, **kw})
    with torch.inference_mode():
        return fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen).tolist()


def test_sequences_joining_at_different_steps_get_their_single_tokens(lm, refs):
    batcher = Batcher(lm.hf_model, lm.tokenizer)  # a fresh one, so the statistics are this test's
    reqs, streams = [], []
    for i, p in enumerate(PROMPTS):
        ids = lm._inputs([{"role": "user", "content": p}])
        req = batcher.submit(ids, batcher.plan(ids, lm._gen_kwargs({"max_tokens": 24})))
        reqs.append(req)
        streams.append(req.tokens())
        if i < len(PROMPTS) - 1:  # let the batch run a few steps before the next one joins
            got = [next(streams[0], None) for _ in range(3)]
            streams[0] = iter([t for t in got if t is not None] + list(streams[0]))
    outs = [list(s) for s in streams]
    assert outs == refs
    assert batcher.stats()["peak_batch"] >= 3 and batcher.stats()["active"] == 0


def test_concurrent_generate_calls_equal_single_ones(lm, refs):
    with ThreadPoolExecutor(4) as ex:
        together = list(ex.map(lambda p: lm.generate([{"role": "user", "content": p}], max_tokens=24), PROMPTS))
    assert [n for _, _, n in together] == [len(r) for r in refs]
    for (text, _, n), ref in zip(together, refs, strict=True):
        alone = lm.tokenizer.decode(ref, skip_special_tokens=True).strip()
        assert text == (_last_sentence(alone) if n >= 24 else alone)


def test_a_closed_stream_leaves_the_batch(lm):
    req, n_prompt = lm.stream_tokens([{"role": "user", "content": PROMPTS[1]}], max_tokens=64)
    tokens = req.tokens()
    first = [next(tokens) for _ in range(2)]
    tokens.close()
    batcher = lm.hf_model._extes_batcher
    deadline = time.time() + 10
    while batcher.stats()["active"] and time.time() < deadline:
        time.sleep(0.05)
    assert len(first) == 2 and n_prompt > 0 and batcher.stats()["active"] == 0
    assert lm.generate([{"role": "user", "content": "Hi."}], max_tokens=8)[2] > 0  # the scheduler still serves


def test_a_failing_prompt_fails_alone(lm):
    batcher = lm.hf_model._extes_batcher
    ids = lm._inputs([{"role": "user", "content": "Hi."}])
    plan = batcher.plan(ids, lm._gen_kwargs({"max_tokens": 8}))
    bad = batcher.submit(torch.tensor([[10**7]]), plan)  # a token id outside the vocabulary
    good = batcher.submit(ids, plan)
    with pytest.raises(IndexError):
        bad.result()
    assert good.result().tolist() == _single(lm, "Hi.", 8)
    assert threading.active_count() >= 1


def test_a_driven_scheduler_runs_every_kernel_on_the_driving_thread(lm, refs):
    from extes.tuning.perplexity import reply_nll

    history = [{"role": "user", "text": PROMPTS[2]}]
    cold = reply_nll(lm, history, "That sounds really hard; what happened in the exam?")
    batcher, old = Batcher(lm.hf_model, lm.tokenizer), lm.hf_model._extes_batcher
    prefilled_on, real = [], batcher._prefill
    batcher._prefill = lambda req: (prefilled_on.append(threading.current_thread()), real(req))[1]
    gen = lm._gen_kwargs({"max_tokens": 24})

    def work():  # what `extes evaluate` runs beside the scheduler: worker threads submitting and scoring
        with ThreadPoolExecutor(4) as ex:
            outs = list(ex.map(lambda p: batcher.generate(lm._inputs([{"role": "user", "content": p}]), gen),
                               PROMPTS))
        return outs, reply_nll(lm, history, "That sounds really hard; what happened in the exam?"), \
            batcher.call(threading.current_thread)

    lm.hf_model._extes_batcher = batcher  # where reply_nll looks for the model's scheduler
    try:
        outs, nll, called_on = batcher.drive(work)
    finally:
        lm.hf_model._extes_batcher = old
    assert [o.tolist() for o in outs] == refs
    assert nll == cold  # the same bits, computed on the driving thread through the prefix cache
    assert called_on is threading.main_thread()
    assert len(prefilled_on) == len(PROMPTS) and set(prefilled_on) == {threading.main_thread()}
    assert not batcher.driven and batcher.stats()["active"] == 0


@pytest.mark.timeout(180)
def test_an_error_in_the_driven_work_is_raised_and_the_scheduler_serves_on(lm, refs):
    batcher = Batcher(lm.hf_model, lm.tokenizer)
    with pytest.raises(ZeroDivisionError):
        batcher.drive(lambda: 1 / 0)
    assert not batcher.driven
    ids = lm._inputs([{"role": "user", "content": PROMPTS[0]}])
    assert batcher.generate(ids, lm._gen_kwargs({"max_tokens": 24})).tolist() == refs[0]  # undriven thread now

    # Driving while that thread runs leaves the scheduling to it; the work's own threads can still submit (the
    # first version held the scheduler's start lock while it ran the work, and its workers waited for it forever).
    def work():
        with ThreadPoolExecutor(2) as ex:
            return list(ex.map(lambda p: batcher.generate(lm._inputs([{"role": "user", "content": p}]),
                                                          lm._gen_kwargs({"max_tokens": 24})), PROMPTS[:2]))

    assert [o.tolist() for o in batcher.drive(work)] == refs[:2] and not batcher.driven
