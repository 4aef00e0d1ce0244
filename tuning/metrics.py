"""The paper's automatic metrics (section 6.1), each a pure function over hypotheses and references.

Tokenization: NLTK word tokens (the Treebank tokenizer of `corpus/stats.py`, identical to `NLTKWordTokenizer`),
lower-cased. Scores are x100, as in Table 6.
- BLEU-2 / BLEU-4: `nltk.translate.bleu_score.corpus_bleu`, one reference per hypothesis, uniform weights over
  1..n-grams, smoothing method 1 (epsilon 0.1 added to zero n-gram counts; Chen & Cherry 2014).
- ROUGE-L: sentence-level LCS F-measure (beta = 1, i.e. the harmonic mean of LCS precision and recall), averaged
  over pairs. Equals `rouge-score`'s rougeL F-measure when both see the same tokens; rouge-score's own tokenizer
  drops non-alphanumeric tokens (so punctuation never matches there), which the tests check explicitly.
- METEOR: `nltk.translate.meteor_score.meteor_score` (alpha 0.9, beta 3, gamma 0.5; exact, Porter-stem and
  WordNet-synonym matching), averaged over pairs; WordNet 3.0 offline (tuning/wordnet.py), computed by
  tuning/meteor.py with equal scores. Known difference: in NLTK 3.10.4's full alignment the synonym stage sees
  the Porter stems the stem stage leaves, so a synonym counts only where the reference word's stem is itself
  that synonym ("big"/"large" do not match: stem "larg"); its synonym matcher alone does match them. A test
  pins this, so an NLTK fix will show up.
- Vector Extrema (Forgues et al., 2014): per text, each dimension takes the value of largest magnitude over its
  token vectors; score = cosine(hypothesis, reference), averaged over pairs. Token vectors: the input embedding
  table of the embedded SmolLM2-135M (576 dimensions, over its BPE tokens), since no GloVe-style word vectors
  install from PyPI offline; absolute values are therefore not comparable with the paper's GloVe-based 53-65.
- Distinct-n: distinct n-grams / all n-grams over all hypotheses (corpus level).

Speed (10,000 real ESConv pairs: benchmarks/metrics_scale.py): each text is tokenized once; BLEU's clipped
n-gram counts are taken once for n = 1..4 and summed into NLTK's own final formula; the LCS is the bit-parallel
one (Hyyro 2004, exact); METEOR is tuning/meteor.py (NLTK's alignment on a cached WordNet table, a process
pool for large inputs); Extrema gathers embedding rows in numpy batches. Scores equal the direct NLTK,
sacrebleu and rouge-score computations (tests/tuning/test_metrics.py, test_meteor.py).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Sequence

from extes.corpus.stats import word_tokens
from extes.errors import InputError
from extes.tuning.meteor import map_pairs, meteor_scores, worker_meteor

BLEU_MAX_N = 4


def tokens(text: str) -> list[str]:
    return [t.lower() for t in word_tokens(text)]


def tokenize_all(texts: Sequence[str]) -> list[list[str]]:
    """`tokens` of every text, each distinct text tokenized once (replies repeat: "Hello", "I understand")."""
    seen: dict[str, list[str]] = {}
    return [seen[t] if t in seen else seen.setdefault(t, tokens(t)) for t in texts]


def _check(hyps: Sequence, refs: Sequence) -> None:
    if len(hyps) != len(refs):
        raise InputError(f"{len(hyps)} hypotheses but {len(refs)} references; give one reference per hypothesis")
    if not hyps:
        raise InputError("no hypotheses to score")


def bleu_stats(hyp: list[str], ref: list[str], max_n: int = BLEU_MAX_N) -> tuple[tuple[int, int], ...]:
    """(clipped matches, max(1, hypothesis n-grams)) for n = 1..max_n: NLTK's `modified_precision`, one ref."""
    out = []
    for n in range(1, max_n + 1):
        h = Counter(zip(*[hyp[i:] for i in range(n)], strict=False)) if len(hyp) >= n else Counter()
        r = Counter(zip(*[ref[i:] for i in range(n)], strict=False)) if len(ref) >= n else Counter()
        out.append((sum(min(c, r[g]) for g, c in h.items() if g in r), max(1, sum(h.values()))))
    return tuple(out)


def corpus_bleu_from_stats(stats: Sequence, hyp_lengths: int, ref_lengths: int, n: int) -> float:
    """NLTK's `corpus_bleu` (uniform weights, smoothing method 1) from summed `bleu_stats`, same float steps."""
    from fractions import Fraction

    from nltk.translate.bleu_score import SmoothingFunction, brevity_penalty

    num = [sum(s[i][0] for s in stats) for i in range(n)]
    den = [sum(s[i][1] for s in stats) for i in range(n)]
    if num[0] == 0:
        return 0.0
    p_n = SmoothingFunction().method1([Fraction(a, b, _normalize=False) for a, b in zip(num, den, strict=True)])
    weights = tuple([1.0 / n] * n)
    bp = brevity_penalty(ref_lengths, hyp_lengths)
    return bp * math.exp(math.fsum(w * math.log(p) for w, p in zip(weights, p_n, strict=True) if p > 0))


def _bleu_tok(h: list[list[str]], r: list[list[str]], orders: Sequence[int]) -> list[float]:
    stats = [bleu_stats(a, b, max(orders)) for a, b in zip(h, r, strict=True)]
    hl, rl = sum(map(len, h)), sum(map(len, r))
    return [100 * corpus_bleu_from_stats(stats, hl, rl, n) for n in orders]


def bleu(hyps: Sequence[str], refs: Sequence[str], n: int = 4) -> float:
    """Corpus BLEU-n x100 (NLTK, smoothing method 1)."""
    _check(hyps, refs)
    return _bleu_tok(tokenize_all(hyps), tokenize_all(refs), [n])[0]


def lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyro 2004): one big-int step per token of `a`."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for j, y in enumerate(b):
        masks[y] = masks.get(y, 0) | (1 << j)
    full = (1 << len(b)) - 1
    v = full
    for x in a:
        u = v & masks.get(x, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l_pair(hyp: list[str], ref: list[str]) -> float:
    m = lcs(hyp, ref)
    if m == 0:
        return 0.0
    p, r = m / len(hyp), m / len(ref)
    return 2 * p * r / (p + r)


def _rouge_tok(h: list[list[str]], r: list[list[str]]) -> float:
    return 100 * sum(rouge_l_pair(a, b) for a, b in zip(h, r, strict=True)) / len(h)


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean sentence-level ROUGE-L F-measure x100."""
    _check(hyps, refs)
    return _rouge_tok(tokenize_all(hyps), tokenize_all(refs))


def meteor(hyps: Sequence[str], refs: Sequence[str], workers: int | None = None) -> float:
    """Mean METEOR x100 (NLTK's, computed by tuning/meteor.py; WordNet 3.0 offline)."""
    _check(hyps, refs)
    return 100 * sum(meteor_scores(tokenize_all(hyps), tokenize_all(refs), workers)) / len(hyps)


def _distinct_tok(h: list[list[str]], n: int) -> float:
    grams = [tuple(t[i : i + n]) for t in h for i in range(len(t) - n + 1)]
    return 100 * len(set(grams)) / len(grams) if grams else 0.0


def distinct(hyps: Sequence[str], n: int) -> float:
    """Distinct-n x100: distinct n-grams over all n-grams of all hypotheses."""
    return _distinct_tok(tokenize_all(hyps), n)


@functools.lru_cache(maxsize=1)
def _embeddings():
    """(tokenizer, float32 embedding matrix) of the embedded model, from the cached folder; no torch needed.

    The `tokenizers` Tokenizer of tokenizer.json gives the ids `AutoTokenizer(..., add_special_tokens=False)`
    gives (tested), without importing transformers and torch (seconds of a whole command).
    """
    from safetensors.numpy import safe_open
    from tokenizers import Tokenizer

    from extes.programs.lm.weights import converted_folder, embedded_gguf  # lazy: programs.lm.weights imports dspy

    folder = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        matrix = f.get_tensor("model.embed_tokens.weight").astype("float32", copy=False)
    return Tokenizer.from_file(str(folder / "tokenizer.json")), matrix


def extrema_vectors(texts: list[list[str]], batch: int = 1024):
    """(Vector Extrema of each token list as float64 rows, whether the text had any token); numpy batches, each
    distinct text once."""
    import numpy as np

    tok, matrix = _embeddings()
    joined = [" ".join(t) for t in texts]
    uniq = list(dict.fromkeys(joined))
    ids = [e.ids for e in tok.encode_batch(uniq, add_special_tokens=False)]
    vecs = np.zeros((len(uniq), matrix.shape[1]), dtype=np.float64)
    has = np.array([bool(x) for x in ids], dtype=bool)
    for k in range(0, len(uniq), batch):
        part = [x for x in ids[k:k + batch] if x]
        if not part:
            continue
        lens = [len(x) for x in part]
        rows = matrix[np.fromiter(itertools.chain.from_iterable(part), dtype=np.int64, count=sum(lens))]
        starts = np.cumsum([0, *lens[:-1]])
        hi, lo = np.maximum.reduceat(rows, starts), np.minimum.reduceat(rows, starts)
        vecs[np.nonzero(has[k:k + batch])[0] + k] = np.where(np.abs(hi) >= np.abs(lo), hi, lo)
    where = {t: i for i, t in enumerate(uniq)}
    pick = np.fromiter((where[t] for t in joined), dtype=np.int64, count=len(joined))
    return vecs[pick], has[pick]


def extrema_vector(text: str):
    """The Vector Extrema of one text as a float32 torch vector (callers take its cosine), or None if no token."""
    import torch

    vecs, has = extrema_vectors([tokens(text)])
    return torch.from_numpy(vecs[0].astype("float32")) if has[0] else None


def _extrema_tok(h: list[list[str]], r: list[list[str]]) -> float:
    import numpy as np

    a, ha = extrema_vectors(h)
    b, hb = extrema_vectors(r)
    eps = 1e-8  # torch.nn.functional.cosine_similarity's eps, as the per-pair torch version used
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), eps)
    return 100 * float(cos[ha & hb].sum()) / len(h)


def extrema(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean Vector Extrema cosine x100 (0 for an empty text)."""
    _check(hyps, refs)
    return _extrema_tok(tokenize_all(hyps), tokenize_all(refs))


def _pair_chunk(h: list[list[str]], r: list[list[str]]) -> list[tuple[float, float, tuple]]:
    """(METEOR, ROUGE-L, BLEU counts) of each pair: the per-pair work `all_metrics` spreads over processes."""
    m = worker_meteor()
    return [(m.score(a, b), rouge_l_pair(a, b), bleu_stats(a, b)) for a, b in zip(h, r, strict=True)]


def all_metrics(hyps: Sequence[str], refs: Sequence[str], workers: int | None = None) -> dict[str, float]:
    """Every metric but PPL, x100, rounded to 4 decimals; each text tokenized once."""
    _check(hyps, refs)
    h, r = tokenize_all(hyps), tokenize_all(refs)
    # The per-pair work first, in a process pool for large inputs: it forks, and forking after the Rust
    # tokenizer's threads have run (Extrema) is what `tokenizers` warns about.
    worker_meteor()  # the WordNet table, loaded before the fork so workers inherit it
    per_pair = map_pairs(_pair_chunk, h, r, workers)
    hl, rl = sum(map(len, h)), sum(map(len, r))
    stats = [p[2] for p in per_pair]
    out = {
        "bleu2": 100 * corpus_bleu_from_stats(stats, hl, rl, 2),
        "bleu4": 100 * corpus_bleu_from_stats(stats, hl, rl, 4),
        "rouge_l": 100 * sum(p[1] for p in per_pair) / len(h), "meteor": 100 * sum(p[0] for p in per_pair) / len(h),
        "extrema": _extrema_tok(h, r),
        "dist1": _distinct_tok(h, 1), "dist2": _distinct_tok(h, 2), "dist3": _distinct_tok(h, 3),
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
