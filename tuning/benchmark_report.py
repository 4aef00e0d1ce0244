"""The quotable ESConv benchmark report: report.md (tables, protocol, embedded confusion PNG), report.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from extes.corpus.atomic import atomic_path, write_text_atomic
from extes.tuning.strategy_metrics import confusion_png

TEXT_COLUMNS = [("PPL", "ppl"), ("METEOR", "meteor"), ("B-2", "bleu2"), ("B-4", "bleu4"), ("R-L", "rouge_l"),
                ("Extrema", "extrema"), ("D-1", "dist1"), ("D-2", "dist2"), ("D-3", "dist3"),
                ("D-1/resp", "dist1_response"), ("D-2/resp", "dist2_response"), ("D-3/resp", "dist3_response")]
STRATEGY_COLUMNS = [("Acc", "accuracy"), ("Q (macro-F1)", "macro_f1"), ("W-F1", "weighted_f1"), ("B", "bias")]


def cell(value: float | None, ci: list[float] | None = None, digits: int = 2) -> str:
    """A number with its 95% interval, as printed in the tables."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown (the confusion matrix embedded as confusion.png)."""
    ci, t, s = result["ci95"], result["table6"], result["strategy"]
    lines = [
        "# ESConv benchmark", "",
        f"Test file `{result['test']}`, sha256 `{result['test_sha256']}`; {result['n']} samples from "
        f"{result['dialogues']} dialogues (ids in report.json); predictor `{result['predictor']}`; model "
        f"`{result.get('manifest', {}).get('model', '?')}`. Brackets: 95% bootstrap intervals over dialogues "
        f"({result['bootstrap']['reps']} resamples, seed {result['bootstrap']['seed']}); none for corpus-level "
        "Distinct, which resampling biases.", "",
        "## Replies (Table 6 columns, x100; PPL lower is better)", "",
        "| " + " | ".join(c for c, _ in TEXT_COLUMNS) + " |", "|" + "---|" * len(TEXT_COLUMNS),
        "| " + " | ".join(cell(t.get(k), ci.get(k)) for _, k in TEXT_COLUMNS) + " |", "",
        "## Strategies (ESConv's 8 labels)", "",
        "| | " + " | ".join(c for c, _ in STRATEGY_COLUMNS) + " |", "|---|" + "---|" * len(STRATEGY_COLUMNS),
        "| ours | " + " | ".join(cell(s[k], ci.get(k), 3 if k == "bias" else 2) for _, k in STRATEGY_COLUMNS) + " |",
    ]
    for a in result["published"]["anchors"]:
        lines.append(f"| {a['name']} (published) | - | {a['macro_f1']:.2f} | {a['weighted_f1']:.2f} | "
                     f"{a['bias']:.2f} |")
    lines += ["", f"Published rows: {result['published']['source']} (their protocol, not re-run here). "
              f"Predictions that were missing or unreadable (counted as Others): {result['unparsed']}.", "",
              "| strategy | support | predicted | F1 | preference |", "|---|---|---|---|---|"]
    for lab, v in s["per_strategy"].items():
        lines.append(f"| {lab} | {v['support']} | {v['predicted']} | {cell(v['f1'])} | {v['preference']:.3f} |")
    lines += ["", "![confusion matrix](confusion.png)", "", "## Per phase (the paper's Figure 2 phases)", "",
              "| phase | n | Acc | Q | W-F1 | B |", "|---|---|---|---|---|---|"]
    for ph, v in result["phases"].items():
        if v is None:
            lines.append(f"| {ph} | 0 | - | - | - | - |")
        else:
            lines.append(f"| {ph} | {v['n']} | {v['accuracy']:.2f} | {v['macro_f1']:.2f} | {v['weighted_f1']:.2f} | "
                         f"{v['bias']:.3f} |")
    lines += ["", "## Metric variants", ""] + [f"- **{k}**: {v}" for k, v in result["metric_variants"].items()]
    return "\n".join(lines) + "\n"


def write_report(out: Path, result: dict[str, Any]) -> None:
    """report.json, confusion.png, then report.md (each atomically)."""
    write_text_atomic(out / "report.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    with atomic_path(out / "confusion.png") as tmp:
        confusion_png(result["strategy"], tmp, title=f"ESConv strategies, n={result['n']} (rows: gold)")
    write_text_atomic(out / "report.md", markdown(result))
