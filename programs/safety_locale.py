"""Which locale's escalation message a crisis gets: the one in the language the user wrote in.

The crisis layer reads five languages (corpus/safety_rules.py: English, Spanish, French, Portuguese, German) but a
verdict does not say which; the message's language is read here from its function words
(assets/safety/language_words.yaml), and when they give no clear answer, from the language file of the rule that
matched. A requested locale (`--locale`) is kept when it is in that language, or has a variant for it (`us` and a
Spanish message: `us-es`); otherwise the language's own locale (`language_locales` in assets/safety/resources.yaml)
answers. With no language known, the requested locale (or the international English message) answers, as before.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from typing import Any

from extes.corpus.assets import assets_dir, read_yaml
from extes.corpus.safety_rules import default_rules
from extes.programs.safety import escalation_message

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@functools.lru_cache(maxsize=1)
def _words() -> tuple[dict[str, str], dict[str, str]]:
    """(word -> language, elided first part -> language) from language_words.yaml; a word listed for two languages
    counts for neither."""
    data = read_yaml(assets_dir() / "safety" / "language_words.yaml")
    seen = Counter(w for words in data["languages"].values() for w in set(map(str, words)))
    words = {str(w): lang for lang, ws in data["languages"].items() for w in ws if seen[str(w)] == 1}
    return words, {str(e): lang for lang, es in (data.get("elisions") or {}).items() for e in es}


@functools.lru_cache(maxsize=1)
def _resources() -> dict[str, Any]:
    return read_yaml(assets_dir() / "safety" / "resources.yaml")


def word_votes(text: str) -> Counter:
    """How many of `text`'s words are function words of each language."""
    words, elisions = _words()
    votes: Counter = Counter()
    # Lower case and accents dropped, but not the rules' normalize: it reads German "im" as "i'm".
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'").replace("\u00df", "ss"))
    for token in _WORD.findall("".join(c for c in text if not unicodedata.combining(c))):
        if token in words:
            votes[words[token]] += 1
        elif "'" in token:  # an elision: j'ai, c'est, qu'il
            first, rest = token.split("'", 1)
            votes.update(table[p] for p, table in ((first, elisions), (rest, words)) if p in table)
    return votes


def detect_language(text: str, rule: str | None = None, earlier: str = "") -> str | None:
    """The language of `text` (en, es, fr, pt, de) by its function words, with those of the user's `earlier` turns
    when the text has fewer than two ("ya", "sim. quase todo dia"); on a tie or none, the language of the crisis
    `rule` that matched it (a verdict's `rule`); None when nothing tells."""
    votes = word_votes(text)
    if earlier and sum(votes.values()) < 2:
        votes.update(word_votes(earlier))
    ranked = votes.most_common(2)
    if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return ranked[0][0]
    return default_rules().language_of.get(rule or "")


def choose_locale(locale: str | None, language: str | None) -> str | None:
    """The resources.yaml locale for a message in `language` when `locale` was asked for (None: the default)."""
    data = _resources()
    locales = data["locales"]
    asked = (locale or "").lower() or None
    if language is None:
        return asked
    if asked and f"{asked}-{language}" in locales:
        return f"{asked}-{language}"
    if asked in locales and locales[asked].get("language", "en") == language:
        return asked
    return data.get("language_locales", {}).get(language, asked)


def localized_escalation(locale: str | None, category: str | None, text: str, verdict=None,
                         context: list[dict[str, str]] | None = None) -> str:
    """The escalation message for a crisis in `text` (the user's message; `verdict` its SafetyResult), in the
    language it was written in. A message too short to tell ("sí, casi todas las noches" is not) is read with the
    user's earlier turns in `context`."""
    earlier = " ".join(t["text"] for t in (context or [])[-6:] if t.get("role") == "user")
    language = detect_language(text, getattr(verdict, "rule", None), earlier)
    return escalation_message(choose_locale(locale, language), category)


def escalation_texts() -> frozenset[str]:
    """Every escalation message of every locale and category, as shown (to recognize one in a transcript)."""
    locales = _resources()["locales"]
    return frozenset(escalation_message(name, key if key != "message" else None)
                     for name, entry in locales.items() for key in entry if key != "language")
