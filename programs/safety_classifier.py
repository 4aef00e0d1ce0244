"""A learned crisis classifier over the embedded model's hidden states, behind the rule layer.

Rules catch what they were written for; phrasings they were not written for need meaning, not words. Features:
the mean of the last and of the middle hidden layer of the embedded SmolLM2 over the message's tokens (1152
numbers); model: multinomial logistic regression (L2 1e-2, L-BFGS from zeros, so training is deterministic) over
six classes, `none` and the five crisis categories. Defaults (L2 1e-2, flag at P(crisis) >= 0.5) are standard ones,
not tuned on any evaluation set. Weights live in assets/safety/classifier.json with the data they came from;
`extes safety train` rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from extes.corpus.atomic import write_text_atomic

CLASSES = ("none", "medical_emergency", "abuse_violence", "harm_to_others", "self_harm", "suicide")
THRESHOLD = 0.5
L2 = 1e-2


def features(lm, texts: list[str]):
    """(n, 2·hidden) tensor: mean-pooled last and middle hidden layers of `lm` (a LocalLM)."""
    import torch

    model = lm.hf_model
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt")
            hidden = model(**ids, output_hidden_states=True).hidden_states
            rows.append(torch.cat([hidden[-1][0].mean(0), hidden[len(hidden) // 2][0].mean(0)]))
    return torch.stack(rows).float()


def train(lm, rows: list[dict[str, Any]], sources: list[str]) -> dict[str, Any]:
    """Fit the classifier on labelled rows ({"text", "crisis", "category"}); returns the JSON-able weights."""
    import torch

    x = features(lm, [r["text"] for r in rows])
    y = torch.tensor([CLASSES.index(r.get("category") or "suicide") if r["crisis"] else 0 for r in rows])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = torch.zeros(z.shape[1], len(CLASSES), requires_grad=True)
    b = torch.zeros(len(CLASSES), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, y) + L2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    digest = hashlib.sha256("\n".join(f"{r['text']}\t{r['crisis']}" for r in rows).encode()).hexdigest()
    return {
        "version": 1, "model": lm.model, "classes": list(CLASSES), "threshold": THRESHOLD, "l2": L2,
        "trained_on": sources, "n": len(rows), "data_sha256": digest,
        "mu": _round(mu), "sd": _round(sd), "w": _round(w.detach()), "b": _round(b.detach()),
    }


def _round(t) -> list:
    """Six significant digits are plenty for these weights and keep the asset small."""
    import torch

    return torch.tensor([float(f"{v:.6g}") for v in t.flatten().tolist()]).reshape(t.shape).tolist()


def save(weights: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(weights) + "\n")


class SafetyClassifier:
    """Loaded weights + the LM that makes the features."""

    def __init__(self, weights: dict[str, Any], lm):
        import torch

        self.lm = lm
        self.threshold = float(weights["threshold"])
        self.classes = weights["classes"]
        self.mu, self.sd = torch.tensor(weights["mu"]), torch.tensor(weights["sd"])
        self.w, self.b = torch.tensor(weights["w"]), torch.tensor(weights["b"])

    def probabilities(self, text: str) -> dict[str, float]:
        import torch

        z = (features(self.lm, [text])[0] - self.mu) / self.sd
        p = torch.softmax(z @ self.w + self.b, dim=-1)
        return {c: float(p[i]) for i, c in enumerate(self.classes)}

    def predict(self, text: str) -> tuple[bool, str | None, float]:
        """(crisis, category, P(crisis))."""
        probs = self.probabilities(text)
        p_crisis = 1.0 - probs["none"]
        if p_crisis < self.threshold:
            return False, None, p_crisis
        category = max((c for c in self.classes if c != "none"), key=lambda c: probs[c])
        return True, category, p_crisis
