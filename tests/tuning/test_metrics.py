"""Each metric against an independent implementation or a hand computation; every known difference is tested."""

import math

import pytest

from extes.errors import InputError
from extes.tuning import metrics as M

HYPS = ["i am so sorry you failed the exam", "maybe try a short walk after dinner",
        "that sounds really hard for you", "you could ask your teacher for help"]
REFS = ["i am sorry that the exam went badly", "a walk after dinner might help you relax",
        "it sounds like a really hard week", "have you thought about asking your teacher"]


def test_bleu_agrees_with_sacrebleu():
    import sacrebleu

    for n in (2, 4):
        ours = M.bleu(HYPS, REFS, n)
        scorer = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none", smooth_method="floor", smooth_value=0.1,
                                        force=True)
        theirs = scorer.corpus_score(HYPS, [REFS]).score
        assert ours == pytest.approx(theirs, abs=1e-6)


def test_bleu_agrees_with_nltk_called_directly():
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    direct = corpus_bleu([[r.split()] for r in REFS], [h.split() for h in HYPS],
                         smoothing_function=SmoothingFunction().method1)
    assert M.bleu(HYPS, REFS, 4) == pytest.approx(100 * direct, abs=1e-6)


def test_rouge_l_agrees_with_rouge_score_on_plain_words():
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    theirs = 100 * sum(sc.score(r, h)["rougeL"].fmeasure for h, r in zip(HYPS, REFS, strict=True)) / len(HYPS)
    assert M.rouge_l(HYPS, REFS) == pytest.approx(theirs, abs=1e-6)


def test_rouge_l_documented_difference_punctuation():
    """rouge-score drops punctuation; NLTK tokens keep it, so matching full stops count here."""
    from rouge_score import rouge_scorer

    h, r = "sorry about that .", "sorry , it is hard ."
    ours = M.rouge_l([h], [r])
    theirs = 100 * rouge_scorer.RougeScorer(["rougeL"]).score(r, h)["rougeL"].fmeasure
    assert ours == pytest.approx(100 * 2 * (2 / 4) * (2 / 6) / (2 / 4 + 2 / 6))  # LCS "sorry ." = 2
    assert theirs == pytest.approx(100 * 2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))  # LCS "sorry" = 1
    assert ours != pytest.approx(theirs)


def test_rouge_l_hand_computed():
    assert M.lcs("a b c d".split(), "a x c d".split()) == 3
    assert M.rouge_l(["a b c d"], ["a x c d"]) == pytest.approx(75.0)


def test_meteor_agrees_with_nltk_and_a_hand_computed_case():
    from nltk.corpus import wordnet
    from nltk.translate.meteor_score import meteor_score

    from extes.tuning.wordnet import ensure_wordnet

    ensure_wordnet()
    direct = sum(meteor_score([r.split()], h.split(), wordnet=wordnet) for h, r in zip(HYPS, REFS, strict=True))
    assert M.meteor(HYPS, REFS) == pytest.approx(100 * direct / len(HYPS), abs=1e-6)
    # identical 3-token texts: F-mean 1, one chunk over 3 matches -> penalty 0.5 * (1/3)^3
    assert M.meteor(["the cat sat"], ["the cat sat"]) == pytest.approx(100 * (1 - 0.5 / 27), abs=1e-6)
    # Known difference, documented in tuning/metrics.py: NLTK 3.10.4's meteor_score does not credit WordNet
    # synonyms in the full alignment (its synonym matcher alone does), so "big"/"large" scores like "red"/"large".
    from nltk.translate.meteor_score import _enum_wordnetsyn_match

    assert _enum_wordnetsyn_match([(0, "big")], [(0, "large")], wordnet=wordnet)[0] == [(0, 0)]
    assert M.meteor(["a big house"], ["a large house"]) == pytest.approx(M.meteor(["a red house"], ["a large house"]))


def test_distinct_hand_computed():
    assert M.distinct(["a b a b", "a c"], 1) == pytest.approx(100 * 3 / 6)
    assert M.distinct(["a b a b", "a c"], 2) == pytest.approx(100 * 3 / 4)  # ab, ba, ab | ac -> 3 distinct of 4
    assert M.distinct(["a"], 2) == 0.0


@pytest.mark.model
def test_extrema_properties():
    assert M.extrema(["i feel sad"], ["i feel sad"]) == pytest.approx(100.0, abs=1e-4)
    a = M.extrema(["i feel sad today"], ["i am sad today"])
    b = M.extrema(["i am sad today"], ["i feel sad today"])
    assert a == pytest.approx(b) and 0 < a < 100
    assert M.extrema(["the weather is sunny"], ["i feel sad"]) < a


def test_input_checks():
    with pytest.raises(InputError, match="2 hypotheses but 1 references"):
        M.bleu(["a", "b"], ["a"])


def test_metrics_cli(cli, tmp_path):
    import json

    (tmp_path / "h.txt").write_text("\n".join(HYPS) + "\n")
    (tmp_path / "r.txt").write_text("\n".join(REFS) + "\n")
    code, out, err = cli("metrics", tmp_path / "h.txt", tmp_path / "r.txt", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert set(obj) == {"bleu2", "bleu4", "rouge_l", "meteor", "extrema", "dist1", "dist2", "dist3", "n"}
    assert obj["n"] == 4 and obj["bleu2"] == pytest.approx(M.bleu(HYPS, REFS, 2), abs=1e-3)
    (tmp_path / "r.txt").write_text("\n".join(REFS[:3]) + "\n")
    code, _, err = cli("metrics", tmp_path / "h.txt", tmp_path / "r.txt")
    assert code == 2 and "4 lines" in err and "3" in err
    (tmp_path / "r.txt").write_text("a\n\nb\nc\n")
    code, _, err = cli("metrics", tmp_path / "h.txt", tmp_path / "r.txt")
    assert code == 2 and "line 2 is empty" in err
    (tmp_path / "r.txt").write_bytes(b"a\n\xff\nb\nc\n")
    code, _, err = cli("metrics", tmp_path / "h.txt", tmp_path / "r.txt")
    assert code == 2 and "not UTF-8" in err


@pytest.mark.model
def test_perplexity_counts_reply_tokens_only(tmp_path):
    import torch

    from extes.programs.lm.local import LocalLM
    from extes.tuning.perplexity import reply_nll

    lm = LocalLM(precision="fp32")
    history = [{"role": "user", "text": "I failed my exam."}]
    nll, n = reply_nll(lm, history, "I'm sorry to hear that.")
    msgs = [{"role": "user", "content": "I failed my exam."}]
    prefix = lm.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    prefix = list(prefix["input_ids"]) if hasattr(prefix, "keys") else list(prefix)
    reply = lm.tokenizer("I'm sorry to hear that.", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prefix + reply])
    labels = torch.tensor([[-100] * len(prefix) + reply])
    with torch.inference_mode():
        loss = lm.hf_model(input_ids=ids, labels=labels).loss.item()  # HF's own shifted cross-entropy
    assert n == len(reply) and nll / n == pytest.approx(loss, rel=1e-4)
    assert math.exp(nll / n) > 1


def _lcs_table(a, b):
    """The textbook O(len(a) * len(b)) dynamic programme, to check the bit-parallel LCS."""
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            t[i][j] = t[i - 1][j - 1] + 1 if x == y else max(t[i - 1][j], t[i][j - 1])
    return t[-1][-1]


def test_fast_paths_equal_the_direct_computations_on_real_esconv_pairs(esconv_pairs):
    """BLEU from shared n-gram counts equals NLTK's corpus_bleu; the bit-parallel LCS equals the DP table."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    hyps, refs = esconv_pairs
    h, r = M.tokenize_all(hyps), M.tokenize_all(refs)
    assert h == [M.tokens(x) for x in hyps]
    for n in (2, 4):
        direct = corpus_bleu([[b] for b in r], h, weights=tuple([1.0 / n] * n),
                             smoothing_function=SmoothingFunction().method1)
        assert M.bleu(hyps, refs, n) == 100 * direct
    assert all(M.lcs(a, b) == _lcs_table(a, b) for a, b in zip(h, r, strict=True))
    assert M.lcs("a b c a b b".split(), "c b a b a".split()) == _lcs_table("abcabb", "cbaba") == 3  # "bab"
    assert M.distinct(hyps, 2) == pytest.approx(
        100 * len({g for t in h for g in zip(t, t[1:], strict=False)}) / sum(max(0, len(t) - 1) for t in h))
    assert M.bleu(["x y"], ["a b"], 2) == 0.0  # no unigram match: NLTK returns 0 before smoothing


@pytest.mark.model
def test_fast_extrema_equals_the_torch_per_text_computation(esconv_pairs):
    """Token ids from tokenizer.json equal AutoTokenizer's; numpy batches equal torch's per-pair cosine."""
    import torch
    from transformers import AutoTokenizer

    from extes.programs.lm.weights import converted_folder, embedded_gguf

    hyps, refs = (x[:100] for x in esconv_pairs)
    tok, matrix = M._embeddings()
    auto = AutoTokenizer.from_pretrained(converted_folder(embedded_gguf("smollm2-135m-instruct")))
    emb = torch.from_numpy(matrix)
    total = 0.0
    for a, b in zip(hyps, refs, strict=True):
        vecs = []
        for text in (a, b):
            ids = auto(" ".join(M.tokens(text)), add_special_tokens=False)["input_ids"]
            assert tok.encode(" ".join(M.tokens(text)), add_special_tokens=False).ids == ids
            v = emb[torch.tensor(ids)]
            hi, lo = v.max(dim=0).values, v.min(dim=0).values
            vecs.append(torch.where(hi.abs() >= lo.abs(), hi, lo))
        assert torch.equal(M.extrema_vector(a), vecs[0])
        total += float(torch.nn.functional.cosine_similarity(vecs[0], vecs[1], dim=0))
    assert M.extrema(hyps, refs) == pytest.approx(100 * total / len(hyps), abs=1e-5)


@pytest.mark.model
def test_all_metrics_pooled_equals_serial_and_the_per_metric_functions(esconv_pairs, monkeypatch):
    from extes.tuning import meteor as F

    hyps, refs = esconv_pairs
    serial = M.all_metrics(hyps, refs, workers=1)
    monkeypatch.setattr(F, "POOL_MIN_PAIRS", 10)
    assert M.all_metrics(hyps, refs, workers=2) == serial
    each = {"bleu2": M.bleu(hyps, refs, 2), "bleu4": M.bleu(hyps, refs, 4), "rouge_l": M.rouge_l(hyps, refs),
            "meteor": M.meteor(hyps, refs, workers=1), "extrema": M.extrema(hyps, refs),
            "dist1": M.distinct(hyps, 1), "dist2": M.distinct(hyps, 2), "dist3": M.distinct(hyps, 3)}
    assert serial == {k: round(v, 4) for k, v in each.items()} | {"n": 300}
