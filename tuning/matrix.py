"""The cross-dataset matrix (the paper's Table 8): every model evaluated on every test set, one metric shown.

Each cell is an ordinary evaluation run folder (`out/cells/<model>__<test>`, tuning/evaluation.py), so a rerun
reuses finished samples and finished cells (a model is loaded only for a cell that still lacks samples). Test
sets: any corpus (`samples_of` its dialogues, ESConv labels mapped onto ExTES) or an ESConv `.tsv` (its released
samples). Intervals: 95% bootstrap over dialogues (tuning/resample.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extes.corpus.atomic import atomic_path, write_text_atomic
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.formats.esconv_tsv import read_tsv_samples
from extes.corpus.labels import esconv_to_extes
from extes.errors import InputError
from extes.tuning import resample as R
from extes.tuning.evaluation import evaluate_run, load_samples, samples_of

MATRIX_METRICS = ("meteor", "bleu2", "bleu4", "rouge_l", "extrema", "dist1_response", "dist2_response", "ppl")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-60:] or "x"


def matrix_samples(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Evaluation samples of a test set; gold ESConv labels become ExTES labels so that --strategy gold works."""
    path = Path(path)
    if path.suffix.lower() == ".tsv":
        mapping = esconv_to_extes()
        out = [{**s, "gold_strategy": mapping.get(s["gold_strategy"])} for s in read_tsv_samples(path)]
        return out[:limit] if limit else out
    return samples_of(read_corpus(path, None, ReadOptions(unknown_labels="keep", map_esconv=True)).dialogues, limit)


def run_matrix(models: list[str], tests: list[Path], out: Path, load_model: Callable[[str], Any], *,
               metric: str = "rouge_l", mode: str = "gold", limit: int | None = None, workers: int = 1,
               reps: int = 500, seed: int = 0) -> dict[str, Any]:
    """Fill every (model, test) cell (resumably), then write matrix.json, matrix.md and matrix.png."""
    if metric not in MATRIX_METRICS:
        raise InputError(f"--metric {metric!r}: use one of {', '.join(MATRIX_METRICS)}")
    if not models or not tests:
        raise InputError("give at least one model (--models A,B) and one test set (--tests X,Y)")
    out = Path(out)
    samples = {str(t): matrix_samples(t, limit) for t in tests}  # read every test first: bad input fails early
    cells: dict[str, dict[str, Any]] = {}
    for model in models:
        lm = None
        for test in tests:
            folder = out / "cells" / f"{slug(model)}__{slug(Path(test).stem)}"
            todo = samples[str(test)]
            done = {r["id"] for r in load_samples(folder)}
            reused = all(s["id"] in done for s in todo)
            if not reused:
                lm = lm or load_model(model)
                evaluate_run(lm, [], folder, mode=mode, workers=workers, samples=todo,
                             manifest={"model": model, "test": str(test), "matrix": str(out)})
            ids = {s["id"] for s in todo}
            rows = [r for r in load_samples(folder) if r["id"] in ids]
            stats = [R.row_stats(r) for r in rows]
            value = R.table6(stats)[metric]
            ci = R.dialogue_bootstrap(rows, lambda idx, st=stats: R.table6([st[i] for i in idx]), [metric],
                                      reps=reps, seed=seed).get(metric)
            cells[f"{model}|{test}"] = {"model": model, "test": str(test), "value": value,
                                        "ci95": list(ci) if ci else None, "n": len(rows), "reused": reused,
                                        "folder": str(folder)}
    result = {"metric": metric, "mode": mode, "models": models, "tests": [str(t) for t in tests], "cells": cells}
    write_text_atomic(out / "matrix.json", json.dumps(result, indent=1) + "\n")
    with atomic_path(out / "matrix.png") as tmp:
        heatmap(result, tmp)
    write_text_atomic(out / "matrix.md", markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    """Rows: models; columns: test sets; cells: the metric with its 95% interval."""
    tests = result["tests"]
    lines = [f"# Cross-dataset matrix: {result['metric']} (x100; strategy mode {result['mode']})", "",
             "| model | " + " | ".join(Path(t).name for t in tests) + " |", "|---|" + "---|" * len(tests)]
    for m in result["models"]:
        cells = []
        for t in tests:
            c = result["cells"][f"{m}|{t}"]
            v = c["value"]
            cells.append("-" if v is None else f"{v:.2f}" + (f" [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]"
                                                             if c["ci95"] else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Brackets: 95% bootstrap intervals over dialogues.", "", "![matrix](matrix.png)"]
    return "\n".join(lines) + "\n"


def heatmap(result: dict[str, Any], path) -> None:
    """The matrix as a PNG heat map (models x test sets, values in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, tests = result["models"], result["tests"]
    grid = [[result["cells"][f"{m}|{t}"]["value"] or 0.0 for t in tests] for m in models]
    fig, ax = plt.subplots(figsize=(1.8 * len(tests) + 2.5, 0.7 * len(models) + 1.8))
    ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tests)), [Path(t).name for t in tests], rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_title(f"{result['metric']} (x100)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
