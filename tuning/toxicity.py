"""Toxicity (the paper's Table 7): six attributes behind pluggable backends; each states what it covers.

| backend | needs | covers |
|---|---|---|
| `offline` (default) | `alt-profanity-check` (PyPI, ships its model) | toxicity, profanity (one model) |
| `detoxify` | `pip install detoxify` and a checkpoint file you provide (`--checkpoint`; no download) | all six |
| `perspective` | `PERSPECTIVE_API_KEY` (Google stops serving it after 2026) | all six |

Attributes a backend does not cover are reported as null, never guessed.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from extes.errors import InputError, ModelError

ATTRIBUTES = ("toxicity", "severe_toxicity", "identity_attack", "insult", "profanity", "threat")
BACKENDS = ("offline", "detoxify", "perspective")


class OfflineBackend:
    """alt-profanity-check's linear model (offensive / profane language); offline, fast."""

    name, covers = "offline", ("toxicity", "profanity")

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        try:
            from profanity_check import predict_prob
        except ImportError:
            raise ModelError("the offline toxicity backend needs: pip install alt-profanity-check") from None
        probs = predict_prob(texts) if texts else []
        return [{"toxicity": float(p), "profanity": float(p)} for p in probs]


class DetoxifyBackend:
    """Detoxify (Hanu & Unitary, 2020) from a checkpoint the user provides."""

    name, covers = "detoxify", ATTRIBUTES

    def __init__(self, checkpoint: str | None):
        if not checkpoint or not Path(checkpoint).exists():
            raise ModelError("--backend detoxify needs --checkpoint FILE (a Detoxify .ckpt you downloaded; "
                             "nothing is fetched at run time)")
        try:
            from detoxify import Detoxify
        except ImportError:
            raise ModelError("--backend detoxify needs: pip install detoxify") from None
        self.model = Detoxify("original", checkpoint=checkpoint)

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        out = self.model.predict(texts)
        rename = {"obscene": "profanity"}
        rows = [{} for _ in texts]
        for key, values in out.items():
            attr = rename.get(key, key)
            if attr in ATTRIBUTES:
                for row, v in zip(rows, values, strict=True):
                    row[attr] = float(v)
        return rows


class PerspectiveBackend:
    """Google's Perspective API over HTTPS, one request per text, with rate limiting and retries."""

    name, covers = "perspective", ATTRIBUTES
    URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"

    def __init__(self, qps: float = 1.0, retries: int = 3):
        self.key = os.environ.get("PERSPECTIVE_API_KEY")
        if not self.key:
            raise ModelError("--backend perspective needs PERSPECTIVE_API_KEY in the environment")
        self.url = os.environ.get("EXTES_PERSPECTIVE_URL", self.URL)
        self.interval, self.retries = 1.0 / qps, retries

    def _one(self, text: str) -> dict[str, float]:
        body = json.dumps({"comment": {"text": text}, "languages": ["en"],
                           "requestedAttributes": {a.upper(): {} for a in ATTRIBUTES}}).encode()
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(f"{self.url}?key={self.key}", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    data = json.loads(resp.read())
                return {a: data["attributeScores"][a.upper()]["summaryScore"]["value"] for a in ATTRIBUTES}
            except urllib.error.HTTPError as e:
                if e.code in (400, 401, 403):
                    raise ModelError(f"Perspective refused the request (HTTP {e.code}); check PERSPECTIVE_API_KEY "
                                     "and that the API is enabled for it") from None
                if attempt == self.retries:
                    raise ModelError(f"Perspective failed after {self.retries + 1} tries (HTTP {e.code})") from None
                time.sleep(self.interval * 2**attempt)
        raise AssertionError("unreachable")

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            out.append(self._one(text))
            time.sleep(self.interval)
        return out


def backend(name: str, checkpoint: str | None = None):
    if name == "offline":
        return OfflineBackend()
    if name == "detoxify":
        return DetoxifyBackend(checkpoint)
    if name == "perspective":
        return PerspectiveBackend()
    raise InputError(f"--backend {name!r} is not a toxicity backend; use one of {', '.join(BACKENDS)}")


def corpus_toxicity(dialogues, scorer) -> dict[str, Any]:
    """Mean of each attribute over utterances, per role and overall (null where the backend has no such score)."""
    texts = [(t.role, t.text) for d in dialogues for t in d.turns]
    if not texts:
        raise InputError("no utterances to score")
    scores = scorer.score([t for _, t in texts])
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    for (role, _), row in zip(texts, scores, strict=True):
        for group in (role, "all"):
            counts[group] += 1
            for a, v in row.items():
                sums[group][a] += v
    result = {g: {a: (round(sums[g][a] / counts[g], 4) if a in scorer.covers else None) for a in ATTRIBUTES}
              for g in ("user", "assistant", "all") if counts[g]}
    return {"backend": scorer.name, "covers": list(scorer.covers), "utterances": len(texts), "means": result}
