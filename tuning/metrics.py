"""The paper's automatic metrics (section 6.1), each a pure function over hypotheses and references.

Tokenization: NLTK word tokens (the Treebank tokenizer of `corpus/stats.py`, identical to `NLTKWordTokenizer`),
lower-cased. Scores are x100, as in Table 6.
- BLEU-2 / BLEU-4: `nltk.translate.bleu_score.corpus_bleu`, one reference per hypothesis, uniform weights over
  1..n-grams, smoothing method 1 (epsilon 0.1 added to zero n-gram counts; Chen & Cherry 2014).
- ROUGE-L: sentence-level LCS F-measure (beta = 1, i.e. the harmonic mean of LCS precision and recall), averaged
  over pairs. Equals `rouge-score`'s rougeL F-measure when both see the same tokens; rouge-score's own tokenizer
  drops non-alphanumeric tokens (so punctuation never matches there), which the tests check explicitly.
- METEOR: `nltk.translate.meteor_score.meteor_score` (alpha 0.9, beta 3, gamma 0.5; exact, Porter-stem and
  WordNet-synonym matching), averaged over pairs; WordNet 3.0 offline (tuning/wordnet.py). Known difference:
  NLTK 3.10.4's full alignment does not credit WordNet synonyms (its synonym matcher alone does), so in practice
  it scores exact and stem matches; a test pins this, so an NLTK fix will show up.
- Vector Extrema (Forgues et al., 2014): per text, each dimension takes the value of largest magnitude over its
  token vectors; score = cosine(hypothesis, reference), averaged over pairs. Token vectors: the input embedding
  table of the embedded SmolLM2-135M (576 dimensions, over its BPE tokens), since no GloVe-style word vectors
  install from PyPI offline; absolute values are therefore not comparable with the paper's GloVe-based 53-65.
- Distinct-n: distinct n-grams / all n-grams over all hypotheses (corpus level).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence

from extes.corpus.stats import word_tokens
from extes.errors import InputError


def tokens(text: str) -> list[str]:
    return [t.lower() for t in word_tokens(text)]


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise InputError(f"{len(hyps)} hypotheses but {len(refs)} references; give one reference per hypothesis")
    if not hyps:
        raise InputError("no hypotheses to score")


def bleu(hyps: Sequence[str], refs: Sequence[str], n: int = 4) -> float:
    """Corpus BLEU-n x100 (NLTK, smoothing method 1)."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    _check(hyps, refs)
    weights = tuple([1.0 / n] * n)
    score = corpus_bleu([[tokens(r)] for r in refs], [tokens(h) for h in hyps], weights=weights,
                        smoothing_function=SmoothingFunction().method1)
    return 100 * score


def lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_pair(hyp: list[str], ref: list[str]) -> float:
    m = lcs(hyp, ref)
    if m == 0:
        return 0.0
    p, r = m / len(hyp), m / len(ref)
    return 2 * p * r / (p + r)


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean sentence-level ROUGE-L F-measure x100."""
    _check(hyps, refs)
    return 100 * sum(rouge_l_pair(tokens(h), tokens(r)) for h, r in zip(hyps, refs, strict=True)) / len(hyps)


_WORDNET_LOCK = threading.Lock()


def meteor(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean METEOR x100 (NLTK, WordNet 3.0 offline). Thread-safe: NLTK's WordNet reader seeks and reads one shared
    file handle, so two threads at once read each other's lines (`extes evaluate --workers 8` failed with
    WordNetError); calls take turns."""
    from nltk.corpus import wordnet
    from nltk.translate.meteor_score import meteor_score

    from extes.tuning.wordnet import ensure_wordnet

    _check(hyps, refs)
    ensure_wordnet()
    with _WORDNET_LOCK:
        return 100 * sum(meteor_score([tokens(r)], tokens(h), wordnet=wordnet)
                         for h, r in zip(hyps, refs, strict=True)) / len(hyps)


def distinct(hyps: Sequence[str], n: int) -> float:
    """Distinct-n x100: distinct n-grams over all n-grams of all hypotheses."""
    grams = [tuple(t[i : i + n]) for h in hyps for t in [tokens(h)] for i in range(len(t) - n + 1)]
    return 100 * len(set(grams)) / len(grams) if grams else 0.0


@functools.lru_cache(maxsize=1)
def _embeddings():
    """(tokenizer, embedding matrix) of the embedded model, read straight from the cached safetensors."""
    from safetensors import safe_open
    from transformers import AutoTokenizer

    from extes.programs.lm.weights import converted_folder, embedded_gguf

    folder = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        matrix = f.get_tensor("model.embed_tokens.weight").float()
    return AutoTokenizer.from_pretrained(folder), matrix


def extrema_vector(text: str):
    import torch

    tok, matrix = _embeddings()
    ids = tok(" ".join(tokens(text)), add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    vecs = matrix[torch.tensor(ids)]
    hi, lo = vecs.max(dim=0).values, vecs.min(dim=0).values
    return torch.where(hi.abs() >= lo.abs(), hi, lo)


def extrema(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean Vector Extrema cosine x100 (0 for an empty text)."""
    import torch

    _check(hyps, refs)
    total = 0.0
    for h, r in zip(hyps, refs, strict=True):
        a, b = extrema_vector(h), extrema_vector(r)
        if a is not None and b is not None:
            total += float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    return 100 * total / len(hyps)


def all_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Every metric but PPL, x100, rounded to 4 decimals."""
    _check(hyps, refs)
    out = {
        "bleu2": bleu(hyps, refs, 2), "bleu4": bleu(hyps, refs, 4), "rouge_l": rouge_l(hyps, refs),
        "meteor": meteor(hyps, refs), "extrema": extrema(hyps, refs),
        "dist1": distinct(hyps, 1), "dist2": distinct(hyps, 2), "dist3": distinct(hyps, 3),
    }
    return {k: round(v, 4) for k, v in out.items()} | {"n": len(hyps)}


# -- DSPy metrics: (example, prediction, trace=None) -> float in [0, 1] ------------------------------------------
def rouge_l_metric(example, prediction, trace=None) -> float:
    return rouge_l_pair(tokens(prediction.reply), tokens(example.reply))


def meteor_metric(example, prediction, trace=None) -> float:
    return meteor([prediction.reply], [example.reply]) / 100


def bleu2_metric(example, prediction, trace=None) -> float:
    return bleu([prediction.reply], [example.reply], 2) / 100


def perplexity(nll_sum: float, n_tokens: int) -> float:
    return math.exp(nll_sum / n_tokens) if n_tokens else float("nan")
