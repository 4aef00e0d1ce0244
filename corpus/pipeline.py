"""Entry functions behind `extes data`: read, check, write; each returns a summary dict for the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from extes.corpus.atomic import check_output_dir, claim_output_dir, write_errors
from extes.corpus.formats import ReadOptions, ReadResult, read_corpus, write_corpus
from extes.corpus.formats.hf import dataset_card, write_hf
from extes.corpus.formats.jsonl import dialogue_line
from extes.corpus.runstore import RunStore
from extes.corpus.split import SPLITS, parse_ratios, split_dialogues
from extes.errors import InputError


def _read_nonempty(src: Path, fmt_in: str | None, opts: ReadOptions) -> ReadResult:
    result = read_corpus(src, fmt_in, opts)
    if not result.dialogues:
        why = f" ({len(result.skipped)} records skipped)" if result.skipped else ""
        raise InputError(f"{src}: no dialogue could be read{why}; check the file and --from")
    return result


def convert_corpus(src: Path, dst: Path, *, fmt_in: str | None, fmt_out: str, opts: ReadOptions) -> dict[str, Any]:
    """Read SRC, write DST in `fmt_out`; report written, skipped and flagged."""
    if Path(src).resolve() == Path(dst).resolve():
        raise InputError(f"{dst}: output is the input; write to another path")
    if fmt_out == "hf":
        check_output_dir(dst, "hf-dataset", option="DST")  # before reading: a refused folder costs nothing
    result = _read_nonempty(src, fmt_in, opts)
    if fmt_out == "hf":
        write_hf(result.dialogues, dst, card=dataset_card(result.dialogues, run_summary(src)))
    else:
        write_corpus(result.dialogues, dst, fmt_out)
    return {
        "written": len(result.dialogues),
        "out": str(dst),
        "format": fmt_out,
        "skipped": len(result.skipped),
        "skipped_reasons": result.skipped,
        "flagged_total": sum(result.flagged.values()),
        "flagged": dict(result.flagged.most_common()),
    }


def run_summary(src: Path) -> dict | None:
    """Cost and yield of a synthesis run folder (None for other inputs)."""

    if not (Path(src).is_dir() and (Path(src) / "manifest.json").exists()):
        return None
    store = RunStore(src)
    tot = store.totals()
    counts = {n: store.count(n) for n in ("accepted", "rejected", "queued", "failed")}
    tried = sum(counts.values())
    manifest = json.loads((Path(src) / "manifest.json").read_text())
    return {**counts, "model": manifest["config"]["model"], "mode": manifest["config"]["mode"],
            "yield": round(counts["accepted"] / tried, 3) if tried else 0, "cost_usd": round(tot["cost_usd"], 4),
            "prompt_tokens": tot["prompt_tokens"], "completion_tokens": tot["completion_tokens"]}


def split_corpus(
    src: Path, outdir: Path, *, fmt_in: str | None, seed: int, ratios: str, opts: ReadOptions
) -> dict[str, Any]:
    """Split SRC by dialogue into OUTDIR/{train,valid,test}.jsonl; the three files appear together or not at all."""
    parts = split_dialogues(_read_nonempty(src, fmt_in, opts).dialogues, seed=seed, ratios=parse_ratios(ratios))
    outdir = claim_output_dir(outdir, "split", option="OUTDIR")
    tmps: dict[str, str] = {}
    try:  # all three are written aside first, then moved into place together
        with write_errors(outdir):
            for name in SPLITS:
                fd, tmps[name] = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=outdir)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    for d in parts[name]:
                        fh.write(dialogue_line(d) + "\n")
                os.chmod(tmps[name], 0o644)
            for name in SPLITS:
                os.replace(tmps.pop(name), outdir / f"{name}.jsonl")
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return {
        "dialogues": sum(len(v) for v in parts.values()),
        "seed": seed,
        "counts": {k: len(v) for k, v in parts.items()},
        "files": {k: str(outdir / f"{k}.jsonl") for k in SPLITS},
    }
