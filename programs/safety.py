"""The crisis-safety layer: every user message is checked before any LM call.

A lexical/rule layer (assets/safety/patterns.yaml) catches direct and indirect signals of suicide, self-harm,
harm to others, abuse or violence in progress and medical emergencies, after removing idioms and other hard
negatives ("this exam is killing me"); what the rules do not catch goes to a learned classifier over the embedded
model's hidden states (programs/safety_classifier.py), which carries meaning to phrasings no rule was written for.
On a hit the bot answers with a fixed, reviewed escalation message
(assets/safety/resources.yaml, per locale); a small model never improvises there.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from extes.corpus import textio
from extes.corpus.assets import assets_dir, read_yaml
from extes.errors import AssetError, InputError

log = logging.getLogger(__name__)

ORDER = ("medical_emergency", "abuse_violence", "harm_to_others", "self_harm", "suicide")
CONTRACTIONS = {
    r"\bim\b": "i'm", r"\bdont\b": "don't", r"\bcant\b": "can't", r"\bwont\b": "won't", r"\bu\b": "you",
    r"\bur\b": "your", r"\bwanna\b": "want to", r"\bgonna\b": "going to", r"\bive\b": "i've", r"\bid\b": "i'd",
    r"\bisnt\b": "isn't", r"\bdidnt\b": "didn't", r"\bwasnt\b": "wasn't", r"\bthats\b": "that's",
}


@dataclass(frozen=True)
class SafetyResult:
    """The verdict on one message."""

    crisis: bool
    category: str | None
    matched: str | None
    rule: str | None
    source: str = "rules"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize(text: str) -> str:
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    for pat, rep in CONTRACTIONS.items():
        t = re.sub(pat, rep, t)
    return re.sub(r"\s+", " ", t).strip()


class SafetyChecker:
    """Crisis detector: the rules of assets/safety/patterns.yaml, then (unless `rules_only`) the learned classifier.

    `lm` is the LocalLM whose hidden states feed the classifier (default: the embedded model, loaded on first use).
    """

    def __init__(self, folder: Path | None = None, *, rules_only: bool = False, lm=None):
        folder = folder or assets_dir() / "safety"
        self.folder = folder
        self.rules_only = rules_only
        self._lm = lm
        self._classifier = None
        data = read_yaml(folder / "patterns.yaml")
        try:
            self.exempt = [re.compile(p) for p in data["exempt"]]
            self.patterns = {cat: [re.compile(p) for p in data["patterns"][cat]] for cat in ORDER}
        except (KeyError, TypeError, re.error) as e:
            raise AssetError(f"{folder / 'patterns.yaml'}: {e}; every category needs a list of valid regexes") from None

    def check(self, text: str) -> SafetyResult:
        t = normalize(text)
        for ex in self.exempt:
            t = ex.sub(" ", t)
        for cat in ORDER:
            for pat in self.patterns[cat]:
                m = pat.search(t)
                if m:
                    return SafetyResult(True, cat, m.group(0), pat.pattern)
        clf = None if self.rules_only else self.classifier()
        if clf is not None:
            crisis, category, p = clf.predict(text)
            return SafetyResult(crisis, category, None, f"P(crisis)={p:.2f}", source="classifier")
        return SafetyResult(False, None, None, None)

    def classifier(self):
        """The learned classifier, loaded once; None (with a warning) when its weights or model are missing."""
        if self._classifier is None:
            path = self.folder / "classifier.json"
            try:
                weights = json.loads(path.read_text(encoding="utf-8"))
                from extes.programs.safety_classifier import SafetyClassifier

                self._classifier = SafetyClassifier(weights, self._lm or _embedded_lm())
            except Exception as e:  # noqa: BLE001 - a missing model must not take the safety rules down with it
                log.warning("safety classifier unavailable (%s); using the rules alone", str(e).splitlines()[0])
                self._classifier = False
        return self._classifier or None


def _embedded_lm():
    from extes.programs.lm.local import LocalLM

    return LocalLM()


@functools.lru_cache(maxsize=2)
def default_checker(rules_only: bool = False) -> SafetyChecker:
    return SafetyChecker(rules_only=rules_only)


def escalation_message(locale: str | None = None) -> str:
    """The fixed escalation text for a locale (the international fallback when the locale has none)."""
    data = read_yaml(assets_dir() / "safety" / "resources.yaml")
    locales = data["locales"]
    entry = locales.get((locale or data["default_locale"]).lower()) or locales[data["default_locale"]]
    return " ".join(entry["message"].split())


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """Lines of {"text": ..., "crisis": true|false}; a bad line names its number."""
    rows = []
    lines = textio.read_text(path, folder_hint='give a JSONL file of {"text", "crisis"} lines').splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = textio.loads(line)
            assert isinstance(row["text"], str) and isinstance(row["crisis"], bool)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise InputError(f"{path}: line {i}: expected {{\"text\": str, \"crisis\": true|false}}") from None
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no labelled messages")
    return rows


def evaluate(rows: list[dict[str, Any]], checker: SafetyChecker | None = None) -> dict[str, Any]:
    """Recall and precision of the crisis flag, with the misses and false alarms listed."""
    checker = checker or default_checker()
    tp = fp = fn = tn = 0
    misses, false_alarms = [], []
    for row in rows:
        got = checker.check(row["text"]).crisis
        if got and row["crisis"]:
            tp += 1
        elif got:
            fp += 1
            false_alarms.append(row["text"])
        elif row["crisis"]:
            fn += 1
            misses.append(row["text"])
        else:
            tn += 1
    return {
        "n": len(rows),
        "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "misses": misses, "false_alarms": false_alarms,
    }
