"""`extes benchmark esconv`: the pinned ESConv benchmark (Table 6 + strategy proficiency and bias, quotable)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from extes.commands.common import adapter_option, api_base_option, emit_json, json_option
from extes.corpus.provenance import git_hash, versions
from extes.programs.lm import DEFAULT_MODEL, load_lm


@click.group("benchmark")
def benchmark() -> None:
    """Pinned benchmarks whose reports can be quoted (test file sha256, sample ids, metric variants, intervals)."""


@benchmark.command("esconv")
@click.option("--test", "test_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="ESConv *WithStrategy_short.tsv (one line = one sample) or an ESConv.json file.")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True)
@adapter_option
@api_base_option
@click.option("--program", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A compiled Supporter (JSON) whose SelectStrategy predicts the strategy.")
@click.option("--predictor", type=click.Choice(["select", "prefix"]), default="select", show_default=True,
              help="select: the Supporter's SelectStrategy; prefix: the reply's leading [label] (a model tuned on "
                   "the strategies variant).")
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option("--per-dialogue", type=int, help="At most K samples of each dialogue, evenly spaced over its turns "
              "(before --limit): more dialogues for the bootstrap and the paired tests at the same cost.")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--max-tokens", default=60, show_default=True)
@click.option("--reps", default=1000, show_default=True, help="Bootstrap resamples (of dialogues).")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Run folder (created, or resumed).")
@json_option
def esconv(test_file, model, adapter, api_base, program, predictor, limit, per_dialogue, workers, max_tokens, reps,
           seed, out, as_json) -> None:
    """Run the ESConv benchmark: a reply and a strategy for every released sample of --test, scored with Table 6's
    columns and Kang et al.'s strategy proficiency Q, weighted-F1 and preference bias B (95% intervals from a
    bootstrap over dialogues), published results beside ours. Writes report.md (confusion matrix embedded),
    report.json, confusion.png, benchmark.json (sha256, sample ids) and the per-sample samples.jsonl to --out;
    rerun to resume (refused if the test file or --per-dialogue changed).

    \b
    Examples:
      extes benchmark esconv --test ../shared/data/esconv/devWithStrategy_short.tsv -m scripted --limit 5 \\
        --out runs/bench-demo
      extes benchmark esconv --test ../shared/data/esconv/devWithStrategy_short.tsv \\
        -m local/smollm2-135m-instruct --limit 200 --out runs/bench-base --json
      extes benchmark esconv --test ../shared/data/esconv/devWithStrategy_short.tsv \\
        -m local/smollm2-135m-instruct --per-dialogue 3 --limit 60 --out runs/bench-spread
    """
    from extes.tuning.benchmark import run_benchmark  # lazy: tuning.benchmark imports dspy

    kwargs = {"max_tokens": max_tokens}
    lm = load_lm(model, adapter=str(adapter) if adapter else None, api_base=api_base, **kwargs)
    manifest = {"model": model, "adapter": str(adapter) if adapter else None, "program": str(program or ""),
                "max_tokens": max_tokens, "git": git_hash(), "versions": versions()}
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(file=sys.stderr, desc="samples", unit="reply")
    result = run_benchmark(lm, test_file, out, limit=limit, per_dialogue=per_dialogue, predictor=predictor,
                           program=str(program) if program else None, workers=workers, reps=reps, seed=seed,
                           manifest=manifest, progress=bar.update if bar else None)
    if bar:
        bar.close()
    if as_json:
        emit_json({k: v for k, v in result.items() if k not in ("manifest",)})
    else:
        click.echo((Path(out) / "report.md").read_text())
