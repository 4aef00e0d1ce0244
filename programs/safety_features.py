"""What the version-3 crisis classifier reads: meaning, words, the conversation and the rules' verdict, side by side.

Measured on a held-out blind set (README, Safety): a linear model over sentence embeddings alone confuses "I would
never kill myself" with its opposite, and rules that fire first cannot be overruled by anything that reads more,
so every hyperbole a rule matches becomes a false alarm. Version 3 gives one multinomial logistic regression all of
it at once and lets it learn when a rule hit is a joke:

- three multilingual-e5-small embeddings (384 numbers each): the text the rules leave (`RuleSet.prepare`: idioms,
  negations, reported speech removed), the raw message, and the assistant's last turn joined to the message (a "yes"
  means something else after "are you safe?" than after "are you thinking of suicide?");
- the rules' and the context layer's verdict as eight numbers (one per category; the first says "from context");
- hashed word uni/bigrams and character 3-5-grams of the normalized message (NGRAM_DIM numbers, log counts), which
  carry "not gonna", "jk", "lol", emoji and misspellings that embeddings smooth away.

Identical strings among the three embeddings are embedded once, so a message with no context costs two at most.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

from extes.corpus.safety_rules import normalize

NGRAM_DIM = 1 << 13
E5_TEXTS = 3  # prepared, raw, assistant's last turn + message
RULE_DIM = 8
CATEGORIES = ("medical_emergency", "abuse_violence", "third_party", "harm_to_others", "self_harm", "suicide")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def ngram_counts(text: str, dim: int = NGRAM_DIM) -> dict[int, float]:
    """The non-zero entries of `ngram_vector` (index -> log(1 + count)): a message has a few hundred of its 8,192."""
    t = normalize(text).lower()
    words = _TOKEN.findall(t)
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    padded = f" {t} "
    grams += [padded[j:j + n] for n in (3, 4, 5) for j in range(len(padded) - n + 1)]
    counts: dict[int, int] = {}
    for g in grams:
        k = zlib.crc32(g.encode("utf-8")) % dim
        counts[k] = counts.get(k, 0) + 1
    return {k: math.log1p(c) for k, c in counts.items()}


def ngram_vector(text: str, dim: int = NGRAM_DIM) -> list[float]:
    """log(1 + count) of hashed word 1-2-grams and character 3-5-grams of the normalized, lower-cased text."""
    row = [0.0] * dim
    for k, v in ngram_counts(text, dim).items():
        row[k] = v
    return row


def rule_vector(hit: Any) -> list[float]:
    """The rules' or the context layer's verdict (a SafetyResult or None) as RULE_DIM numbers."""
    row = [0.0] * RULE_DIM
    if hit is not None and getattr(hit, "crisis", False):
        row[0] = 1.0 if hit.source == "context" else 0.0
        row[1 + CATEGORIES.index(hit.category) if hit.category in CATEGORIES else 6] = 1.0
    return row


def context_text(text: str, context: list[dict[str, str]] | None) -> str:
    """The assistant's last turn before the message, joined to it (the message alone without one)."""
    last = [t["text"] for t in (context or []) if t.get("role") == "assistant"][-1:]
    return f"{last[0]} || {text}" if last else text


def e5_texts(prepared: str, text: str, context: list[dict[str, str]] | None) -> list[str]:
    """The E5_TEXTS strings embedded for one message, in feature order."""
    return [prepared, text, context_text(text, context)]


def assemble(embeddings, hits: list[Any], texts: list[str]):
    """(n, E5_TEXTS*384 + RULE_DIM + NGRAM_DIM) features from (n, E5_TEXTS, 384) embeddings, rule verdicts, texts."""
    import torch

    n = len(texts)
    rules = torch.tensor([rule_vector(h) for h in hits], dtype=torch.float32).reshape(n, RULE_DIM)
    grams = torch.zeros(n, NGRAM_DIM)  # filled from the sparse counts: no list of 8,192 floats per message
    for i, t in enumerate(texts):
        counts = ngram_counts(t)
        if counts:
            grams[i, list(counts)] = torch.tensor(list(counts.values()), dtype=torch.float32)
    return torch.cat([embeddings.reshape(n, -1), rules, grams], 1)


def embed_unique(extractor, texts: list[str]):
    """`extractor.embed` over `texts`, each distinct string embedded once."""
    import torch

    order = list(dict.fromkeys(texts))
    rows = extractor.embed(order)
    index = {t: i for i, t in enumerate(order)}
    return torch.stack([rows[index[t]] for t in texts])
