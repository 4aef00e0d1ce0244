"""The analytics report a person reads: Markdown tables side by side, PNG figures, CSV and JSON next to them."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any

from extes.corpus.assets import load_taxonomy
from extes.corpus.atomic import atomic_path, claim_output_dir, write_text_atomic
from extes.signatures.taxonomy import slugify


@functools.cache
def _abbreviations() -> dict[str, str]:
    # Read on first use, not at import: `extes --help` imports this module and need not parse the taxonomy.
    return {s.name: s.abbreviation for s in load_taxonomy().strategies}


def _abbrev(name: str) -> str:
    """ExTES abbreviation of a strategy (other label sets, e.g. ESConv's, keep their names)."""
    return _abbreviations().get(name, name)


def _abbrevs(names: list[str]) -> list[str]:
    return [_abbrev(n) for n in names] if all(n in _abbreviations() for n in names) else names


def phase_png(stats: dict[str, Any], path: Path) -> None:
    """Figure 2: the share of each strategy in each of the four conversation phases (100% stacked bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(stats["strategies"])
    colors = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    bottoms = [0.0] * 4
    for i, s in enumerate(names):
        shares = []
        for p in "1234":
            total = sum(stats["phases"][p].values()) or 1
            shares.append(100 * stats["phases"][p].get(s, 0) / total)
        ax.bar(["Phase 1", "Phase 2", "Phase 3", "Phase 4"], shares, bottom=bottoms, color=colors[i % 20],
               label=f"{_abbrev(s)}  {s}" if _abbrev(s) != s else s, edgecolor="white", linewidth=0.5,
               hatch="//" if i >= 20 else None)
        bottoms = [b + v for b, v in zip(bottoms, shares, strict=True)]
    ax.set_ylabel("share of labelled assistant turns (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Strategies over conversation phases: {stats['name']}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    _save(fig, path)


def transition_png(stats: dict[str, Any], path: Path) -> None:
    """Heat map of P(next strategy | strategy) over consecutive assistant turns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(stats["strategies"])
    idx = {s: i for i, s in enumerate(names)}
    m = np.zeros((len(names), len(names)))
    for key, c in stats["transition_matrix"].items():
        a, b = key.split(" -> ")
        if a in idx and b in idx:
            m[idx[a], idx[b]] = c
    rows = m.sum(axis=1, keepdims=True)
    p = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    im = ax.imshow(p, cmap="viridis", vmin=0, vmax=max(p.max(), 1e-9))
    labels = _abbrevs(names)
    ax.set_xticks(range(len(names)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), labels, fontsize=8)
    ax.set_xlabel("next strategy")
    ax.set_ylabel("strategy")
    ax.set_title(f"Strategy transitions: {stats['name']}")
    fig.colorbar(im, ax=ax, label="P(next | strategy)")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def phases_csv(stats: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["strategy", "phase1", "phase2", "phase3", "phase4"])
        for s in stats["strategies"]:
            w.writerow([s, *(stats["phases"][p].get(s, 0) for p in "1234")])


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(all_stats: list[dict[str, Any]], figures: dict[str, dict[str, str]]) -> str:
    """The report: tables with one column per corpus, figures embedded, one paragraph per table."""
    names = [s["name"] for s in all_stats]
    head = "| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    out = ["# Corpus statistics", "", "Definitions: see `corpus/analytics.py` (they follow the paper's section 4).", ""]
    rows = [("Dialogues", "dialogues"), ("Utterances", "utterances"),
            ("Avg. utterances per dialogue", "avg_utterances_per_dialogue"),
            ("Avg. utterance length (NLTK tokens)", "avg_utterance_length"), ("Strategies used", "num_strategies"),
            ("Scenarios", "num_scenarios"), ("Unlabelled assistant turns", "unlabelled_assistant_turns"),
            ("Mean strategy entropy (bits)", "mean_strategy_entropy_bits")]
    out += ["## Table 3: sizes", "", head]
    out += ["| " + label + " | " + " | ".join(str(s[key]) for s in all_stats) + " |" for label, key in rows]
    out += ["| Distinct-1/2/3 | " + " | ".join(
        "/".join(f"{s['distinct'][f'dist{m}']:.3f}" for m in (1, 2, 3)) for s in all_stats) + " |", ""]
    out.append(" ".join(
        f"{s['name']} has {s['dialogues']} dialogues of {s['avg_utterances_per_dialogue']} utterances on average, "
        f"each {s['avg_utterance_length']} tokens long." for s in all_stats)
        + " (The paper reports 18.2 and 26.0 for ExTES, 29.8 and 17.8 for ESConv.)")
    for s in all_stats:
        out += ["", f"## {s['name']}", "", "### Table 1: dialogues per scenario", "",
                "| scenario | dialogues | share |", "|---|---|---|"]
        out += [f"| {k} | {v} | {_pct(s['scenario_proportions'][k])} |" for k, v in s["scenarios"].items()]
        first = next(iter(s["scenarios"]))
        share = _pct(s["scenario_proportions"][first])
        out += ["", f"{s['num_scenarios']} scenarios; the largest is {first} ({share})."]
        out += ["", "### Table 2: strategies over assistant turns", "", "| strategy | turns | share |",
                "|---|---|---|"]
        out += [f"| {k} ({_abbrev(k)}) | {v} | {_pct(s['strategy_proportions'][k])} |"
                for k, v in s["strategies"].items()]
        top3 = list(s["strategies"])[:3]
        rare = list(s["strategies"])[-1]
        problems = (f" {s['unlabelled_assistant_turns']} assistant turns carry no label"
                    + (f", and labels outside the label set occur: {s['unknown_labels']}"
                       if s["unknown_labels"] else "")
                    + ".")
        out += ["", f"The three most used strategies are {', '.join(top3)}; the rarest is {rare}.{problems}"]
        out += ["", "### Figure 2: strategies over conversation phases", "",
                f"![phases]({figures[s['name']]['phases']})", "",
                "Counts per phase are in the CSV next to this report. " + _phase_sentence(s)]
        out += ["", "### Table 5: most frequent strategy paths (adjacent repeats merged)", "",
                "| hops | path | ‰ |", "|---|---|---|"]
        for h, paths in s["transitions"].items():
            out += [f"| {h} | {' → '.join(_abbrev(x) for x in path)} | {pm} |" for path, pm in paths[:5]]
        out += ["", f"![transitions]({figures[s['name']]['transitions']})", "",
                "The heat map shows P(next strategy | strategy) over consecutive assistant turns."]
    return "\n".join(out) + "\n"


def _phase_sentence(s: dict[str, Any]) -> str:
    lead = []
    for p in "1234":
        c = s["phases"][p]
        if c:
            top = max(c, key=c.get)
            lead.append(f"phase {p}: {top} ({_pct(c[top] / sum(c.values()))})")
    return "Most frequent by phase: " + "; ".join(lead) + "."


def write_report(all_stats: list[dict[str, Any]], out: Path) -> dict[str, str]:
    """Write report.md, stats.json, and per corpus a phases PNG, a transitions PNG and a phases CSV."""
    out = claim_output_dir(out, "stats")
    figures = {}
    for s in all_stats:
        slug = slugify(s["name"]) or "corpus"
        figures[s["name"]] = {"phases": f"{slug}_phases.png", "transitions": f"{slug}_transitions.png"}
        phase_png(s, out / figures[s["name"]]["phases"])
        transition_png(s, out / figures[s["name"]]["transitions"])
        phases_csv(s, out / f"{slug}_phases.csv")
    write_text_atomic(out / "stats.json", json.dumps(all_stats, indent=1, ensure_ascii=False) + "\n")
    write_text_atomic(out / "report.md", markdown(all_stats, figures))
    return {"report": str(out / "report.md"), "json": str(out / "stats.json")}
