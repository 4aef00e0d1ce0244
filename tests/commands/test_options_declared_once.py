"""Options declared once: the options of `tune`, `synthesize`, `evaluate` and `compile` take their defaults and help
from the config dataclass (or the entry function) they feed, shared options come from commands/common.py, and the
choices of optimizers, precisions and corpus formats are each written once."""

import ast
import dataclasses
import inspect
from pathlib import Path

import click

from extes.cli import main
from extes.commands import common
from extes.programs.lm import local
from extes.programs.synthesis_run import SynthConfig
from extes.tuning import compile as compile_mod
from extes.tuning import distill, sft, trainer
from extes.tuning.compile import compile_program
from extes.tuning.evaluation import evaluate_run
from extes.tuning.trainer import TuneConfig

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"-m", "--model", "--adapter", "--api-base", "--out", "--json", "--limit", "-q", "--quiet"}
# Options of these commands that name a field of their config under another name.
RENAMED = {"compile_": "compile"}


def command(*path: str) -> click.Command:
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


def default_of(opt: click.Option):
    """The option's default as the command sees it (click 8.3 marks an absent one with a sentinel)."""
    default = opt.get_default(click.Context(click.Command("x")), call=False)
    return None if default is getattr(click.core, "UNSET", object()) else default


def field_default(field: dataclasses.Field):
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    return ",".join(default) if isinstance(default, list) else default


def mismatches(cmd: click.Command, config: type) -> tuple[list[str], int]:
    """Options whose default or help differ from their field's, and how many options map to a field at all."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    wrong, mapped = [], 0
    for opt in options(cmd):
        field = fields.get(RENAMED.get(opt.name, opt.name))
        if field is None or isinstance(opt, common.SharedOption):
            continue
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            continue
        mapped += 1
        default, help_ = field_default(field), field.metadata.get("help")
        # None on the command line stands for the config's empty default (the command passes `value or 0`).
        if not (default_of(opt) == default or (default_of(opt) is None and not default)):
            wrong.append(f"{opt.opts[0]}: default {default_of(opt)!r}, {config.__name__}.{field.name} {default!r}")
        if not help_ or not (opt.help or "").startswith(help_):
            wrong.append(f"{opt.opts[0]}: help {opt.help!r}, {config.__name__}.{field.name} {help_!r}")
    return wrong, mapped


def test_tune_options_are_the_trainer_config_fields():
    for method in ("lora", "adapter", "clm"):
        wrong, mapped = mismatches(command("tune", method), TuneConfig)
        assert not wrong, wrong
        assert mapped >= 20  # every knob but --data, --valid and the shared ones


def test_synthesize_options_are_the_run_config_fields():
    wrong, mapped = mismatches(command("synthesize"), SynthConfig)
    assert not wrong, wrong
    assert mapped >= 14


def test_the_check_fails_on_a_restated_default():
    """A click option that restates a field with another default is caught."""
    stray = click.Command("x", params=[click.Option(["--max-steps"], default=31, help="Optimizer steps.")])
    wrong, mapped = mismatches(stray, TuneConfig)
    assert mapped == 1 and wrong == ["--max-steps: default 31, TuneConfig.max_steps 30"]


def test_every_config_field_has_help():
    for config in (TuneConfig, SynthConfig):
        assert all(f.metadata.get("help") for f in dataclasses.fields(config)), config.__name__


def keyword_defaults(func) -> dict:
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


def test_evaluate_and_compile_defaults_are_their_entry_functions():
    """No config dataclass feeds these two: their options' defaults are the entry functions' keyword defaults."""
    ev = {o.name: default_of(o) for o in options(command("evaluate"))}
    run = keyword_defaults(evaluate_run)
    assert {k: ev[k] for k in ("mode", "limit", "workers")} == {k: run[k] for k in ("mode", "limit", "workers")}
    comp = {o.name: default_of(o) for o in options(command("compile"))}
    fn = keyword_defaults(compile_program)
    assert {k: comp[k] for k in ("seed", "k", "quiet")} == {k: fn[k] for k in ("seed", "k", "quiet")}


def test_shared_options_come_from_common():
    commands = [command("tune", m) for m in ("lora", "adapter", "clm")] + [
        command("synthesize"), command("evaluate"), command("compile")]
    for cmd in commands:
        for opt in options(cmd):
            if SHARED & set(opt.opts):
                assert isinstance(opt, common.SharedOption), f"{cmd.name} {opt.opts}: use commands/common.py's"
    assert {o.name for o in options(command("compile")) if isinstance(o, common.SharedOption)} >= {
        "student", "api_base", "limit", "out", "quiet", "as_json"}


def walk(group: click.Command):
    yield group
    for sub in getattr(group, "commands", {}).values():
        yield from walk(sub)


def test_json_quiet_adapter_and_api_base_are_shared_by_every_command():
    for cmd in walk(main):
        for opt in options(cmd):
            if cmd.name == "serve" and opt.name == "adapters":
                continue  # serve's --adapter NAME=DIR is another option: several named adapters, one per model name
            if {"--json", "-q", "--adapter", "--api-base"} & set(opt.opts):
                assert isinstance(opt, common.SharedOption), f"{cmd.name} {opt.opts}: use commands/common.py's"


CHOICES = {
    "tuning.compile.OPTIMIZERS": compile_mod.OPTIMIZERS,
    "tuning.distill.OPTIMIZERS": distill.OPTIMIZERS,
    "tuning.trainer.PRECISIONS": trainer.PRECISIONS,
    "programs.lm.local.PRECISIONS": local.PRECISIONS,
    "tuning.sft.VARIANTS": sft.VARIANTS,
}


def literal_sets(path: Path) -> list[tuple[int, frozenset[str]]]:
    """Every tuple, list or set literal of two or more strings in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.append((node.lineno, frozenset(e.value for e in node.elts)))
    return found


def test_choices_are_written_once():
    files = [p for p in ROOT.rglob("*.py") if not {".venv", ".git", "tests"} & set(p.relative_to(ROOT).parts)]
    literals = [(p, line, s) for p in files for line, s in literal_sets(p)]
    for name, choices in CHOICES.items():
        where = [f"{p.relative_to(ROOT)}:{line}" for p, line, s in literals if s == frozenset(choices)]
        assert len(where) == 1, f"{name} is written {len(where)} times: {where}"
    # the format names come from the FORMATS table itself, never from a list of names
    from extes.corpus.formats import FORMATS, READ_FORMATS

    assert READ_FORMATS == tuple(f.name for f in FORMATS)
    assert not [p for p, _, s in literals if s == frozenset(READ_FORMATS)]


def test_choice_options_use_the_one_definition():
    choice = {("compile", "optimizer"): compile_mod.OPTIMIZERS, ("distill", "optimizer"): distill.OPTIMIZERS,
              ("lora", "precision"): trainer.PRECISIONS, ("lora", "variant"): sft.VARIANTS}
    cmds = {"compile": command("compile"), "distill": command("distill"), "lora": command("tune", "lora")}
    for (cmd, name), values in choice.items():
        opt = next(o for o in options(cmds[cmd]) if o.name == name)
        assert isinstance(opt.type, click.Choice) and tuple(opt.type.choices) == tuple(values), (cmd, name)
    data = command("data", "convert")
    formats = {o.name: tuple(o.type.choices) for o in options(data) if isinstance(o.type, click.Choice)}
    from extes.corpus.formats import READ_FORMATS, WRITE_FORMATS

    assert formats["fmt_in"] == READ_FORMATS and formats["fmt_out"] == WRITE_FORMATS
