"""The recipe's report: one Markdown file (RUN/report.md, and RUN/report.json) gathering every stage's result.

Sections: the hours each stage took; the teacher's synthesis yield and throughput with the reasons dialogues were
rejected; the compiled programs' valid scores before and after; the distillation (loss before and after); the
ESConv benchmark of student, distilled student and teacher (Table 6 columns and the strategy metrics with 95%
intervals, the confusion matrices embedded); the paired tests; the arena's Bradley-Terry ratings and Table 9. Every
figure is read from the stage's own output, never recomputed here.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from extes.corpus.atomic import write_text_atomic
from extes.corpus.runstore import FILES, usage_of

BENCHES = (("student", "bench-student"), ("distilled", "bench-distilled"), ("teacher", "bench-teacher"))
TABLE6 = ("meteor", "rouge_l", "bleu2", "bleu4", "extrema", "dist1_response", "dist2_response")
STRATEGY = ("accuracy", "macro_f1", "weighted_f1", "bias")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of one JSONL file of a synthesis run, read only (a run may be writing it: a partial last line is
    the record being written and is left out, never cut off as RunStore does when it opens the run to continue)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return [json.loads(ln) for ln in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines() if ln.strip()]


def _store(synth: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: _records(synth / f"{name}.jsonl") for name in FILES} if synth.is_dir() else {}


def _rejections(synth: Path) -> dict[str, int]:
    """Reason codes of the rejected and failed synthesis tasks, from the run's own files (corpus/runstore.py)."""
    counts: Counter[str] = Counter()
    records = _store(synth)
    for name in ("rejected", "failed"):
        for rec in records.get(name, []):
            for r in rec.get("reasons") or ["unknown"]:
                counts[str(r).split(":")[0]] += 1
    return dict(counts.most_common())


def synthesis_so_far(synth: Path) -> dict[str, Any]:
    """The figures of synthesize's summary for a run that has not finished, counted from its files."""
    records = _store(synth)
    count = {name: len(records.get(name, [])) for name in FILES}
    tried = sum(count.values())
    tokens = {k: sum(usage_of(r).get(k, 0) for recs in records.values() for r in recs)
              for k in ("prompt_tokens", "completion_tokens", "cost_usd")}
    return {**count, "tasks": tried, "yield": round(count["accepted"] / tried, 3) if tried else 0.0, **tokens,
            "cost_usd": round(tokens["cost_usd"], 6), "unfinished": True}


def _cell(value: Any, ci: Any = None) -> str:
    if value is None:
        return "-"
    s = f"{value:.2f}" if isinstance(value, float) else str(value)
    if ci and len(ci) == 2 and None not in ci:
        s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return s


def _named(paired: list[dict], out: Path) -> list[dict]:
    """The paired tests with the run folders' paths replaced by the names student / distilled / teacher."""
    names = {str(out / folder): name for name, folder in BENCHES}

    def short(text: str) -> str:
        for path, name in names.items():
            text = text.replace(path, name)
        return text

    return [{**p, "a": short(p["a"]), "b": short(p["b"]),
             "metrics": {k: {**v, "verdict": short(v["verdict"])} for k, v in p["metrics"].items()}} for p in paired]


def gather(out: Path, state: dict[str, Any], pending: tuple[str, ...] = ()) -> dict[str, Any]:
    """The report's figures; `pending`: the stages not finished yet (the report is then partial)."""
    logs = out / "logs"
    synth = _json(logs / "synthesize.json") or synthesis_so_far(out / "synth")
    stage_s = {k: v.get("seconds", 0.0) for k, v in state.get("stages", {}).items()}
    synth_h = stage_s.get("synthesize", 0.0) / 3600
    benches = {}
    for name, folder in BENCHES:
        r = _json(out / folder / "report.json")
        if r:
            benches[name] = {"n": r.get("n"), "dialogues": r.get("dialogues"), "table6": r.get("table6", {}),
                             "strategy": {k: r.get("strategy", {}).get(k) for k in STRATEGY},
                             "ci95": r.get("ci95", {}), "confusion_png": f"{folder}/confusion.png"}
    arena = _json(out / "arena" / "report.json")
    return {
        "run": str(out), "config": state.get("config", {}),
        "pending": list(pending), "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "running": [k for k, v in state.get("stages", {}).items() if v.get("running")],
        "hours": {"total": round(sum(stage_s.values()) / 3600, 3),
                  **{k: round(v / 3600, 3) for k, v in stage_s.items()}},
        "llamacpp_threads": {k: v["llamacpp_threads"] for k, v in state.get("stages", {}).items()
                             if v.get("llamacpp_threads")},
        "synthesis": {**{k: synth.get(k) for k in ("accepted", "rejected", "failed", "queued", "tasks", "yield",
                                                     "prompt_tokens", "completion_tokens", "cost_usd",
                                                     "unfinished")},
                      "accepted_per_hour": round(synth.get("accepted", 0) / synth_h, 2) if synth_h else None,
                      "rejections": _rejections(out / "synth")},
        "compile": {p: {k: (_json(logs / f"compile-{p}.json") or {}).get(k)
                        for k in ("valid_before", "valid_after", "kept", "wall_s")}
                    for p in ("classifier", "supporter")},
        "distill": {k: (_json(logs / "distill.json") or {}).get(k) for k in
                    ("train_examples", "valid_loss_before", "valid_loss_after", "steps", "train_tokens")},
        "benchmark": benches,
        "paired": _named((_json(logs / "compare.json") or {}).get("paired", []), out),
        "arena": {k: arena.get(k) for k in ("supporters", "cards", "transcripts", "bradley_terry", "position_bias",
                                             "length_bias", "length_controlled", "crisis")} if arena else None,
    }


def bench_what(c: dict[str, Any]) -> str:
    k = c.get("bench_per_dialogue")
    if k:
        return f"{c.get('bench_limit')} samples, at most {k} a dialogue spread over its turns"
    return f"first {c.get('bench_limit')} samples"


def report_markdown(r: dict[str, Any]) -> str:
    c = r["config"]
    s = r["synthesis"]
    grammar = ", JSON grammar" if c.get("json_grammar") else ""
    lines = [f"# Distillation recipe: {c.get('teacher')} -> {c.get('student')}", "",
             f"{c.get('dialogues')} dialogues asked of the teacher ({c.get('mode')} mode{grammar}), ESConv"
             f" benchmark on `{c.get('test')}` ({bench_what(c)}), arena on {c.get('cards')}"
             f" cards x {c.get('turns')} turns. Total time {r['hours']['total']:.2f} h.", ""]
    pending = r.get("pending") or []
    if pending:
        lines += [f"**Partial report**, written {r.get('written')}: not finished yet: {', '.join(pending)}. A rerun of"
                  " the same command continues the run and rewrites this report after every stage; sections of"
                  " stages that have not run say so.", ""]
    running = set(r.get("running") or [])
    threads = r.get("llamacpp_threads") or {}
    lines += ["## Time per stage (hours)", "", "| stage | hours | llama.cpp threads |", "|---|---|---|"]
    lines += [f"| {k}{' (unfinished)' if k in running else ''} | {v:.3f} | "
              f"{', '.join(map(str, threads[k])) if k in threads else '-'} |" for k, v in r["hours"].items()
              if k != "total"]
    so_far = " so far (the synthesis has not finished)" if s.get("unfinished") else ""
    lines += ["", "## The teacher's synthesis", "",
              f"Accepted {s.get('accepted')} of {s.get('tasks')} attempted (yield {s.get('yield')}), rejected "
              f"{s.get('rejected')}, failed {s.get('failed')}{so_far}; {s.get('accepted_per_hour')} accepted "
              f"dialogues per hour; "
              f"{s.get('prompt_tokens')} prompt + {s.get('completion_tokens')} completion tokens.",
              f"Rejections by reason: {', '.join(f'{k} {v}' for k, v in s['rejections'].items()) or 'none'}.", "",
              "## Compiled with the teacher (valid score before -> after)", ""]
    for p, v in r["compile"].items():
        if f"compile-{p}" in pending:
            lines.append(f"- {p}: not run yet")
            continue
        b, a = v.get("valid_before") or {}, v.get("valid_after") or {}
        kept = "; worse, so the uncompiled program was kept" if v.get("kept") == "uncompiled" else ""
        lines.append(f"- {p}: {_cell(b.get('score'))} -> {_cell(a.get('score'))} ({a.get('n')} examples{kept})")
    d = r["distill"]
    lines += ["", "## Distillation into the student", "",
              "Not run yet." if "distill" in pending else
              f"{d.get('train_examples')} teacher traces, {d.get('steps')} LoRA steps, {d.get('train_tokens')} tokens; "
              f"valid loss {_cell(d.get('valid_loss_before'))} -> {_cell(d.get('valid_loss_after'))}.", "",
              "## ESConv benchmark (95% intervals, bootstrap over dialogues)", "",
              "| model | n | " + " | ".join(TABLE6) + " | " + " | ".join(STRATEGY) + " |",
              "|---|---|" + "---|" * (len(TABLE6) + len(STRATEGY))]
    for name, b in r["benchmark"].items():
        cells = [_cell(b["table6"].get(k), b["ci95"].get(k)) for k in TABLE6]
        cells += [_cell(b["strategy"].get(k), b["ci95"].get(k)) for k in STRATEGY]
        lines.append(f"| {name} | {b['n']} | " + " | ".join(cells) + " |")
    lines += [""] + [f"![{name} confusion matrix]({b['confusion_png']})" for name, b in r["benchmark"].items()]
    missing = [name for name, folder in BENCHES if name not in r["benchmark"]]
    if missing:
        lines += ["", f"Not benchmarked yet: {', '.join(missing)}."]
    lines += ["", "## Paired tests against the student", ""]
    if "compare" in pending:
        lines += ["Not run yet.", ""]
    for p in r["paired"]:
        lines.append(f"{p['b']} vs {p['a']} ({p['dialogues']} dialogues, {p['n']} samples):")
        lines += [f"- {k}: {v['verdict']}" for k, v in p["metrics"].items()]
        lines.append("")
    if r["arena"]:
        a = r["arena"]
        lc = (a.get("length_controlled") or {}).get("ratings") or {}
        lines += ["## Arena (teacher as seeker and judge): Bradley-Terry, Overall", "",
                  "| supporter | rating [95%] | length-controlled [95%] |", "|---|---|---|"]
        for name, v in (a.get("bradley_terry") or {}).get("overall", {}).items():
            c = lc.get(name) or {}
            lines.append(f"| {name} | {_cell(v.get('rating'), [v.get('low'), v.get('high')])} | "
                         f"{_cell(c.get('rating'), [c.get('low'), c.get('high')]) if c else '-'} |")
        if lc:
            g = a["length_controlled"]["length_coef"]
            lines += ["", f"Length coefficient {g['value']} [{g['low']}, {g['high']}] logits per unit of normalized "
                          "difference in mean reply words (positive: the judge prefers the longer supporter)."]
        pb = a.get("position_bias") or {}
        calibrated = (f" {pb['calibrated']} of them calibrated against the judge's prior on a content-free pair."
                      if pb.get("calibrated") else "")
        lines += ["", f"Position bias: {pb.get('disagreements')} of {pb.get('judgments')} judgments disagreed "
                      f"between orders.{calibrated} Crisis cards: {a.get('crisis')}. Full table: `arena/report.md`.",
                  ""]
    else:
        lines += ["## Arena (teacher as seeker and judge)", "", "Not run yet.", ""]
    return "\n".join(lines)


def write_report(out: Path, state: dict[str, Any], pending: tuple[str, ...] = ()) -> dict[str, Any]:
    report = gather(Path(out), state, pending)
    write_text_atomic(Path(out) / "report.json", json.dumps(report, indent=1) + "\n")
    write_text_atomic(Path(out) / "report.md", report_markdown(report))
    return report
