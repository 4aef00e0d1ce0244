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
_PROGRESS_CHUNK = 5000  # utterances per progress step (~0.5 s of tokenizing on one core)


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


def analyse(dialogues: list[Dialogue], *, top: int = 10, name: str = "", progress=None) -> dict[str, Any]:
    """Every statistic of the module docstring for one corpus, as a JSON-able dict.

    `progress`, if given, is called with a number of utterances each time that many more have been tokenized
    (tokenization is most of the time); the total is the corpus's utterance count.
    """
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
    unlabelled = utterances = 0
    entropies = []
    tokens, ngrams = token_stats([t.text for d in dialogues for t in d.turns], progress=progress)
    for d in dialogues:
        scenes[d.scene] += 1
        n = len(d.turns)
        utterances += n
        for k, t in enumerate(d.turns, 1):
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
        "distinct": {f"dist{m}": round(ngrams[m][1] / ngrams[m][0], 4) if ngrams[m][0] else 0.0
                     for m in (1, 2, 3)},
    }


def _chunk_stats(texts: list[str]):
    """Tokens, n-gram totals and distinct n-gram hashes (n = 1..3, lower-cased) of a chunk of utterances.

    Token hashes are combined into n-gram hashes with numpy; windows that would cross from one utterance into the
    next are masked out by comparing utterance ids.
    """
    import numpy as np

    hashes: list[int] = []
    owner: list[int] = []
    for k, text in enumerate(texts):
        toks = word_tokens(text)
        hashes.extend(hash(w.lower()) for w in toks)
        owner.extend([k] * len(toks))
    h = np.array(hashes, dtype=np.int64).view(np.uint64)
    u = np.array(owner, dtype=np.int64)
    k1, k2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
    grams = [h]
    if len(h) > 1:
        grams.append((h[:-1] * k1 + h[1:])[u[:-1] == u[1:]])
    else:
        grams.append(h[:0])
    if len(h) > 2:
        grams.append((h[:-2] * k2 + h[1:-1] * k1 + h[2:])[u[:-2] == u[2:]])
    else:
        grams.append(h[:0])
    return len(h), [len(g) for g in grams], [np.unique(g) for g in grams]


def token_stats(texts: list[str], chunk: int = 20000, progress=None) -> tuple[int, dict[int, tuple[int, int]]]:
    """(total tokens, {n: (all n-grams, distinct n-grams)}) over `texts`, on every core for large corpora.

    Tokenization is most of the cost of `extes stats`; chunks go to forked worker processes, which share the
    parent's string-hash seed, so n-gram hashes agree across workers (64-bit hashes; a collision would merge two
    n-grams and lower Distinct by about 1e-12 per pair). `progress(n)` is called as each chunk of n texts is done
    (chunks are then smaller, so a bar moves; the result is the same).
    """
    import contextlib
    import multiprocessing as mp
    import os

    import numpy as np

    if progress:
        chunk = min(chunk, _PROGRESS_CHUNK)
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)] or [[]]
    workers = min(len(chunks), os.cpu_count() or 1)
    parts = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and "fork" in mp.get_all_start_methods():
            results = stack.enter_context(mp.get_context("fork").Pool(workers)).imap(_chunk_stats, chunks)
        else:
            results = map(_chunk_stats, chunks)
        for c, part in zip(chunks, results, strict=True):
            parts.append(part)
            if progress and c:
                progress(len(c))
    tokens = sum(p[0] for p in parts)
    out = {}
    for m in (1, 2, 3):
        total = sum(p[1][m - 1] for p in parts)
        distinct = len(np.unique(np.concatenate([p[2][m - 1] for p in parts])))
        out[m] = (total, distinct)
    return tokens, out
