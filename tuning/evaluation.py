"""Evaluation runs (the paper's Table 6 for any model): generate a reply for every assistant turn of a test corpus
from its history, with the gold strategy, a predicted one, or none; score against the reference.

A run folder holds `samples.jsonl` (one line per sample, appended and fsync'ed; a rerun skips finished samples),
`metrics.json` and `report.md` (the aggregate) and `manifest.json`. Per-sample ROUGE-L, METEOR, Extrema and the
reference's NLL (local models) are stored, so `compare` can bootstrap confidence intervals without re-scoring.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.atomic import claim_output_dir, write_text_atomic
from extes.corpus.labels import leading_label
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.supporter import Supporter, load_supporter
from extes.signatures.dialogue import Dialogue
from extes.signatures.support import Respond
from extes.tuning import metrics as M
from extes.tuning.perplexity import reply_nll

MODES = ("gold", "predicted", "none")


def samples_of(dialogues: list[Dialogue], limit: int | None = None) -> list[dict[str, Any]]:
    """Every assistant turn that follows a user turn: id, history, reference, gold strategy."""
    out = []
    for d in dialogues:
        for i, t in enumerate(d.turns):
            if t.role == "assistant" and i > 0 and d.turns[i - 1].role == "user":
                out.append({"id": f"{d.id}#{i}", "history": [{"role": x.role, "text": x.text} for x in d.turns[:i]],
                            "reference": t.text, "gold_strategy": t.strategy})
    if not out:
        raise InputError("the test corpus has no assistant turn after a user turn; nothing to evaluate")
    return out[:limit] if limit else out


def _fsync_append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_samples(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / "samples.jsonl"
    if not path.exists():
        return []
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    return [json.loads(x) for x in keep.decode("utf-8").splitlines() if x.strip()]


# What makes two runs comparable: resuming with any of these changed would mix two runs under one label.
RESUME_KEYS = ("model", "adapter", "adapter_sha256", "program", "program_sha256", "test", "test_sha256", "mode",
               "limit", "max_tokens")


def check_resume(out: Path, manifest: dict[str, Any]) -> None:
    """Refuse to resume a run in `out` that was started with other protocol options (as `synthesize` does)."""
    path = Path(out) / "manifest.json"
    if not path.exists():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    diff = [k for k in RESUME_KEYS if k in old and k in manifest and old[k] != manifest[k]]
    if diff:
        was = ", ".join(f"{k}={old[k]!r}" for k in diff)
        raise InputError(f"--out {out}: this run was started with other {', '.join(diff)} ({was}); rerun with the "
                         f"same options, or give a new --out for the new run")


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    write_text_atomic(out / "manifest.json", json.dumps({**manifest, "updated_at": now}, indent=1) + "\n")


def evaluate_run(lm, dialogues: list[Dialogue], out: Path, *, mode: str = "gold", limit: int | None = None,
                 workers: int = 1, program: str | None = None, manifest: dict | None = None,
                 progress=None, samples: list[dict[str, Any]] | None = None,
                 strip_label: bool = False) -> dict[str, Any]:
    """Generate and score; resumable; returns the aggregate.

    `samples` replaces the samples of `dialogues` (e.g. ESConv's released windows, tuning/benchmark.py);
    `strip_label` takes a reply's leading `[label]` (a model tuned on the `strategies` variant) as its strategy.
    """
    if mode not in MODES:
        raise InputError(f"--strategy {mode!r}: use gold, predicted or none")
    out = claim_output_dir(out, "evaluate")
    todo = samples[:limit] if samples is not None and limit else samples if samples is not None \
        else samples_of(dialogues, limit)
    supporter = load_supporter(program) if program else Supporter()
    # Only a start that got this far (model loaded, test read, program loaded) records its protocol, so a failed
    # start never locks the folder with bad values.
    manifest = {**(manifest or {}), "mode": mode, "limit": limit}
    check_resume(out, manifest)
    _write_manifest(out, manifest)
    done = {s["id"] for s in load_samples(out)}
    respond = dspy.Predict(Respond)
    local = hasattr(lm, "hf_model")

    def one(sample: dict[str, Any]) -> dict[str, Any]:
        gold = sample["gold_strategy"]
        with dspy.context(lm=lm, adapter=SmallChatAdapter()):
            if mode == "none" or (mode == "gold" and gold is None):
                reply, strategy = respond(history=sample["history"]).reply, None
            elif mode == "gold":
                reply, strategy = supporter(history=sample["history"], strategy=gold).reply, gold
            else:
                pred = supporter(history=sample["history"])
                reply, strategy = pred.reply, pred.strategy
        if strip_label:
            strategy, reply = leading_label(reply)
        hyp, ref = reply.strip() or "...", sample["reference"]
        row = {**{k: sample[k] for k in ("id", "reference", "gold_strategy")}, "hypothesis": hyp,
               "strategy": strategy, "rouge_l": M.rouge_l_pair(M.tokens(hyp), M.tokens(ref)),
               "meteor": M.meteor([hyp], [ref]) / 100}
        vh, vr = M.extrema_vector(hyp), M.extrema_vector(ref)
        import torch

        row["extrema"] = float(torch.nn.functional.cosine_similarity(vh, vr, dim=0)) if vh is not None and \
            vr is not None else 0.0
        if local:
            row["nll"], row["ref_tokens"] = reply_nll(lm, sample["history"], ref)
        return row

    pending = [s for s in todo if s["id"] not in done]

    def run_all() -> None:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            for row in ex.map(one, pending):
                _fsync_append(out / "samples.jsonl", json.dumps(row, ensure_ascii=False))
                if progress:
                    progress(1)

    # A local LLaMA-layout model decodes (and scores) on this thread while the samples run on the workers
    # (programs/lm/batching.py: Batcher.drive); other models just run the samples.
    batcher = None
    if local and pending:
        from extes.programs.lm.batching import batcher_for  # lazy: programs.lm.batching imports torch

        batcher = batcher_for(lm.hf_model, lm.tokenizer)
    if batcher is not None:
        batcher.drive(run_all)
    else:
        run_all()
    rows = [r for r in load_samples(out) if r["id"] in {s["id"] for s in todo}]
    agg = aggregate(rows)
    agg.update({"mode": mode, "model": getattr(lm, "model", str(lm))})
    write_text_atomic(out / "metrics.json", json.dumps(agg, indent=1) + "\n")
    _write_manifest(out, manifest)
    write_text_atomic(out / "report.md", report([(out.name, agg)]))
    return agg


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 6's columns over the rows: PPL (when NLLs exist), METEOR, B-2, B-4, R-L, Extrema, D-1/2/3."""
    hyps, refs = [r["hypothesis"] for r in rows], [r["reference"] for r in rows]
    out = {
        "n": len(rows),
        "meteor": 100 * sum(r["meteor"] for r in rows) / len(rows),
        "bleu2": M.bleu(hyps, refs, 2), "bleu4": M.bleu(hyps, refs, 4),
        "rouge_l": 100 * sum(r["rouge_l"] for r in rows) / len(rows),
        "extrema": 100 * sum(r["extrema"] for r in rows) / len(rows),
        "dist1": M.distinct(hyps, 1), "dist2": M.distinct(hyps, 2), "dist3": M.distinct(hyps, 3),
    }
    ntok = sum(r.get("ref_tokens", 0) for r in rows)
    out["ppl"] = math.exp(sum(r.get("nll", 0.0) for r in rows) / ntok) if ntok else None
    labelled = [r for r in rows if r.get("gold_strategy") and r.get("strategy")]
    if labelled:
        out["strategy_accuracy"] = 100 * sum(r["strategy"] == r["gold_strategy"] for r in labelled) / len(labelled)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


COLUMNS = [("PPL", "ppl"), ("METEOR", "meteor"), ("B-2", "bleu2"), ("B-4", "bleu4"), ("R-L", "rouge_l"),
           ("Extrema", "extrema"), ("D-1", "dist1"), ("D-2", "dist2"), ("D-3", "dist3")]


def bootstrap(rows: list[dict[str, Any]], reps: int = 200, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% percentile intervals, resampling samples with replacement.

    Distinct-n gets no interval: a resample repeats responses, which lowers Distinct by construction, so its
    percentile interval would not even contain the point estimate.
    """
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {k: [] for _, k in COLUMNS if not k.startswith("dist")}
    for _ in range(reps):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        agg = aggregate(sample)
        for k in draws:
            if agg.get(k) is not None:
                draws[k].append(agg[k])
    out = {}
    for k, v in draws.items():
        if v:
            v.sort()
            out[k] = (v[int(0.025 * (len(v) - 1))], v[int(0.975 * (len(v) - 1))])
    return out


def report(named: list[tuple[str, dict[str, Any]]], cis: dict[str, dict] | None = None) -> str:
    """A Table 6-style Markdown table (rows: runs), with 95% intervals when given."""
    head = "| run | n | " + " | ".join(c for c, _ in COLUMNS) + " |\n|---|---|" + "---|" * len(COLUMNS)
    lines = ["# Evaluation", "", "Scores x100 as in the paper's Table 6 (PPL: lower is better). Definitions: "
             "tuning/metrics.py." + (" Brackets: bootstrap 95% intervals over samples (none for Distinct, which "
                                      "resampling biases)." if cis else ""), "", head]
    for name, agg in named:
        cells = []
        for _, k in COLUMNS:
            v = agg.get(k)
            if v is None:
                cells.append("-")
            elif cis and name in cis and k in cis[name]:
                lo, hi = cis[name][k]
                cells.append(f"{v:.2f} [{lo:.2f}, {hi:.2f}]")
            else:
                cells.append(f"{v:.2f}")
        lines.append(f"| {name} | {agg['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
