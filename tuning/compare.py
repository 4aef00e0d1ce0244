"""`extes compare-optimizers`: every optimizer with every seed on the same data and budget; a table with means and
95% intervals over seeds, LM calls, tokens, dollars and wall time; a cost-versus-quality plot; every compiled
program saved. Resumable (rows.jsonl); the uncompiled program is the baseline row.

Seeds vary the demos, not the examples, so the interval over seeds says nothing about how many test examples a
difference rests on (two seeds with the same test score have a zero interval). Each row therefore keeps its
per-example test values, and the verdict against the uncompiled program is a paired sign-flip randomization test
over the test examples (`tuning/paired.sign_flip_p`; each example's score averaged over the optimizer's seeds);
"better"/"worse" at p < 0.05."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.atomic import atomic_path, claim_output_dir, write_text_atomic
from extes.programs.adapter import METER, SmallChatAdapter
from extes.programs.costs import cost_usd
from extes.tuning.compile import make_program, run_optimizer, score
from extes.tuning.datasets import turn_examples
from extes.tuning.paired import sign_flip_p
from extes.tuning.program_metrics import METRICS

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def _t975(df: int) -> float:
    """The t distribution's 97.5% point, from the table at the largest tabulated df <= `df` (slightly wide between
    entries, never narrow); 1.96 past 120."""
    if df > 120:
        return 1.96
    return T975[max(k for k in T975 if k <= df)]


def _ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the t-based 95% interval (0 with a single value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return m, _t975(len(values) - 1) * sd / math.sqrt(len(values))


def against_uncompiled(rows: list[dict]) -> dict[str, dict]:
    """Per optimizer: n test examples, mean difference (x100) with its 95% interval over the test examples (t, paired
    differences) and the sign-flip p against the uncompiled row, when every row involved kept its per-example test
    values (rows from before they were kept have none)."""
    base = next((r for r in rows if r["optimizer"] == "uncompiled"), None)
    if not base or not base.get("test_values"):
        return {}
    out = {}
    for opt in dict.fromkeys(r["optimizer"] for r in rows if r["optimizer"] != "uncompiled"):
        rs = [r for r in rows if r["optimizer"] == opt]
        if not all(len(r.get("test_values") or []) == len(base["test_values"]) for r in rs):
            continue
        per_example = [sum(vals) / len(vals) for vals in zip(*(r["test_values"] for r in rs), strict=True)]
        diffs = [a - b for a, b in zip(per_example, base["test_values"], strict=True)]
        out[opt] = {"n": len(diffs), "delta": round(100 * sum(diffs) / len(diffs), 2),
                    "delta_ci95": round(100 * _ci(diffs)[1], 2), "p": sign_flip_p(diffs),
                    "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}
    return out


def compare(program: str, optimizers: list[str], seeds: int, train_dialogues, valid_dialogues, test_dialogues, lm,
            out: Path, *, model: str, limit: int, val_limit: int, k: int = 4, max_cost: float | None = None,
            progress=None, tick=None, start=None) -> dict[str, Any]:
    """Every (optimizer, seed) run not in `out/rows.jsonl` yet; `start(n)` first, with the number of examples the
    pending runs will score (valid and test), `tick()` after each of them, `progress(row)` after each run."""
    out = claim_output_dir(out, "compare-optimizers")
    (out / "programs").mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()] if rows_path.exists() else []
    done = {(r["optimizer"], r["seed"]) for r in rows}
    metric = METRICS[program]
    plan = [("uncompiled", 0)] + [(o, s) for o in optimizers for s in range(seeds)]
    pending = [p for p in plan if p not in done]
    # the same valid and test examples for every run (fixed draws), so every row scores the same test turns
    valid = turn_examples(valid_dialogues, program, limit=val_limit, seed=1000)
    test = turn_examples(test_dialogues, program, limit=val_limit, seed=2000)
    if start:
        start(len(pending) * (len(valid) + len(test)))
    stopped = None
    for opt_name, seed in pending:
        spent = sum(r["cost_usd"] for r in rows)
        if max_cost is not None and spent >= max_cost:
            stopped = f"cost cap ${max_cost} reached"
            break
        train = turn_examples(train_dialogues, program, limit=limit, balance=True, seed=seed)
        before, t0 = METER.snapshot(), time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr), dspy.context(lm=lm, adapter=SmallChatAdapter()):
            if opt_name == "uncompiled":
                compiled = make_program(program)
            else:
                compiled = run_optimizer(opt_name, program, metric, train, valid, k=k, student=lm)
            compile_meter = METER.snapshot()
            v, t = score(compiled, valid, metric, program, tick), score(compiled, test, metric, program, tick)
        after = METER.snapshot()
        if opt_name not in ("knn",):
            compiled.save(str(out / "programs" / f"{opt_name}-{seed}.json"))
        calls = after["lm_calls"] - before["lm_calls"]
        ptok = after["prompt_tokens"] - before["prompt_tokens"]
        ctok = after["completion_tokens"] - before["completion_tokens"]
        row = {"optimizer": opt_name, "seed": seed, "valid": v["score"], "test": t["score"],
               "valid_macro_f1": v.get("macro_f1"), "test_macro_f1": t.get("macro_f1"), "test_values": t["values"],
               "compile_lm_calls": compile_meter["lm_calls"] - before["lm_calls"], "lm_calls": calls,
               "prompt_tokens": ptok, "completion_tokens": ctok, "cost_usd": round(cost_usd(model, ptok, ctok), 6),
               "wall_s": round(time.perf_counter() - t0, 2)}
        rows.append(row)
        with open(rows_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if progress:
            progress(row)
    summary = summarize(rows, program)
    summary["stopped"] = stopped
    write_text_atomic(out / "results.json", json.dumps(summary, indent=1) + "\n")
    write_text_atomic(out / "report.md", report_md(summary, program, model))
    plot(summary, out / "cost_vs_quality.png", program)
    return summary


def summarize(rows: list[dict], program: str) -> dict[str, Any]:
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["optimizer"], []).append(r)
    table = []
    for opt, rs in by.items():
        vm, vh = _ci([r["valid"] for r in rs])
        tm, th = _ci([r["test"] for r in rs])
        table.append({"optimizer": opt, "seeds": len(rs), "valid_mean": round(vm, 2), "valid_ci95": round(vh, 2),
                      "test_mean": round(tm, 2), "test_ci95": round(th, 2),
                      "lm_calls": sum(r["lm_calls"] for r in rs) / len(rs),
                      "tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rs) / len(rs),
                      "cost_usd": round(sum(r["cost_usd"] for r in rs) / len(rs), 6),
                      "wall_s": round(sum(r["wall_s"] for r in rs) / len(rs), 2)})
    return {"program": program, "rows": rows, "table": table, "against_uncompiled": against_uncompiled(rows)}


def report_md(summary: dict, program: str, model: str) -> str:
    lines = [f"# Optimizers on the {program} ({model})", "",
             "Score: accuracy for the classifier, 0.5 ROUGE-L + 0.5 METEOR for the supporter (x100); mean ± 95% "
             "interval over seeds (t distribution). Costs are per run (compile + scoring valid and test).", "",
             "| optimizer | seeds | valid | test | LM calls | tokens | $ | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["table"]:
        lines.append(f"| {r['optimizer']} | {r['seeds']} | {r['valid_mean']:.1f} ± {r['valid_ci95']:.1f} | "
                     f"{r['test_mean']:.1f} ± {r['test_ci95']:.1f} | {r['lm_calls']:.0f} | {r['tokens']:.0f} | "
                     f"{r['cost_usd']:.4f} | {r['wall_s']:.1f} |")
    base = next((r for r in summary["table"] if r["optimizer"] == "uncompiled"), None)
    tests = summary.get("against_uncompiled") or {}
    if base:
        lines += ["", "Against the uncompiled program on the test split (paired sign-flip test over the test examples, "
                  "each example's score averaged over seeds; better/worse at p < 0.05):"]
        for r in summary["table"]:
            if r["optimizer"] == "uncompiled":
                continue
            d = r["test_mean"] - base["test_mean"]
            t = tests.get(r["optimizer"])
            if t:
                verdict = (("better" if t["delta"] > 0 else "worse") if t["p"] < 0.05 else "no difference shown")
                detail = (f"{t['delta']:+.1f} ± {t.get('delta_ci95', 0.0):.1f}, 95% interval over the test "
                          f"examples; {t['wins']} up, {t['losses']} down of {t['n']}, p = {t['p']:.3g}")
            else:
                verdict, detail = "not tested", f"{d:+.1f}; these rows kept no per-example values"
            lines.append(f"- {r['optimizer']}: {r['test_mean']:.1f} vs {base['test_mean']:.1f} ({detail}): {verdict}.")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path, program: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for i, r in enumerate(summary["table"]):
        m, h = r["test_mean"], r["test_ci95"]
        # scores live in [0, 100]; a t interval over two seeds can reach past both ends, so the bars are clipped
        err = [[m - max(0.0, m - h)], [min(100.0, m + h) - m]]
        ax.errorbar(r["lm_calls"], m, yerr=err, fmt="o", capsize=4, label=r["optimizer"])
        ax.annotate(r["optimizer"], (r["lm_calls"], m), textcoords="offset points", xytext=(6, 6 + 11 * (i % 3)))
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("LM calls per run (compile + evaluation)")
    ax.set_ylabel("test score (x100)")
    ax.set_title(f"Cost versus quality: {program}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
