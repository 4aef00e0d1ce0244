"""Section 4 of the paper for any corpus: Tables 1, 2, 3 and 5, Figure 2's phases, and what the paper left out.

Definitions (each tested on a hand-built fixture):
- Table 1: dialogues per scene, with proportions.
- Table 2: strategy counts over assistant turns; unlabelled turns and labels outside the dialogue's label set are
  counted apart (`unlabelled`, `unknown_labels`) and not in the table.
- Table 3: dialogues; utterances; utterances per dialogue; mean utterance length in NLTK word tokens
  (`NLTKWordTokenizer`, no downloaded data); number of distinct known strategies used; number of scenes.
- Figure 2: an utterance at 1-based position k of a dialogue of N utterances lies in phase ceil(4k/N) (1-4);
  assistant utterances with a strategy are counted per phase.
- Table 5: each dialogue's sequence of assistant strategies (unlabelled turns skipped), adjacent identical
  strategies merged; a path of h hops is h consecutive strategies of that merged sequence (every window,
  overlapping); its share is in per mille of all windows of that length in the corpus.
- Transition matrix: counts of (strategy, next assistant strategy) over the unmerged sequences.
- Beyond the paper: Shannon entropy (bits) of each dialogue's strategy distribution (mean over dialogues with a
  labelled turn); per-scene strategy profile (proportions); corpus Distinct-1/2/3 over all utterances (distinct
  n-grams / all n-grams, lower-cased NLTK tokens).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from extes.corpus.labels import normalizer
from extes.corpus.stats import word_tokens
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue

HOPS = (3, 4, 5)


def phase(k: int, n: int) -> int:
    """Phase (1-4) of the 1-based position k in a dialogue of n utterances: ceil(4k/n)."""
    return math.ceil(4 * k / n)


def strategy_sequence(d: Dialogue) -> list[str]:
    return [t.strategy for t in d.assistant_turns() if t.strategy]


def merged(seq: list[str]) -> list[str]:
    out: list[str] = []
    for s in seq:
        if not out or out[-1] != s:
            out.append(s)
    return out


def analyse(dialogues: list[Dialogue], *, top: int = 10, name: str = "") -> dict[str, Any]:
    """Every statistic of the module docstring for one corpus, as a JSON-able dict."""
    if not dialogues:
        raise InputError(f"{name or 'corpus'}: no dialogues to analyse")
    known = {ls: set(normalizer(ls).canonical) for ls in ("extes", "esconv")}
    scenes: Counter = Counter()
    strategies: Counter = Counter()
    unknown: Counter = Counter()
    phases: dict[str, Counter] = {str(p): Counter() for p in range(1, 5)}
    windows: dict[int, Counter] = {h: Counter() for h in HOPS}
    matrix: Counter = Counter()
    profile: dict[str, Counter] = defaultdict(Counter)
    unlabelled = utterances = tokens = 0
    entropies = []
    ngrams = {n: [0, set()] for n in (1, 2, 3)}
    for d in dialogues:
        scenes[d.scene] += 1
        n = len(d.turns)
        utterances += n
        for k, t in enumerate(d.turns, 1):
            toks = [w.lower() for w in word_tokens(t.text)]
            tokens += len(toks)
            for m in (1, 2, 3):
                grams = [tuple(toks[i : i + m]) for i in range(len(toks) - m + 1)]
                ngrams[m][0] += len(grams)
                ngrams[m][1].update(grams)
            if t.role != "assistant":
                continue
            if t.strategy is None:
                unlabelled += 1
            elif t.strategy not in known[d.meta.label_set]:
                unknown[t.strategy] += 1
            else:
                strategies[t.strategy] += 1
                phases[str(phase(k, n))][t.strategy] += 1
                profile[d.scene][t.strategy] += 1
        seq = [s for s in strategy_sequence(d) if s in known[d.meta.label_set]]
        matrix.update(zip(seq, seq[1:], strict=False))
        counts = Counter(seq)
        if counts:
            total = sum(counts.values())
            entropies.append(-sum(c / total * math.log2(c / total) for c in counts.values()))
        m = merged(seq)
        for h in HOPS:
            windows[h].update(tuple(m[i : i + h]) for i in range(len(m) - h + 1))
    if not strategies:
        raise InputError(f"{name or 'corpus'}: no labelled assistant turn; strategy statistics need labels "
                         "(label the corpus, e.g. with a strategy classifier, or check --from)")
    n_dialogues = len(dialogues)
    labelled_total = sum(strategies.values())
    return {
        "name": name,
        "dialogues": n_dialogues,
        "utterances": utterances,
        "avg_utterances_per_dialogue": round(utterances / n_dialogues, 2),
        "avg_utterance_length": round(tokens / utterances, 2),
        "num_strategies": len(strategies),
        "num_scenarios": len(scenes),
        "scenarios": dict(scenes.most_common()),
        "scenario_proportions": {s: round(c / n_dialogues, 4) for s, c in scenes.most_common()},
        "strategies": dict(strategies.most_common()),
        "strategy_proportions": {s: round(c / labelled_total, 4) for s, c in strategies.most_common()},
        "unlabelled_assistant_turns": unlabelled,
        "unknown_labels": dict(unknown.most_common()),
        "phases": {p: dict(c.most_common()) for p, c in phases.items()},
        "transitions": {
            str(h): [[list(path), round(1000 * c / total_w, 2)] for path, c in windows[h].most_common(top)]
            for h in HOPS
            for total_w in [sum(windows[h].values()) or 1]
        },
        "transition_matrix": {f"{a} -> {b}": c for (a, b), c in matrix.most_common()},
        "mean_strategy_entropy_bits": round(sum(entropies) / len(entropies), 3) if entropies else 0.0,
        "scenario_profiles": {s: {k: round(v / sum(c.values()), 3) for k, v in c.most_common()}
                              for s, c in sorted(profile.items())},
        "distinct": {f"dist{m}": round(len(ngrams[m][1]) / ngrams[m][0], 4) if ngrams[m][0] else 0.0
                     for m in (1, 2, 3)},
    }
