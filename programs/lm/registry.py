"""One table of LM backends, in the manner of simonw/llm's `register_models` + `get_model(name)`.

A backend says which model strings it owns (its prefix), how it reads one, which options it takes (with types
and ranges) and what it can do (`Capabilities`). Callers ask this table, never a string prefix or `hasattr`:
`get_model("local/…", max_tokens=40)` builds the LM, `capabilities(lm)` says whether it can score `Literal`
outputs, stream, be trained or serve requests in parallel. Adding a backend is one file that defines a `Backend`
and one `register(...)` line in `programs/lm/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from extes.errors import ModelError

DEFAULT_MODEL = "local/smollm2-135m-instruct"


@dataclass(frozen=True)
class Option:
    """One option a backend takes: its type, its range or choices, its default (None: the backend's own)."""

    name: str
    type: type
    help: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def check(self, model: str, value: Any) -> Any:
        """`value` converted to the option's type, or a one-line ModelError naming the model and the range."""
        flag = "--" + self.name.replace("_", "-")
        try:
            if self.type is bool and not isinstance(value, bool):
                raise TypeError
            value = self.type(value)
        except (TypeError, ValueError):
            kind = {int: "an integer", float: "a number", bool: "true or false"}.get(self.type, "a string")
            raise ModelError(f"{flag} {value!r} for {model}: give {kind}") from None
        if self.choices is not None and value not in self.choices:
            raise ModelError(f"{flag} {value!r} for {model}: use one of {', '.join(self.choices)}")
        low = self.min is not None and value < self.min
        if low or (self.max is not None and value > self.max):
            bounds = f"{'' if self.min is None else self.min} .. {'' if self.max is None else self.max}".strip()
            raise ModelError(f"{flag} {value!r} for {model}: give a value in {bounds}")
        return value


def sampling_options(max_tokens: int | None = 32768, help: str | None = None) -> tuple[Option, ...]:
    """`max_tokens`, `temperature` and `top_p`, declared once for every backend: `max_tokens` capped at `max_tokens`
    (None: the server's own cap); `help` replaces each help text where the backend accepts them to no effect."""
    options = (
        Option("max_tokens", int, "Longest reply, in tokens.", min=1, max=max_tokens),
        Option("temperature", float, "Sampling temperature (0: greedy).", min=0.0, max=2.0),
        Option("top_p", float, "Nucleus sampling mass.", min=0.0, max=1.0),
    )
    return options if help is None else tuple(replace(o, help=help) for o in options)


@dataclass(frozen=True)
class Capabilities:
    """What a backend's LMs can do, so that callers never probe them with `hasattr`."""

    can_score: bool = False  # score_choices(messages, choices): Literal outputs by likelihood, not by reading text
    can_stream: bool = False  # stream(messages) yields the reply piece by piece
    trainable: bool = False  # LoRA/adapters can be trained on it (tune, distill)
    batched: bool = False  # serves parallel calls well (an API server); else calls queue on one model
    in_process: bool = False  # the weights run in this process (small local models; sampling tuned for them)


@dataclass(frozen=True)
class Backend:
    """A family of model strings: `prefix` is either a whole name (`scripted`) or ends with `/` (`local/`)."""

    prefix: str
    usage: str  # how the model string is written, for help and errors, e.g. "local/<name-or-path>"
    build: Callable[..., Any]  # build(model_string, argument, **checked_options) -> a DSPy LM
    options: tuple[Option, ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
    parse: Callable[[str], str] | None = None  # model string -> the backend's argument (default: after the prefix)
    variants: tuple[str, ...] = ()  # further prefixes of a whole-name backend, e.g. "scripted:" and "scripted@"

    def owns(self, model: str) -> bool:
        if self.prefix.endswith("/"):
            return model.startswith(self.prefix) and len(model) > len(self.prefix)
        return model == self.prefix or model.startswith(self.variants)

    def argument(self, model: str) -> str:
        """The part of the model string the backend reads (a name, a path, a spec)."""
        if self.parse is not None:
            return self.parse(model)
        return model[len(self.prefix):] if self.prefix.endswith("/") else model

    def accepts(self, option: str) -> bool:
        return any(o.name == option for o in self.options)

    def check_options(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        """Options given (None: not given) checked against the declared ones, defaults filled in."""
        known = {o.name: o for o in self.options}
        out = {o.name: o.default for o in self.options if o.default is not None}
        for name, value in options.items():
            if value is None:
                continue
            if name not in known:
                takes = ", ".join("--" + n.replace("_", "-") for n in known) or "no options"
                raise ModelError(f"--{name.replace('_', '-')} does not apply to {model} ({self.usage} takes {takes})")
            out[name] = known[name].check(model, value)
        return out


_BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add a backend to the table (a later one with the same prefix replaces the earlier, as in a plugin)."""
    _BACKENDS[backend.prefix] = backend
    return backend


def backends() -> list[Backend]:
    """The registered backends, in registration order."""
    return list(_BACKENDS.values())


def backend_for(model: str) -> Backend:
    """The backend that owns `model`, or a one-line ModelError listing the model strings there are."""
    for backend in _BACKENDS.values():
        if backend.owns(model):
            return backend
    usages = ", ".join(b.usage for b in _BACKENDS.values())
    raise ModelError(f"unknown model {model!r}; use {usages} (default {DEFAULT_MODEL})")


def get_model(model: str = DEFAULT_MODEL, **options: Any):
    """Build the DSPy LM for a model string; options that are None count as not given.

    An option the backend does not take, or a value out of its range, is a one-line ModelError.

    Example: `get_model("local/smollm2-135m-instruct", max_tokens=40)`.
    """
    backend = backend_for(model)
    return backend.build(model, backend.argument(model), **backend.check_options(model, options))


def capabilities(lm_or_model: Any) -> Capabilities:
    """What an LM (or a model string) can do; an LM that no backend owns (a test double) can do nothing special."""
    model = lm_or_model if isinstance(lm_or_model, str) else getattr(lm_or_model, "model", "")
    try:
        return backend_for(str(model)).capabilities
    except ModelError:
        return Capabilities()
