"""The lean loop's prefix cache (programs/lm/prefix_cache.py) on the embedded model: same bits whatever is cached."""

import pytest
import torch

from extes.errors import ModelError
from extes.programs.lm import fastdecode, prefix_cache
from extes.programs.lm.local import LocalLM
from extes.tuning.perplexity import reply_nll

pytestmark = pytest.mark.model

HISTORY = [
    {"role": "user", "text": "I lost my job last week and I feel like a failure. I keep replaying the meeting where "
                             "they told me, and I wonder what I could have done differently to keep it."},
    {"role": "assistant", "text": "That sounds really painful. Being let go after giving so much can shake how you "
                                  "see yourself, and replaying it is a very common way of trying to make sense of it."},
    {"role": "user", "text": "My wife says it is fine and that I will find something better, but I can't sleep and "
                             "I don't want to see anyone, not even my brother, who keeps calling me."},
    {"role": "assistant", "text": "It sounds like you are carrying this mostly on your own right now, even with "
                                  "people around you who care. What feels hardest about talking to them?"},
    {"role": "user", "text": "I guess I am ashamed. I was the one who always had things figured out in the family."},
]
REPLY = "It makes sense that you feel shaken; you worked there a long time and it mattered to you."


@pytest.fixture(scope="module")
def lm():
    return LocalLM(precision="fp32")


def ids_of(lm, history):
    msgs = [{"role": t["role"], "content": t["text"]} for t in history]
    return lm._inputs(msgs)


def fresh(dec, budget=None):
    """A slot of the decoder with its own empty prefix cache."""
    slot = dec.slot()
    slot.prefix = prefix_cache.PrefixCache(budget or 64 * 2**20, dec.embed.parameters(), dec.prefix.marks)
    return slot


def test_prompts_are_cut_where_turns_start(lm):
    marks = prefix_cache.turn_marks(lm.tokenizer)
    assert marks == {lm.tokenizer.convert_tokens_to_ids("<|im_start|>")}
    tokens = ids_of(lm, HISTORY)[0].tolist()
    ends = prefix_cache.chunk_ends(tokens, marks)
    assert ends[-1] == len(tokens) and len(ends) >= 3
    assert all(tokens[e] in marks for e in ends[:-1])
    assert all(b - a >= prefix_cache.MIN_CHUNK for a, b in zip([0, *ends[:-2]], ends[:-1], strict=True))
    assert prefix_cache.chunk_ends(list(range(300)), frozenset()) == [128, 256, 300]


def test_logits_are_the_same_bits_with_nothing_some_or_all_of_the_prompt_cached(lm):
    dec = fastdecode.decoder_for(lm.hf_model)
    long_ids = ids_of(lm, HISTORY)
    short_ids = ids_of(lm, HISTORY[:1])
    with torch.inference_mode():
        cold = fresh(dec)
        expect = cold.prefill(long_ids)
        st = cold.prefix.stats()
        assert st["hit_tokens"] == 0 and st["computed_tokens"] == long_ids.shape[1] and st["chunks"] >= 2

        warm = fresh(dec)
        warm.prefill(short_ids)  # the shared first turns only
        some = warm.prefill(long_ids)
        assert warm.prefix.stats()["hit_tokens"] > 0
        again = warm.prefill(long_ids)  # all but the last chunk cached
        assert torch.equal(some, expect) and torch.equal(again, expect)
        # what the cache holds is what a fresh prefill computed, position by position
        n = long_ids.shape[1]
        assert all(torch.equal(a[:, :, :n], b[:, :, :n]) for a, b in zip(cold.k, warm.k, strict=True))


def test_greedy_tokens_are_the_same_with_a_cold_and_a_warm_cache(lm):
    dec = fastdecode.decoder_for(lm.hf_model)
    gen = lm._gen_kwargs({"max_tokens": 24})
    _, kwargs = fastdecode._plan(lm.hf_model, lm.tokenizer, ids_of(lm, HISTORY), gen)
    slot = fresh(dec)
    with torch.inference_mode():
        cold = slot.generate(ids_of(lm, HISTORY), **kwargs)
        warm = slot.generate(ids_of(lm, HISTORY), **kwargs)
    assert slot.prefix.stats()["hit_tokens"] > 0 and torch.equal(cold, warm)


def test_the_next_turns_perplexity_pass_reuses_this_ones_sequence(lm):
    dec = fastdecode.decoder_for(lm.hf_model)
    dec.prefix.clear()
    first = reply_nll(lm, HISTORY, REPLY)
    nxt = HISTORY + [{"role": "assistant", "text": REPLY}, {"role": "user", "text": "Twenty years, yes."}]
    before = dec.prefix.stats()
    warm = reply_nll(lm, nxt, "Twenty years is a long time to give to a place.")
    after = dec.prefix.stats()
    # the first sequence's turns are copied; only the new turns and the reply are computed
    assert after["hit_tokens"] - before["hit_tokens"] > after["computed_tokens"] - before["computed_tokens"]
    dec.prefix.clear()
    cold = reply_nll(lm, nxt, "Twenty years is a long time to give to a place.")
    assert warm == cold and reply_nll(lm, HISTORY, REPLY) == first


def test_a_weight_changed_in_place_empties_the_cache(lm):
    dec = fastdecode.decoder_for(lm.hf_model)
    ids = ids_of(lm, HISTORY)
    with torch.inference_mode():
        slot = dec.slot()
        slot.prefill(ids)
    assert dec.prefix.stats()["chunks"] > 0
    weight = lm.hf_model.model.norm.weight
    with torch.no_grad():
        weight.mul_(1.0)  # same values, but an in-place write: chunks computed before it are not trusted
    hits = dec.prefix.stats()["hit_tokens"]
    with torch.inference_mode():
        slot.prefill(ids)
    st = dec.prefix.stats()
    assert st["chunks"] == len(prefix_cache.chunk_ends(ids[0].tolist(), dec.prefix.marks)) - 1
    assert st["hit_tokens"] == hits  # emptied, then refilled: nothing copied


def test_the_cache_stays_within_its_budget_and_can_be_turned_off(lm, monkeypatch):
    dec = fastdecode.decoder_for(lm.hf_model)
    per_token = 2 * len(dec.layers) * dec.n_kv * dec.head_dim * 4
    ids = ids_of(lm, HISTORY)
    ends = prefix_cache.chunk_ends(ids[0].tolist(), dec.prefix.marks)
    budget = per_token * (ends[-2] - ends[-3])  # room for the last kept chunk only
    slot = fresh(dec, budget=budget)
    with torch.inference_mode():
        slot.prefill(ids)
    st = slot.prefix.stats()
    assert st["chunks"] == 1 and st["bytes"] <= budget
    monkeypatch.setenv("EXTES_PREFIX_CACHE_MB", "0")
    assert fastdecode.LlamaDecoder(lm.hf_model).prefix is None
    for bad in ("lots", "-5", "nan"):
        monkeypatch.setenv("EXTES_PREFIX_CACHE_MB", bad)
        with pytest.raises(ModelError, match=r"EXTES_PREFIX_CACHE_MB=.*size in MiB"):
            prefix_cache.budget_bytes()


def test_scoring_choices_on_the_lean_loop_matches_transformers(lm, monkeypatch):
    """`score_choices` prefills the prompt through the prefix cache and runs the labels over its keys and values
    (`LlamaDecoder.continuations`): the scores of transformers' own forward within fp32 rounding, the same
    pick, and the same bits whether the conversation's turns were cached or not."""
    from extes.signatures.support import STRATEGY_NAMES

    labels = list(STRATEGY_NAMES)
    chats = [[{"role": t["role"], "content": t["text"]} for t in HISTORY[:n]] for n in (3, 5)]
    lean = [lm.score_choices(c, labels, prefix="Strategy: ") for c in chats]  # the second starts with the first
    assert lm.hf_model._extes_decoder.prefix.stats()["hit_tokens"] > 0
    lm.hf_model._extes_decoder.prefix.clear()
    assert lm.score_choices(chats[1], labels, prefix="Strategy: ") == lean[1]  # cold: the same bits
    monkeypatch.setattr(fastdecode, "decoder_for", lambda model: None)  # transformers' forward instead
    for chat, got in zip(chats, lean, strict=True):
        want = lm.score_choices(chat, labels, prefix="Strategy: ")
        assert got == pytest.approx(want, abs=2e-4)
        top, second = sorted(want, reverse=True)[:2]
        if top - second > 1e-3:  # the label the adapter picks, unless two are within rounding of each other
            assert got.index(max(got)) == want.index(top)
