"""The lexical layer of the crisis check: normalization, then idiom/negation removal, then per-category regexes.

Rules live in assets (`assets/safety/patterns.yaml` for English, `assets/safety/languages/<lang>.yaml` for Spanish,
French, Portuguese and German, all of the same shape); every language's rules run on every message, since a
message's language is not known in advance and mixed-language messages are common. Normalization makes the rules
see through the spellings people type in distress: accents dropped ("suicídio" → "suicidio"), digits used as letters
("k1ll" → "kill"), split words ("my self" → "myself") and near-misses of a few key words ("sucidal" → "suicidal").
Long texts are matched window by window, so the time and memory of a check grow linearly with the message.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from extes.corpus.assets import assets_dir, read_yaml
from extes.errors import AssetError

# Checked in this order: the most urgent answer first, and someone else in danger before the user's own wording
# ("she says she wants to end it") is read as the user's.
ORDER = ("medical_emergency", "abuse_violence", "third_party", "harm_to_others", "self_harm", "suicide")
LANGUAGES = ("en", "es", "fr", "pt", "de")
WINDOW, OVERLAP = 2000, 300  # chars; a crisis sentence is far shorter than the overlap

CONTRACTIONS = {
    r"\bim\b": "i'm", r"\bdont\b": "don't", r"\bcant\b": "can't", r"\bwont\b": "won't", r"\bu\b": "you",
    r"\bur\b": "your", r"\bwanna\b": "want to", r"\bgonna\b": "going to", r"\bive\b": "i've", r"\bid\b": "i'd",
    r"\bisnt\b": "isn't", r"\bdidnt\b": "didn't", r"\bwasnt\b": "wasn't", r"\bthats\b": "that's",
    r"\b(my|your|her|him|them|our) (self|selves)\b(?![- ]?(esteem|worth|confidence|care|image|control|respect|doubt))":
        r"\1\2",
    r"\bthots?\b": "thoughts", r"\blyfe\b": "life", r"\bthoughs\b": "thoughts", r"\bkil\b": "kill",
    r"\bkilll+\b": "kill",
    r"\brn\b": "right now", r"\btn\b": "tonight", r"\btmrw\b": "tomorrow", r"\bpls\b": "please",
    r"\bsewer ?slide\b": "suicide", r"\bk\.?m\.?s\b": "kms",
    # Key words split or abbreviated to get past filters ("sui cide", "s/h", "clean from sh").
    r"\bsui[ .\-*]+cid(e|al)\b": r"suicid\1", r"\bs/h\b": "self harm",
    r"\b(from|with|about|my|the|of) sh\b": r"\1 self harm",
    # "ill" before a verb of harm is "i'll" typed without the apostrophe ("i swear ill stab him").
    r"\bill(?= (stab|kill|hurt|shoot|murder|end|beat|punch|burn|jump|cut|poison|strangle|make|do it|never))": "i'll",
}
LEET = str.maketrans({"!": "i", "1": "i", "3": "e", "0": "o", "4": "a", "@": "a", "$": "s", "5": "s", "7": "t"})
# Words whose misspellings matter most; a token within one edit of one of these (two for the long ones) is read as it.
# ("overdose" is not one: "overdone" is a word.)
KEY_WORDS = ("suicide", "suicidal", "myself", "killing", "unalive", "selfharm")


@dataclass(frozen=True)
class RuleHit:
    """The first rule that matched: its category, the text it matched and the pattern."""

    category: str
    matched: str
    rule: str


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _edits_within(a: str, b: str, k: int) -> bool:
    """Levenshtein distance of a and b is at most k (banded, so cheap for the short words it is used on)."""
    if abs(len(a) - len(b)) > k:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > k:
            return False
        prev = cur
    return prev[-1] <= k


def _fix_word(m: re.Match) -> str:
    word = m.group(0)
    if word[0].isalpha() and any(c.isdigit() or c in "@$!" for c in word):
        word = word.translate(LEET)
    if len(word) >= 5 and word not in KEY_WORDS:
        for key in KEY_WORDS:
            if word[0] == key[0] and _edits_within(word, key, 2 if len(key) >= 8 else 1):
                return key
    return word


def normalize(text: str) -> str:
    """Lower case, quotes straightened, accents dropped, chat spellings expanded, near-misses of key words fixed."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = _strip_accents(t).replace("\u00df", "ss")
    t = re.sub(r"[a-z0-9@$]+(?:![a-z0-9@$]+)*", _fix_word, t)
    for pat, rep in CONTRACTIONS.items():
        t = re.sub(pat, rep, t)
    return re.sub(r"\s+", " ", t).strip()


def windows(text: str, size: int = WINDOW, overlap: int = OVERLAP) -> Iterator[str]:
    """Overlapping slices of `text` (the whole text when short)."""
    if len(text) <= size:
        yield text
        return
    for start in range(0, len(text) - overlap, size - overlap):
        yield text[start:start + size]


def _compile(path: Path, data: dict) -> tuple[list[re.Pattern], dict[str, list[re.Pattern]]]:
    try:
        exempt = [re.compile(p) for p in data.get("exempt") or []]
        patterns = {cat: [re.compile(p) for p in (data["patterns"].get(cat) or [])] for cat in ORDER}
    except (KeyError, TypeError, AttributeError, re.error) as e:
        raise AssetError(f"{path}: {e}; give `exempt` and `patterns: {{category: [regex, ...]}}` lists") from None
    return exempt, patterns


class RuleSet:
    """The rules of every language in `folder` (patterns.yaml, languages/*.yaml), compiled once."""

    def __init__(self, folder: Path):
        files = [folder / "patterns.yaml", *sorted((folder / "languages").glob("*.yaml"))]
        self.exempt: list[re.Pattern] = []
        self.patterns: dict[str, list[re.Pattern]] = {cat: [] for cat in ORDER}
        self.languages = []
        self.language_of: dict[str, str] = {}  # pattern -> the language of the file it comes from (the first)
        for path in files:
            exempt, patterns = _compile(path, read_yaml(path))
            lang = "en" if path.name == "patterns.yaml" else path.stem
            self.exempt += exempt
            for cat in ORDER:
                self.patterns[cat] += patterns[cat]
                for pat in patterns[cat]:
                    self.language_of.setdefault(pat.pattern, lang)
            self.languages.append(lang)

    def strip(self, normalized: str) -> str:
        """The normalized text with idioms, negations, reported speech and hyperbole removed."""
        for ex in self.exempt:
            normalized = ex.sub(" ", normalized)
        return normalized

    def prepare(self, text: str) -> str:
        """What the classifier reads: the normalized text with what `strip` removes taken out."""
        return " ".join(self.strip(part) for part in windows(normalize(text)))

    def match(self, text: str) -> RuleHit | None:
        """The first rule hit in `text` (raw), in ORDER of categories, over every window of a long text."""
        best: tuple[int, RuleHit] | None = None
        for part in windows(normalize(text)):
            hit = self._first_hit(self.strip(part))
            if hit and (best is None or hit[0] < best[0]):
                best = hit
        return best[1] if best else None

    def _first_hit(self, text: str) -> tuple[int, RuleHit] | None:
        for rank, cat in enumerate(ORDER):
            for pat in self.patterns[cat]:
                m = pat.search(text)
                if m:
                    return rank, RuleHit(cat, m.group(0), pat.pattern)
        return None


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The shipped rules (assets/safety/), compiled once per process: what synthesis validation screens with."""
    return RuleSet(assets_dir() / "safety")
