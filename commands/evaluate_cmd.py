"""`extes evaluate`: Table 6 for any model on a test corpus, and comparisons of runs with confidence intervals."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.commands.reply_cmd import adapter_option, api_base_option
from extes.errors import InputError
from extes.programs.lm import DEFAULT_MODEL


@click.group(invoke_without_command=True)
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True)
@adapter_option
@api_base_option
@click.option("--program", type=click.Path(path_type=Path, exists=True), help="A compiled Supporter (JSON).")
@click.option("--test", "test_corpus", type=click.Path(path_type=Path), help="The test corpus (any format).")
@click.option("--strategy", "mode", type=click.Choice(["gold", "predicted", "none"]), default="gold",
              show_default=True, help="Reply with the gold strategy, a predicted one, or none.")
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--max-tokens", default=100, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (created, or resumed).")
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
    from extes.corpus.formats import ReadOptions, read_corpus
    from extes.corpus.provenance import git_hash, versions
    from extes.programs.lm import load_lm
    from extes.tuning.evaluation import evaluate_run

    dialogues = read_corpus(test_corpus, None, ReadOptions(unknown_labels="keep")).dialogues
    lm = load_lm(model, adapter=str(adapter) if adapter else None, api_base=api_base, max_tokens=max_tokens)
    manifest = {"model": model, "adapter": str(adapter) if adapter else None, "program": str(program or ""),
                "test": str(test_corpus), "git": git_hash(), "versions": versions()}
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(file=sys.stderr, desc="samples", unit="reply")
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
@click.option("--reps", default=200, show_default=True, help="Bootstrap resamples for the 95% intervals.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the table (Markdown) here too.")
@json_option
def compare(runs, reps, out, as_json) -> None:
    """A Table 6-style comparison of evaluation RUNS with bootstrap 95% confidence intervals.

    \b
    Examples:
      extes evaluate compare runs/eval-base runs/eval-lora --out comparison.md
    """
    from extes.corpus.atomic import write_text_atomic
    from extes.tuning.evaluation import aggregate, bootstrap, load_samples, report

    named, cis = [], {}
    for run in runs:
        rows = load_samples(run)
        if not rows:
            raise InputError(f"{run}: no samples.jsonl; give folders written by `extes evaluate --out`")
        named.append((Path(run).name, aggregate(rows)))
        cis[Path(run).name] = bootstrap(rows, reps)
    table = report(named, cis)
    if out:
        write_text_atomic(out, table)
    if as_json:
        emit_json({"runs": [{"run": n, **a, "ci95": {k: list(v) for k, v in cis[n].items()}} for n, a in named]})
    else:
        click.echo(table)



