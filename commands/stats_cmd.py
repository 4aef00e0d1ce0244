"""`extes stats`: the paper's corpus statistics for any corpus."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.commands.data_cmd import from_option, labels_option, read_options, skip_option
from extes.corpus.formats import read_corpus
from extes.corpus.stats import basic_stats


@click.command("stats")
@click.argument("corpus", type=click.Path(path_type=Path))
@from_option
@skip_option
@labels_option
@json_option
def stats(corpus, fmt_in, skip_invalid, unknown_labels, as_json) -> None:
    """Print the paper's statistics (Tables 1-3) of CORPUS: sizes, lengths, scenarios, strategies.

    \b
    Examples:
      extes stats assets/seeds
      extes stats ../shared/data/esconv/FailedESConv.json --json
    """
    result = read_corpus(corpus, fmt_in, read_options(skip_invalid, unknown_labels, False))
    s = basic_stats(result.dialogues)
    if as_json:
        emit_json(s)
        return
    click.echo(f"{corpus}: {s['dialogues']} dialogues, {s['utterances']} utterances")
    click.echo(f"  avg utterances per dialogue {s['avg_utterances_per_dialogue']}, "
               f"avg utterance length {s['avg_utterance_length']} NLTK word tokens")
    click.echo(f"  {s['num_scenarios']} scenarios, {s['num_strategies']} strategies, "
               f"{s['unlabelled_assistant_turns']} unlabelled assistant turns")
    total = sum(s["strategies"].values()) or 1
    click.echo("  strategies:")
    for name, n in s["strategies"].items():
        click.echo(f"    {name:<32} {n:>6}  {100 * n / total:5.1f}%")
