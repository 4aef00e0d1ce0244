"""`extes toxicity`: the paper's Table 7 for any corpus or synthesis run."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.commands.data_cmd import from_option
from extes.corpus.formats import ReadOptions, read_corpus
from extes.tuning.toxicity import backend, corpus_toxicity


@click.command("toxicity")
@click.argument("corpus", type=click.Path(path_type=Path))
@click.option("--backend", "backend_name", default="offline", show_default=True,
              help="offline (alt-profanity-check), detoxify (needs --checkpoint) or perspective (needs a key).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="A Detoxify checkpoint file (detoxify backend).")
@from_option
@json_option
def toxicity(corpus, backend_name, checkpoint, fmt_in, as_json) -> None:
    """Mean toxicity attributes over the utterances of CORPUS, per role (user, assistant) and overall.

    \b
    Examples:
      extes toxicity assets/seeds --json
      extes toxicity runs/r1 --backend detoxify --checkpoint toxic_original.ckpt
      PERSPECTIVE_API_KEY=... extes toxicity ../shared/data/esconv/FailedESConv.json --backend perspective
    """

    scorer = backend(backend_name, str(checkpoint) if checkpoint else None)
    result = corpus_toxicity(read_corpus(corpus, fmt_in, ReadOptions(unknown_labels="keep")).dialogues, scorer)
    if as_json:
        emit_json(result)
        return
    click.echo(f"{result['backend']} backend (covers {', '.join(result['covers'])}), {result['utterances']} utterances")
    for group, means in result["means"].items():
        click.echo(f"  {group:<9} " + "  ".join(f"{a} {v if v is not None else '-'}" for a, v in means.items()))
