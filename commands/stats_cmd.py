"""`extes stats`: the paper's corpus statistics (Tables 1-3 and 5, Figure 2) for any corpora, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from extes.commands.common import POSITIVE_INT, json_option, progress_bar, quiet_option
from extes.commands.data_cmd import from_option, labels_option, read_options, skip_option
from extes.corpus.analytics import analyse
from extes.corpus.atomic import check_output_dir
from extes.corpus.formats import read_corpus
from extes.corpus.report import write_report

BAR_DELAY_S = 1.0  # small corpora finish before this and draw no bar


@click.command("stats")
@click.argument("corpora", nargs=-1, required=True, type=click.Path(path_type=Path))
@from_option
@click.option("--out", type=click.Path(path_type=Path), help="Write report.md, stats.json, PNG figures and CSVs here.")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="What to print: a Markdown summary, or one JSON object per corpus (one per line).")
@json_option
@click.option("--top", type=POSITIVE_INT, default=10, show_default=True, help="Strategy paths kept per length.")
@skip_option
@labels_option
@quiet_option
def stats(corpora, fmt_in, out, fmt, as_json, top, skip_invalid, unknown_labels, quiet) -> None:
    """Statistics of each CORPUS (ExTES JSON, ESConv.json, JSONL, a run folder, a dataset or seed folder).

    \b
    Examples:
      extes stats assets/seeds
      extes stats assets/seeds ../shared/data/esconv/FailedESConv.json --out report/
      extes stats runs/r1 --format json -q

    A corpus that takes more than a second shows a bar of utterances on stderr (on a terminal, unless -q).
    """

    if out:
        check_output_dir(out, "stats")  # before the analysis: a refused folder costs nothing
    all_stats = []
    for path in corpora:
        result = read_corpus(path, fmt_in, read_options(skip_invalid, unknown_labels or "keep", False))
        name = Path(path).stem or str(path)
        bar = progress_bar(sum(len(d.turns) for d in result.dialogues), desc=name, unit="utt", quiet=quiet,
                           delay=BAR_DELAY_S)
        try:
            all_stats.append(analyse(result.dialogues, top=top, name=name, progress=bar.update if bar else None))
        finally:
            if bar:
                bar.close()
    if out:
        files = write_report(all_stats, out)
        click.echo(f"wrote {files['report']}", err=True)
    if as_json or fmt == "json":
        for s in all_stats:
            click.echo(json.dumps(s, ensure_ascii=False))
        return
    for s in all_stats:
        click.echo(f"{s['name']}: {s['dialogues']} dialogues, {s['utterances']} utterances, "
                   f"{s['avg_utterances_per_dialogue']} per dialogue, {s['avg_utterance_length']} tokens each; "
                   f"{s['num_scenarios']} scenarios, {s['num_strategies']} strategies, "
                   f"{s['unlabelled_assistant_turns']} unlabelled assistant turns")
        total = sum(s["strategies"].values())
        for name, n in s["strategies"].items():
            click.echo(f"  {name:<32} {n:>7}  {100 * n / total:5.1f}%")
