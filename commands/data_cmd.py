"""`extes data ...`: convert corpora between formats and split them by dialogue."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.corpus.formats import READ_FORMATS, WRITE_FORMATS, ReadOptions, guess_output_format
from extes.corpus.pipeline import convert_corpus, split_corpus

from_option = click.option(
    "--from", "fmt_in", type=click.Choice(READ_FORMATS), help="Input format (default: guessed from the path)."
)
skip_option = click.option(
    "--skip-invalid",
    is_flag=True,
    help="Skip records that cannot be read (reported with the reason) instead of stopping.",
)
labels_option = click.option(
    "--unknown-labels",
    type=click.Choice(["error", "keep"]),
    default=None,
    help="A strategy outside the label set: stop (default for ExTES labels) or keep and flag (default for ESConv).",
)
map_option = click.option(
    "--map-esconv", is_flag=True, help="Map ESConv's 8 strategies onto ExTES labels (assets/esconv_strategies.yaml)."
)


def read_options(skip_invalid: bool, unknown_labels: str | None, map_esconv: bool) -> ReadOptions:
    return ReadOptions(skip_invalid=skip_invalid, unknown_labels=unknown_labels, map_esconv=map_esconv)


@click.group()
def data() -> None:
    """Read, convert and split corpora (ExTES JSON, ESConv.json, JSONL, Hugging Face folders, seed folders)."""


@data.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@from_option
@click.option("--to", "fmt_out", type=click.Choice(WRITE_FORMATS), help="Output format (default: from OUT's name).")
@skip_option
@labels_option
@map_option
@json_option
def convert(src, dst, fmt_in, fmt_out, skip_invalid, unknown_labels, map_esconv, as_json) -> None:
    """Convert corpus SRC into DST. Nothing is written unless the whole conversion succeeds.

    \b
    Examples:
      extes data convert ../shared/data/esconv/FailedESConv.json out.jsonl --from esconv --to jsonl
      extes data convert assets/seeds seeds.json --to extes
      extes data convert seeds.json seeds_hf --from extes --to hf --skip-invalid
      extes data convert ../shared/data/esconv/FailedESConv.json esconv_extes.jsonl --from esconv --map-esconv
    """
    opts = read_options(skip_invalid, unknown_labels, map_esconv)
    summary = convert_corpus(src, dst, fmt_in=fmt_in, fmt_out=fmt_out or guess_output_format(dst), opts=opts)
    if as_json:
        emit_json(summary)
        return
    for reason in summary["skipped_reasons"]:
        click.echo(f"skipped {reason}", err=True)
    flagged = ", ".join(f"{label!r} x{n}" for label, n in summary["flagged"].items())
    click.echo(
        f"wrote {summary['written']} dialogues to {dst} ({summary['format']}); skipped {summary['skipped']}; "
        f"flagged labels: {summary['flagged_total']}" + (f" ({flagged})" if flagged else "")
    )


@data.command("split")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("outdir", type=click.Path(path_type=Path))
@from_option
@click.option("--seed", default=0, show_default=True, help="Seed of the split; the same seed gives the same split.")
@click.option("--ratios", default="8:1:1", show_default=True, help="train:valid:test proportions.")
@skip_option
@labels_option
@json_option
def split(src, outdir, fmt_in, seed, ratios, skip_invalid, unknown_labels, as_json) -> None:
    """Split corpus SRC by dialogue, stratified by scene, into OUTDIR/{train,valid,test}.jsonl.

    \b
    Examples:
      extes data split assets/seeds splits/
      extes data split ../shared/data/esconv/FailedESConv.json esconv_splits --seed 7 --ratios 7:1:2
    """
    opts = read_options(skip_invalid, unknown_labels, False)
    summary = split_corpus(src, outdir, fmt_in=fmt_in, seed=seed, ratios=ratios, opts=opts)
    if as_json:
        emit_json(summary)
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    click.echo(f"split {summary['dialogues']} dialogues into {outdir}: {counts} (seed {seed})")

