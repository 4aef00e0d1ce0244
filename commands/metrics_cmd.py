"""`extes metrics`: score hypotheses against references, one per line."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.corpus import textio
from extes.errors import InputError


def read_lines(path: Path) -> list[str]:
    lines = textio.read_text(path, folder_hint="give a text file, one sentence per line").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise InputError(f"{path}: line {i} is empty; every line needs a text (remove the line from both files)")
    return lines


@click.command("metrics")
@click.argument("hyp", type=click.Path(path_type=Path))
@click.argument("ref", type=click.Path(path_type=Path))
@json_option
def metrics(hyp, ref, as_json) -> None:
    """Score HYP against REF (one hypothesis and one reference per line): BLEU-2/4, ROUGE-L, METEOR, Extrema,
    Distinct-1/2/3, all x100 as in the paper's Table 6. Definitions: tuning/metrics.py.

    \b
    Examples:
      extes metrics hyp.txt ref.txt --json
    """
    from extes.tuning.metrics import all_metrics  # lazy: tuning.metrics imports dspy

    h, r = read_lines(hyp), read_lines(ref)
    if len(h) != len(r):
        raise InputError(f"{hyp} has {len(h)} lines but {ref} has {len(r)}; give one reference per hypothesis")
    scores = all_metrics(h, r)
    if as_json:
        emit_json(scores)
    else:
        click.echo("  ".join(f"{k} {v}" for k, v in scores.items()))
