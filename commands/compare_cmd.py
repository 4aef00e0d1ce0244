"""`extes compare-optimizers`: optimizers x seeds on the same data and budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from extes.commands.common import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    api_base_option,
    emit_json,
    json_option,
    progress_bar,
)
from extes.corpus.atomic import claim_output_dir, write_text_atomic
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.provenance import git_hash, recorded_argv, versions
from extes.corpus.seeds import read_seed_folder
from extes.corpus.split import split_dialogues
from extes.errors import InputError
from extes.programs.lm import DEFAULT_MODEL, load_lm


@click.command("compare-optimizers")
@click.argument("program", type=click.Choice(["classifier", "supporter"]))
@click.option("--optimizers", default="labeled,bootstrap,random-search", show_default=True,
              help="Comma-separated: labeled, bootstrap, random-search, knn, mipro, copro, simba, gepa.")
@click.option("--seeds", type=POSITIVE_INT, default=2, show_default=True, help="Seeds per optimizer.")
@click.option("--trainset", type=click.Path(path_type=Path), help="Default: the seed set's train split.")
@click.option("--valset", type=click.Path(path_type=Path), help="Default: the seed set's valid split.")
@click.option("--testset", type=click.Path(path_type=Path), help="Default: the seed set's test split.")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True)
@api_base_option
@click.option("--limit", type=POSITIVE_INT, default=8, show_default=True, help="Training examples per run.")
@click.option("--val-limit", type=POSITIVE_INT, default=8, show_default=True,
              help="Valid and test examples scored per run.")
@click.option("--k", type=NON_NEGATIVE_INT, default=3, show_default=True, help="Demos per predictor.")
@click.option("--max-cost", type=NON_NEGATIVE, help="Stop cleanly once this many dollars are spent.")
@click.option("--no-cache", is_flag=True, help="Turn DSPy's LM cache off.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for rows, report, plot, programs.")
@json_option
def compare_optimizers(program, optimizers, seeds, trainset, valset, testset, model, api_base, limit, val_limit, k,
                       max_cost, no_cache, out, as_json) -> None:
    """Run every optimizer with every seed; write report.md (mean ± 95% CI, LM calls, tokens, $, wall time, and how
    each compares with the uncompiled program on test), cost_vs_quality.png, results.json and programs/. Rerun the
    same command to resume.

    \b
    Examples:
      extes compare-optimizers classifier --optimizers labeled,bootstrap,random-search --seeds 2 --out runs/cmp
      extes compare-optimizers supporter -m openai/gpt-4o-mini --optimizers labeled,knn --max-cost 2 --out runs/c2
    """
    import dspy

    from extes.tuning.compare import compare  # lazy: tuning.compare imports dspy
    from extes.tuning.compile import check_optimizer

    names = [o.strip() for o in optimizers.split(",") if o.strip()]
    for n in names:
        check_optimizer(n)
    if not names:
        raise InputError("--optimizers: name at least one")
    opts = ReadOptions(unknown_labels="keep")
    parts = split_dialogues(read_seed_folder(), seed=0) if not (trainset and valset and testset) else None
    train = read_corpus(trainset, None, opts).dialogues if trainset else parts["train"]
    valid = read_corpus(valset, None, opts).dialogues if valset else parts["valid"]
    test = read_corpus(testset, None, opts).dialogues if testset else parts["test"]
    if no_cache:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = load_lm(model, api_base=api_base, cache=False if no_cache else None)

    # One line per finished run on stderr (a long run on a local model takes minutes per run, logged or not), and
    # on a terminal a bar over the examples scored (compare() says how many it will score).
    bar = None

    def start(total: int) -> None:
        nonlocal bar
        bar = progress_bar(total, desc="scoring", unit="ex")

    def tick() -> None:
        if bar is not None:
            bar.update()

    def progress(row):
        line = (f"{row['optimizer']} seed {row['seed']}: valid {row['valid']:.1f} test {row['test']:.1f} "
                f"({row['lm_calls']} calls, {row['wall_s']} s)")
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    claim_output_dir(out, "compare-optimizers")
    manifest = {"program": program, "optimizers": names, "seeds": seeds, "model": model, "limit": limit,
                "val_limit": val_limit, "k": k, "max_cost": max_cost, "no_cache": no_cache,
                "trainset": str(trainset or "seed set, split seed 0"),
                "valset": str(valset or "seed set, split seed 0"),
                "testset": str(testset or "seed set, split seed 0"), "git": git_hash(), "versions": versions(),
                "command": "extes compare-optimizers " + " ".join(recorded_argv(sys.argv[2:]))}
    write_text_atomic(Path(out) / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    summary = compare(program, names, seeds, train, valid, test, lm, out, model=model, limit=limit,
                      val_limit=val_limit, k=k, max_cost=max_cost, progress=progress, tick=tick, start=start)
    if bar is not None:
        bar.close()
    if as_json:
        emit_json({"rows": summary["rows"], "table": summary["table"],
                   "against_uncompiled": summary["against_uncompiled"], "stopped": summary["stopped"]})
    else:
        click.echo((Path(out) / "report.md").read_text())
