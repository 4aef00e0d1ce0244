"""The `extes` command line: parse, load, call one entry function, print, translate errors."""

from __future__ import annotations

import sys
import warnings

import click

from extes import __version__
from extes.commands.arena_cmd import arena
from extes.commands.assets_cmd import assets
from extes.commands.benchmark_cmd import benchmark
from extes.commands.chat_cmd import chat
from extes.commands.common import library_output
from extes.commands.compare_cmd import compare_optimizers
from extes.commands.compile_cmd import compile_cmd
from extes.commands.data_cmd import data
from extes.commands.distill_cmd import distill
from extes.commands.errors import debug_enabled, describe_failure, one_line
from extes.commands.evaluate_cmd import evaluate
from extes.commands.human_eval_cmd import human_eval
from extes.commands.metrics_cmd import metrics
from extes.commands.rate_cmd import rate
from extes.commands.recipe_cmd import recipe
from extes.commands.reply_cmd import reply
from extes.commands.review_cmd import review
from extes.commands.safety_cmd import safety
from extes.commands.serve_cmd import serve
from extes.commands.stats_cmd import stats
from extes.commands.synthesize_cmd import synthesize
from extes.commands.toxicity_cmd import toxicity
from extes.commands.tune_cmd import tune

# peft still asks transformers 5 for `is_gradient_checkpointing`; the deprecation notice is theirs, not the user's.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


class Group(click.Group):
    """Every command's one top-level handler: a failure becomes one line on stderr with the fix, never a traceback.

    ExtesError and usage errors exit 2, known failures of files, parsers and LM servers too (see
    `commands/errors.py`); Ctrl-C exits 130; anything unexpected exits 1 with one line, and `-v` (or
    EXTES_DEBUG=1) shows its traceback.
    """

    def invoke(self, ctx: click.Context):
        # The raw arguments, for messages that name an option's value (--api-base) after the command's context closed.
        ctx.meta["extes.argv"] = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except click.UsageError as e:
            ctx_ = e.ctx or ctx
            click.echo(f"Error: {one_line(e.format_message())} (see '{ctx_.command_path} -h')", err=True)
            sys.exit(2)
        except BaseException as e:  # noqa: BLE001 - the one place every failure is turned into a line
            if debug_enabled(ctx):
                raise
            message, code = describe_failure(e, ctx)
            click.echo(message, err=True)
            sys.exit(code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="extes")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the libraries' logs, warnings and loading bars, and the traceback of an unexpected error "
                   "(or EXTES_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Build emotional-support chatbots with language models, the ExTES way.

    \b
    Examples:
      extes assets validate --json
      extes data convert ../shared/data/esconv/FailedESConv.json out.jsonl --from esconv --to jsonl
      extes data split assets/seeds splits/ --seed 13
      extes reply "I failed my exam again" --strategy "Suggest Options"
      extes safety check "I've been giving my things away" --json
    """
    ctx.with_resource(library_output(verbose or ctx.meta.get("extes.verbose", False)))


main.add_command(assets)
main.add_command(data)
main.add_command(stats)
main.add_command(reply)
main.add_command(safety)
main.add_command(chat)
main.add_command(synthesize)
main.add_command(review)
main.add_command(rate)
main.add_command(metrics)
main.add_command(toxicity)
main.add_command(evaluate)
main.add_command(compile_cmd)
main.add_command(compare_optimizers)
main.add_command(tune)
main.add_command(distill)
main.add_command(recipe)
main.add_command(benchmark)
main.add_command(serve)
main.add_command(arena)
main.add_command(human_eval)


if __name__ == "__main__":
    main()
