"""Corpus statistics of the paper's section 4 (Tables 1-3): scenarios, strategies, sizes and lengths."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from extes.signatures.dialogue import Dialogue


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokens(text: str) -> list[str]:
    """NLTK word tokens, as the paper counts them (Treebank-style; needs no downloaded data)."""
    return _tokenizer().tokenize(text)


def basic_stats(dialogues: list[Dialogue]) -> dict[str, Any]:
    """Table 3 (sizes), Table 1 (dialogues per scenario) and Table 2 (strategy counts over assistant turns)."""
    utterances = sum(len(d.turns) for d in dialogues)
    tokens = sum(len(word_tokens(t.text)) for d in dialogues for t in d.turns)
    scenarios = Counter(d.scene for d in dialogues)
    strategies: Counter = Counter()
    unlabelled = 0
    for d in dialogues:
        for t in d.assistant_turns():
            if t.strategy is None:
                unlabelled += 1
            else:
                strategies[t.strategy] += 1
    return {
        "dialogues": len(dialogues),
        "utterances": utterances,
        "avg_utterances_per_dialogue": round(utterances / len(dialogues), 2) if dialogues else 0.0,
        "avg_utterance_length": round(tokens / utterances, 2) if utterances else 0.0,
        "num_strategies": len(strategies),
        "num_scenarios": len(scenarios),
        "scenarios": dict(scenarios.most_common()),
        "strategies": dict(strategies.most_common()),
        "unlabelled_assistant_turns": unlabelled,
    }
