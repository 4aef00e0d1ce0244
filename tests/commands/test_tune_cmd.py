"""`extes tune`'s options agree with `TuneConfig`: a default changed in one place and not the other fails here."""

import dataclasses

import click

from extes.cli import main
from extes.tuning.trainer import PRECISIONS, TuneConfig

# Options whose click value is reshaped before it reaches the config (a comma list, a Python keyword).
RENAMED = {"compile_": "compile", "lora_targets": "lora_targets"}
NOT_CONFIG = {"data", "valid", "out", "quiet", "as_json"}


def test_tune_options_have_the_config_defaults():
    command = main.commands["tune"].commands["lora"]
    fields = {f.name: f for f in dataclasses.fields(TuneConfig)}
    config = TuneConfig()
    values = command.make_context("lora", ["--data", "d.jsonl", "--out", "o"]).params  # what a bare run gets
    checked = 0
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_CONFIG:
            continue
        name = RENAMED.get(param.name, param.name)
        assert name in fields, f"--{param.name}: no TuneConfig field; declare it there first"
        default = values[param.name]
        if name == "lora_targets":
            default = default.split(",")
        want = fields[name].default if name == "lr" else getattr(config, name)  # lr 0: the per-method default
        assert default == want, f"--{param.name} defaults to {default!r}, TuneConfig.{name} to {want!r}"
        checked += 1
    assert checked >= 20
    precision = next(p for p in command.params if p.name == "precision")
    assert tuple(precision.type.choices) == PRECISIONS
