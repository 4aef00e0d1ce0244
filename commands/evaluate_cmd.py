"""`extes evaluate`: Table 6 for any model on a test corpus, and comparisons of runs with confidence intervals."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from extes.commands.common import (
    POSITIVE_INT,
    adapter_option,
    api_base_option,
    emit_json,
    json_option,
    limit_option,
    model_option,
    out_option,
)
from extes.corpus.atomic import check_output_dir, write_text_atomic
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.provenance import content_sha256, git_hash, versions
from extes.errors import InputError
from extes.programs.lm import load_lm


@click.group(invoke_without_command=True)
@model_option()
@adapter_option
@api_base_option
@click.option("--program", type=click.Path(path_type=Path, exists=True), help="A compiled Supporter (JSON).")
@click.option("--test", "test_corpus", type=click.Path(path_type=Path), help="The test corpus (any format).")
@click.option("--strategy", "mode", type=click.Choice(["gold", "predicted", "none"]), default="gold",
              show_default=True, help="Reply with the gold strategy, a predicted one, or none.")
@limit_option()
@click.option("--workers", type=POSITIVE_INT, default=1, show_default=True)
@click.option("--max-tokens", type=POSITIVE_INT, default=100, show_default=True)
@out_option(help="Run folder (created, or resumed).")
@json_option
@click.pass_context
def evaluate(ctx, model, adapter, api_base, program, test_corpus, mode, limit, workers, max_tokens, out,
             as_json) -> None:
    """Generate a reply for every assistant turn of --test from its history and score it against the reference
    (PPL, METEOR, BLEU-2/4, ROUGE-L, Extrema, Distinct-1/2/3). Per-sample outputs, the aggregate (Markdown + JSON)
    and a manifest go to --out; rerun to resume.

    \b
    Examples:
      extes evaluate -m local/smollm2-135m-instruct --test splits/test.jsonl --limit 20 --out runs/eval-base
      extes evaluate --adapter runs/lora --test splits/test.jsonl --strategy predicted --out runs/eval-lora
      extes evaluate compare runs/eval-base runs/eval-lora
    """
    if ctx.invoked_subcommand is not None:
        return
    if test_corpus is None or out is None:
        raise InputError("--test and --out are required (or use `extes evaluate compare RUN...`)")
    from extes.tuning.evaluation import (  # lazy: tuning.evaluation imports dspy
        check_resume,
        evaluate_run,
        load_samples,
        samples_of,
    )

    check_output_dir(out, "evaluate")
    dialogues = read_corpus(test_corpus, None, ReadOptions(unknown_labels="keep")).dialogues
    manifest = {"model": model, "adapter": str(adapter) if adapter else None,
                "adapter_sha256": content_sha256(adapter), "program": str(program or ""),
                "program_sha256": content_sha256(program), "test": str(test_corpus),
                "test_sha256": content_sha256(test_corpus), "max_tokens": max_tokens,
                "mode": mode, "limit": limit, "git": git_hash(),
                "versions": versions()}
    check_resume(out, manifest)  # before loading the model: a refused resume costs nothing
    lm = load_lm(model, adapter=str(adapter) if adapter else None, api_base=api_base, max_tokens=max_tokens)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        done = {s["id"] for s in load_samples(out)}
        total = sum(s["id"] not in done for s in samples_of(dialogues, limit))
        bar = tqdm(total=total, file=sys.stderr, desc="samples", unit="reply")
    agg = evaluate_run(lm, dialogues, out, mode=mode, limit=limit, workers=workers,
                       program=str(program) if program else None, manifest=manifest,
                       progress=bar.update if bar else None)
    if bar:
        bar.close()
    if as_json:
        emit_json(agg)
    else:
        click.echo((Path(out) / "report.md").read_text())


@evaluate.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--reps", type=POSITIVE_INT, default=200, show_default=True,
              help="Bootstrap resamples for the 95% intervals.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the table (Markdown) here too.")
@click.option("--paired-reps", default=1000, show_default=True,
              help="Resamples of the paired test of each run against the first (0: no paired test).")
@click.option("--seed", default=0, show_default=True, help="Seed of the paired test.")
@json_option
def compare(runs, reps, out, paired_reps, seed, as_json) -> None:
    """A Table 6-style comparison of evaluation RUNS with bootstrap 95% confidence intervals, and a paired test of
    each run against the first on their shared samples (paired bootstrap over dialogues; the exact randomization
    test up to 10 dialogues): a p-value and a one-line verdict per metric. Runs that share no sample are refused.

    \b
    Examples:
      extes evaluate compare runs/eval-base runs/eval-lora --out comparison.md
      extes evaluate compare runs/bench-base runs/bench-lora --paired-reps 2000 --json
    """
    from extes.tuning.evaluation import (  # lazy: tuning.evaluation imports dspy
        aggregate,
        bootstrap,
        load_samples,
        report,
    )
    from extes.tuning.paired import paired_markdown, paired_test

    named, cis, all_rows = [], {}, []
    for run in runs:
        rows = load_samples(run)
        if not rows:
            raise InputError(f"{run}: no samples.jsonl; give folders written by `extes evaluate --out`")
        named.append((Path(run).name, aggregate(rows)))
        cis[Path(run).name] = bootstrap(rows, reps)
        all_rows.append(rows)
    paired = []
    if paired_reps and len(runs) > 1:
        paired = [paired_test(all_rows[0], all_rows[i], str(runs[0]), str(runs[i]), reps=paired_reps, seed=seed)
                  for i in range(1, len(runs))]
    table = report(named, cis) + "".join("\n" + paired_markdown(p) for p in paired)
    if out:
        write_text_atomic(out, table)
    if as_json:
        emit_json({"runs": [{"run": n, **a, "ci95": {k: list(v) for k, v in cis[n].items()}} for n, a in named],
                   "paired": paired})
    else:
        click.echo(table)





@evaluate.command("matrix")
@click.option("--models", required=True, help="Comma-separated models (each as for -m).")
@click.option("--tests", required=True, help="Comma-separated test sets (any corpus, or an ESConv .tsv).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Matrix folder (cells are run folders; rerun to resume).")
@click.option("--metric", default="rouge_l", show_default=True,
              type=click.Choice(["meteor", "bleu2", "bleu4", "rouge_l", "extrema", "dist1_response",
                                 "dist2_response", "ppl"]))
@click.option("--strategy", "mode", type=click.Choice(["gold", "predicted", "none"]), default="gold",
              show_default=True)
@click.option("--limit", type=int, help="Only the first N samples of each test set.")
@click.option("--max-tokens", default=60, show_default=True)
@click.option("--reps", default=500, show_default=True, help="Bootstrap resamples (of dialogues).")
@json_option
def matrix(models, tests, out, metric, mode, limit, max_tokens, reps, as_json) -> None:
    """The cross-dataset matrix (Table 8): every model of --models evaluated on every test set of --tests; prints
    the matrix for --metric with 95% intervals and writes matrix.md, matrix.json and a heat map (matrix.png).
    Finished cells are reused.

    \b
    Examples:
      extes evaluate matrix --models scripted,local/smollm2-135m-instruct \\
        --tests assets/seeds,../shared/data/esconv/devWithStrategy_short.tsv --limit 5 --out runs/matrix
    """
    from extes.tuning.matrix import run_matrix  # lazy: tuning.matrix imports dspy

    def load(model: str):
        return load_lm(model, max_tokens=max_tokens)

    result = run_matrix([m.strip() for m in models.split(",") if m.strip()],
                        [Path(t.strip()) for t in tests.split(",") if t.strip()], out, load, metric=metric,
                        mode=mode, limit=limit, reps=reps)
    if as_json:
        emit_json(result)
    else:
        click.echo((Path(out) / "matrix.md").read_text())
