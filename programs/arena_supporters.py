"""Supporter specs for the arena and the human study: which model, adapter and program answer as one supporter.

    [NAME=]MODEL[+adapter:DIR][+program:FILE.json]

`MODEL` is any model string (`local/...`, `openai/...`, `scripted`, `scripted:FILE.json`); `+adapter:DIR` a peft
folder from `extes tune` (local models); `+program:FILE.json` a compiled Supporter (`extes compile supporter`).
`NAME=` labels it in tables (default: the spec itself). Specs are separated by commas:
`--supporters base=local/smollm2-135m-instruct,tuned=local/smollm2-135m-instruct+adapter:runs/lora`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from extes.errors import InputError
from extes.programs.lm import load_lm
from extes.programs.runtime import respond
from extes.programs.supporter import Supporter, load_supporter


@dataclass(frozen=True)
class SupporterSpec:
    """One parsed supporter spec."""

    name: str
    model: str
    adapter: str | None = None
    program: str | None = None

    @property
    def spec(self) -> str:
        return self.model + (f"+adapter:{self.adapter}" if self.adapter else "") + (
            f"+program:{self.program}" if self.program else "")


def parse_supporter(text: str) -> SupporterSpec:
    """`[NAME=]MODEL[+adapter:DIR][+program:FILE]` → SupporterSpec; a bad part names itself and the syntax."""
    text = text.strip()
    name = None
    if "=" in text.split("+", 1)[0]:
        name, text = (x.strip() for x in text.split("=", 1))
    model, *parts = text.split("+")
    adapter = program = None
    for part in parts:
        key, _, value = part.partition(":")
        if key == "adapter" and value:
            adapter = value
        elif key == "program" and value:
            program = value
        else:
            raise InputError(f"--supporters: {part!r} in {text!r}; use [NAME=]MODEL[+adapter:DIR][+program:FILE.json]")
    if not model:
        raise InputError(f"--supporters: {text!r} has no model; use [NAME=]MODEL[+adapter:DIR][+program:FILE.json]")
    if adapter and not os.path.isdir(adapter):
        raise InputError(f"--supporters: adapter {adapter}: no such folder; give the folder written by `extes tune`")
    if program and not Path(program).is_file():
        raise InputError(f"--supporters: program {program}: no such file; give a Supporter saved by `extes compile`")
    spec = SupporterSpec(name or "", model, adapter, program)
    return SupporterSpec(name or spec.spec, model, adapter, program)


def parse_supporters(text: str, at_least: int = 2) -> list[SupporterSpec]:
    """The comma-separated list; names must be unique."""
    specs = [parse_supporter(x) for x in text.split(",") if x.strip()]
    if len(specs) < at_least:
        raise InputError(f"--supporters {text!r}: give at least {at_least}, separated by commas")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"--supporters: the names {names} repeat; label them NAME=SPEC")
    return specs


class LMPool:
    """Loads each (model, adapter) once, so that seeker, judge and supporters on one base model share it."""

    def __init__(self, **local_kwargs):
        self._lms: dict[tuple, object] = {}
        self.local_kwargs = local_kwargs

    def get(self, model: str, adapter: str | None = None, **kwargs):
        key = (model, adapter, tuple(sorted(kwargs.items())))
        if key not in self._lms:
            extra = {**self.local_kwargs, **kwargs} if model.startswith("local/") else {}
            self._lms[key] = load_lm(model, adapter=adapter, **extra)
        return self._lms[key]


class LiveSupporter:
    """A spec made runnable: the crisis layer in front, then the (compiled) Supporter on its LM."""

    def __init__(self, spec: SupporterSpec, pool: LMPool, checker, locale: str | None = None):
        self.spec, self.checker, self.locale = spec, checker, locale
        self.lm = pool.get(spec.model, spec.adapter)
        self.program = load_supporter(spec.program, "--supporters: program") if spec.program else Supporter()

    def reply(self, history: list[dict], message: str) -> dict:
        """{reply, strategy, crisis, ...} for `message` after `history`."""
        return respond(self.lm, history, message, locale=self.locale, supporter=self.program, checker=self.checker)
