"""`LlamaBatcher` on the embedded GGUF: batched greedy decoding gives each request the tokens it gets alone (and the
`llamacpp/` backend's reply), sequences leave at their own max_tokens or stop string, long prompts join in chunks."""

import time

import pytest

from extes.errors import ModelError

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed (pip install 'extes[llamacpp]')")

from extes.programs.lm import get_model  # noqa: E402 - after the skip: the import needs nothing, the tests do
from extes.programs.lm.llamacpp_batch import CHUNK, LlamaBatcher, Sampling  # noqa: E402

pytestmark = pytest.mark.model

TEXTS = ["I failed my exam again.", "My dog died yesterday and I can't stop crying.", "Hi",
         "I am so stressed about work, my boss keeps yelling at me and I don't know what to do anymore."]


@pytest.fixture(scope="module")
def lm():
    return get_model("llamacpp/smollm2-135m-instruct", max_tokens=24)


@pytest.fixture(scope="module")
def batcher(lm):
    return LlamaBatcher(lm.llm, max_batch=4, n_ctx=1024, reuse=False)  # every prompt whole: exact comparisons


def prompt(lm, text: str) -> list[int]:
    return lm.llm.tokenize(lm.prompt_text([{"role": "user", "content": text}]).encode(), add_bos=True, special=True)


def greedy(n: int = 24, **kw) -> Sampling:
    return Sampling(max_tokens=n, repeat_penalty=1.15, **kw)


def test_four_concurrent_prompts_get_the_tokens_each_gets_alone_and_the_backends_reply(lm, batcher):
    alone = [batcher.generate(prompt(lm, t), greedy()) for t in TEXTS]
    steps = batcher.steps
    reqs = [batcher.submit(prompt(lm, t), greedy()) for t in TEXTS]
    together = [r.result() for r in reqs]
    assert together == alone and all(alone)
    assert batcher.peak_batch == 4 and batcher.steps - steps < sum(len(a) for a in alone)  # they shared steps
    for text, ids in zip(TEXTS, alone, strict=True):  # the one-at-a-time backend says the same
        reply, _, n = lm.generate([{"role": "user", "content": text}])
        assert n == len(ids) and reply == lm.llm.detokenize(ids).decode().strip()


def test_sequences_leave_at_their_own_max_tokens_and_the_others_continue(lm, batcher):
    full = batcher.generate(prompt(lm, TEXTS[0]), greedy(20))
    assert len(full) == 20
    limits = [3, 20, 7, 12]
    reqs = [batcher.submit(prompt(lm, TEXTS[0]), greedy(n)) for n in limits]
    outs = [r.result() for r in reqs]
    assert outs == [full[:n] for n in limits]
    assert [r.finish for r in reqs] == ["length"] * 4
    assert sorted(batcher.free) == [0, 1, 2, 3]  # every sequence id back for the next requests


def test_a_stop_string_ends_one_sequence(lm, batcher):
    plain = batcher.generate(prompt(lm, TEXTS[0]), greedy())
    text = lm.llm.detokenize(plain).decode()
    stop = text.split()[3]  # a word in the middle of the reply
    stopped, other = (batcher.submit(prompt(lm, TEXTS[0]), greedy(stop=[stop])),
                      batcher.submit(prompt(lm, TEXTS[0]), greedy()))
    cut, rest = stopped.result(), other.result()
    assert rest == plain
    assert stopped.finish == "stop" and len(cut) < len(plain) and cut == plain[:len(cut)]
    assert stop in lm.llm.detokenize(cut).decode() and stop not in lm.llm.detokenize(cut[:-1]).decode()


def test_a_long_prompt_joins_in_chunks_while_another_decodes(lm, batcher):
    long_text = " ".join(["I keep failing my exams and my parents are disappointed."] * 25)
    long_ids = prompt(lm, long_text)
    assert len(long_ids) > 4 * CHUNK
    short_alone = batcher.generate(prompt(lm, TEXTS[1]), greedy(40))
    long_alone = batcher.generate(long_ids, greedy(8))
    short = batcher.submit(prompt(lm, TEXTS[1]), greedy(40))
    while not short.new:
        time.sleep(0.005)
    long = batcher.submit(long_ids, greedy(8))
    assert long.result() == long_alone and short.result() == short_alone


def test_sampled_requests_follow_their_seed_batched_or_alone(lm, batcher):
    s = {"max_tokens": 16, "temperature": 0.8, "top_p": 0.9}
    alone = [batcher.generate(prompt(lm, t), Sampling(seed=i, **s)) for i, t in enumerate(TEXTS[:2])]
    reqs = [batcher.submit(prompt(lm, t), Sampling(seed=i, **s)) for i, t in enumerate(TEXTS[:2])]
    assert [r.result() for r in reqs] == alone


def test_cancel_and_bad_requests(lm, batcher):
    req = batcher.submit(prompt(lm, TEXTS[0]), greedy(200))
    got = req.tokens()
    next(got)
    got.close()  # a client that goes away
    deadline = time.time() + 30
    while batcher.active and time.time() < deadline:
        time.sleep(0.01)
    assert not batcher.active and len(req.new) < 200 and sorted(batcher.free) == [0, 1, 2, 3]
    with pytest.raises(ModelError, match="window is 1024"):
        batcher.submit(list(range(1, 1100)), greedy()).result()
    with pytest.raises(ModelError, match="max_tokens 0"):
        Sampling(max_tokens=0)


def test_the_batched_backend_answers_as_the_plain_one(lm):
    batched = get_model("llamacpp/smollm2-135m-instruct", max_tokens=16, batched=True)
    chat = [{"role": "user", "content": TEXTS[0]}]
    assert batched.generate(chat) == lm.generate(chat, max_tokens=16)
    assert "".join(batched.stream(chat)) == "".join(lm.stream(chat, max_tokens=16))
    cut = batched.generate(chat, stop=["exam"])[0]
    assert cut == lm.generate(chat, max_tokens=16, stop=["exam"])[0] and "exam" not in cut
    assert "".join(batched.stream(chat, stop=["exam"])).strip() == cut


def chat_ids(lm, messages) -> list[int]:
    return lm.llm.tokenize(lm.prompt_text(messages).encode(), add_bos=True, special=True)


SYSTEM = ("You are a warm, patient emotional supporter. Listen first, ask one open question at a time, reflect the "
          "person's feelings in your own words and never judge.")


def test_a_repeated_prompt_reuses_its_cells_and_gets_the_fresh_tokens(lm):
    fresh = LlamaBatcher(lm.llm, max_batch=2, n_ctx=1024, reuse=False)
    warm = LlamaBatcher(lm.llm, max_batch=2, n_ctx=1024)
    for text in TEXTS:
        ids = prompt(lm, text)
        want = fresh.generate(ids, greedy(40))
        assert warm.generate(ids, greedy(40)) == want  # first time: the chat template's start from the last one
        before = warm.stats()["prompt_tokens_reused"]
        assert warm.generate(ids, greedy(40)) == want  # again: all but the last two prompt tokens from the cells
        assert warm.stats()["prompt_tokens_reused"] - before == len(ids) - 2
    assert fresh.stats()["prompt_tokens_reused"] == 0


def test_a_continued_conversation_starts_from_its_previous_turn(lm):
    warm = LlamaBatcher(lm.llm, max_batch=2, n_ctx=1024)
    turns = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TEXTS[1]}]
    first = chat_ids(lm, turns)
    reply = warm.generate(first, greedy(24))
    turns += [{"role": "assistant", "content": lm.llm.detokenize(reply).decode()},
              {"role": "user", "content": "Yes. He was with me for twelve years."}]
    second = chat_ids(lm, turns)
    before = warm.stats()
    out = warm.generate(second, greedy(16))
    after = warm.stats()
    reused = after["prompt_tokens_reused"] - before["prompt_tokens_reused"]
    assert len(first) <= reused < len(second) and out  # the whole first prompt (and some reply) came from cells
    assert after["prompt_tokens_computed"] - before["prompt_tokens_computed"] == len(second) - reused


def test_a_shared_system_prompt_is_copied_from_a_decoding_sequence(lm):
    """Two chats with the same long system message: the second copies the first's cells while the first decodes,
    and both get the tokens they get with every prompt computed whole."""
    a = chat_ids(lm, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TEXTS[0]}])
    b = chat_ids(lm, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TEXTS[3]}])
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert shared >= 32
    fresh = LlamaBatcher(lm.llm, max_batch=2, n_ctx=1024, reuse=False)
    want_a, want_b = fresh.generate(a, greedy(40)), fresh.generate(b, greedy(24))
    warm = LlamaBatcher(lm.llm, max_batch=2, n_ctx=1024)
    ra = warm.submit(a, greedy(40))
    while not ra.new:
        time.sleep(0.005)
    rb = warm.submit(b, greedy(24))
    assert ra.result() == want_a and rb.result() == want_b
    assert warm.stats()["prompt_tokens_reused"] == shared
