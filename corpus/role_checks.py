"""Role checks on a simulated help-seeker's message: pure functions, each with a reason code (like validation.py).

| code | check |
|---|---|
| empty | the message has at least two characters |
| role_flip | it does not speak as the supporter (`validation.ROLE_FLIP`: "how can I help", "as an AI", ...) |
| fragment | it does not continue the listener's unfinished last sentence (starting in lower case after it) |
| echo | 3-gram Jaccard with the supporter's last message <= 0.5, and it does not contain that message whole |
| loop | 3-gram Jaccard with each of the seeker's earlier messages <= 0.6 |
"""

from __future__ import annotations

import re

from extes.corpus.dedup import jaccard, shingles
from extes.corpus.validation import ROLE_FLIP, Problem

ECHO, LOOP = 0.5, 0.6


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def check_seeker_message(message: str, history: list[dict]) -> list[Problem]:
    """Problems of `message` as the seeker's next turn after `history` ({role, text}; the seeker is "user")."""
    text = (message or "").strip()
    if len(text) < 2:
        return [Problem("empty", "hard", "the seeker's message is empty")]
    problems = []
    last_support = next((t["text"] for t in reversed(history) if t["role"] == "assistant"), "").rstrip()
    if last_support and last_support[-1] not in ".!?\"')" and (text[0].islower() or text[0] in ",;:"):
        problems.append(Problem("fragment", "hard", "the message continues the listener's unfinished sentence"))
    m = ROLE_FLIP.search(text)
    if m:
        problems.append(Problem("role_flip", "hard", f"the seeker speaks as the supporter ({m.group(0)!r})"))
    if last_support:
        sim = jaccard(shingles(text), shingles(last_support))
        contained = len(_words(last_support)) > 12 and _words(last_support) in _words(text)
        if sim > ECHO or contained:
            problems.append(Problem("echo", "hard", f"the seeker repeats the supporter (3-gram Jaccard {sim:.2f})"))
    mine = shingles(text)
    for i, t in enumerate(t for t in history if t["role"] == "user"):
        sim = jaccard(mine, shingles(t["text"])) if mine else float(_words(t["text"]) == _words(text))
        if sim > LOOP:
            problems.append(Problem("loop", "hard", f"the seeker repeats its message {i + 1} (Jaccard {sim:.2f})"))
            break
    return problems
