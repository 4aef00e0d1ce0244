"""Checks of the seed set (the shape ExTES seeds must have) and of the whole asset folder."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from extes.corpus.dedup import jaccard, shingles
from extes.signatures.dialogue import Dialogue
from extes.signatures.taxonomy import Taxonomy

MIN_UTTERANCES, MAX_UTTERANCES = 12, 24
MIN_DESCRIPTION_WORDS = 8
MAX_SIMILARITY = 0.30  # Jaccard of word 3-gram shingles; seeds must not be near-copies of each other
MIN_SEEDS, MIN_PER_SCENARIO, MIN_PER_STRATEGY = 87, 2, 10


@dataclass
class Report:
    """The outcome of checking a seed set: problems (one line each) and the headline numbers."""

    problems: list[str] = field(default_factory=list)
    seeds: int = 0
    per_scenario: dict[str, int] = field(default_factory=dict)
    per_strategy: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_seed(d: Dialogue, tax: Taxonomy) -> list[str]:
    """Problems of one seed dialogue (empty when it is fine)."""
    where = f"{d.meta.origin or d.id} ({d.id})"
    out = []
    if d.scene not in tax.scenario_names:
        out.append(f"{where}: scene {d.scene!r} is not one of the 36 scenarios in assets/scenarios.yaml")
    n = len(d.turns)
    if not MIN_UTTERANCES <= n <= MAX_UTTERANCES:
        out.append(f"{where}: {n} utterances; a seed has {MIN_UTTERANCES}-{MAX_UTTERANCES}")
    for i, t in enumerate(d.turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if t.role != expected:
            out.append(f"{where}: turn {i} is {t.role}; turns alternate user/assistant starting with the user")
            break
    assistant = [(i, t) for i, t in enumerate(d.turns) if t.role == "assistant"]
    names = set(tax.strategy_names)
    for k, (i, t) in enumerate(assistant):
        if t.strategy is None:
            if k not in (0, len(assistant) - 1):
                out.append(f"{where}: assistant turn {i} has no strategy; only a greeting or goodbye may go unlabelled")
        elif t.strategy not in names:
            out.append(f"{where}: turn {i} strategy {t.strategy!r} is not a canonical name from assets/strategies.yaml")
    if len(d.description.split()) < MIN_DESCRIPTION_WORDS:
        out.append(f"{where}: description has under {MIN_DESCRIPTION_WORDS} words; say who, which relationship, what")
    return out


def check_seed_set(seeds: list[Dialogue], tax: Taxonomy) -> Report:
    """Check every seed and the set as a whole (counts, coverage, duplicates)."""
    rep = Report(seeds=len(seeds))
    ids = Counter(d.id for d in seeds)
    rep.problems += [f"seed id {i!r} is used {c} times; ids must be unique" for i, c in ids.items() if c > 1]
    for d in seeds:
        rep.problems += check_seed(d, tax)
    sh = [shingles(" ".join(t.text for t in d.turns)) for d in seeds]
    for i in range(len(seeds)):
        for j in range(i + 1, len(seeds)):
            sim = jaccard(sh[i], sh[j])
            if sim > MAX_SIMILARITY:
                rep.problems.append(
                    f"{seeds[j].id}: too similar to {seeds[i].id} "
                    f"(3-gram Jaccard {sim:.2f} > {MAX_SIMILARITY}); rewrite it"
                )
    rep.per_scenario = {name: 0 for name in tax.scenario_names}
    rep.per_strategy = {name: 0 for name in tax.strategy_names}
    for d in seeds:
        if d.scene in rep.per_scenario:
            rep.per_scenario[d.scene] += 1
        for t in d.assistant_turns():
            if t.strategy in rep.per_strategy:
                rep.per_strategy[t.strategy] += 1
    return rep


def coverage_problems(rep: Report) -> list[str]:
    """Set-level requirements: at least 87 seeds, 2 per scenario, 10 uses of each strategy."""
    out = []
    if rep.seeds < MIN_SEEDS:
        out.append(f"assets/seeds: {rep.seeds} seed dialogues; at least {MIN_SEEDS} are required")
    out += [
        f"assets/seeds: scenario {s!r} has {c} seeds; at least {MIN_PER_SCENARIO} are required"
        for s, c in rep.per_scenario.items()
        if c < MIN_PER_SCENARIO
    ]
    out += [
        f"assets/seeds: strategy {s!r} is used {c} times; at least {MIN_PER_STRATEGY} are required"
        for s, c in rep.per_strategy.items()
        if c < MIN_PER_STRATEGY
    ]
    return out
