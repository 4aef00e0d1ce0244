"""Checks of the escalation messages (assets/safety/resources.yaml) and the language words beside them.

A crisis in any language the rules read must find a message in that language for every category with its own
message, so `extes assets validate` refuses a resources file that leaves one out.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from extes.corpus.assets import assets_dir, read_yaml
from extes.corpus.safety_rules import LANGUAGES

CATEGORY_MESSAGES = ("message", "third_party")  # every locale has both; other categories get `message`


def resources_problems(folder: Path | None = None) -> list[str]:
    """One-line problems of resources.yaml and language_words.yaml in `folder` (default: the shipped assets)."""
    folder = folder or assets_dir() / "safety"
    path = folder / "resources.yaml"
    data = read_yaml(path)
    locales = data.get("locales") if isinstance(data, dict) else None
    if not isinstance(locales, dict) or not locales:
        return [f"{path}: no `locales`; give `locales: {{name: {{language, message, third_party}}}}`"]
    problems = []
    for name, entry in locales.items():
        entry = entry if isinstance(entry, dict) else {}
        for key in CATEGORY_MESSAGES:
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                problems.append(f"{path}: locale {name!r} has no {key!r} text; add the reviewed message")
        if entry.get("language") not in LANGUAGES:
            problems.append(f"{path}: locale {name!r} has language {entry.get('language')!r}; use one of "
                            f"{', '.join(LANGUAGES)}")
    if data.get("default_locale") not in locales:
        problems.append(f"{path}: default_locale {data.get('default_locale')!r} is not a locale")
    by_language = data.get("language_locales") or {}
    for lang in LANGUAGES:
        name = by_language.get(lang)
        if name not in locales or (locales[name] or {}).get("language") != lang:
            problems.append(f"{path}: language_locales.{lang} is {name!r}; name a locale whose language is {lang} "
                            "(the crisis layer detects it)")
    return problems + _word_problems(folder / "language_words.yaml")


def _word_problems(path: Path) -> list[str]:
    languages = (read_yaml(path) or {}).get("languages") or {}
    problems = [f"{path}: no words for {lang}; list its function words"
                for lang in LANGUAGES if not languages.get(lang)]
    seen = Counter(str(w) for words in languages.values() for w in set(words or []))
    shared = sorted(w for w, n in seen.items() if n > 1)
    if shared:
        problems.append(f"{path}: {', '.join(shared)} listed for two languages (they vote for neither); remove them")
    return problems
