"""Strategy-label normalization: variants map to the canonical label; unknown labels are kept and flagged."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from extes.corpus.assets import load_esconv_strategies, load_extes_to_esconv, load_taxonomy
from extes.signatures.reply_tag import split_tag
from extes.signatures.taxonomy import label_key


@dataclass(frozen=True)
class Normalized:
    """The outcome of normalizing one label: `label` is canonical when `known`, else the raw text (stripped)."""

    label: str | None
    known: bool
    changed: bool


class LabelNormalizer:
    """Maps label variants (abbreviations, other case, aliases, plural forms) of one label set to canonical names."""

    def __init__(self, label_set: str = "extes"):
        if label_set == "extes":
            tax = load_taxonomy()
            entries = [(s.name, [s.abbreviation, *s.aliases]) for s in tax.strategies]
        elif label_set == "esconv":
            entries = [(s.name, s.aliases) for s in load_esconv_strategies()]
        else:
            raise ValueError(f"unknown label set {label_set!r}; use 'extes' or 'esconv'")
        self.label_set = label_set
        self.canonical = [name for name, _ in entries]
        self._index: dict[str, str] = {}
        for name, variants in entries:
            for v in [name, *variants]:
                self._index[label_key(v)] = name

    def normalize(self, raw: str | None) -> Normalized:
        """Normalize one label; None or blank means 'no strategy'."""
        if raw is None or not str(raw).strip():
            return Normalized(None, True, raw is not None and raw != "")
        text = str(raw).strip()
        # "Reflective Statements (RS)" and "RS - Reflective Statements" both occur in generated data.
        candidates = [text, text.split("(")[0], text.split(" - ")[-1], text.split(":")[0]]
        for c in candidates:
            hit = self._index.get(label_key(c))
            if hit:
                return Normalized(hit, True, hit != raw)
        return Normalized(text, False, text != raw)

    def is_known(self, label: str | None) -> bool:
        return label is None or label in self.canonical


@functools.lru_cache(maxsize=4)
def normalizer(label_set: str = "extes") -> LabelNormalizer:
    """A shared normalizer per label set (assets are read once)."""
    return LabelNormalizer(label_set)


def esconv_to_extes() -> dict[str, str]:
    """The documented ESConv → ExTES mapping of assets/esconv_strategies.yaml."""
    return {s.name: s.extes for s in load_esconv_strategies()}


def extes_to_esconv() -> dict[str, str]:
    """The documented ExTES → ESConv mapping (the reverse direction, `from_extes` in assets/esconv_strategies.yaml)."""
    return load_extes_to_esconv()


def leading_label(reply: str) -> tuple[str | None, str]:
    """Split a reply of a model tuned on the `strategies` variant: "[Question] How are you?" -> (label, text)."""
    return split_tag(reply)
