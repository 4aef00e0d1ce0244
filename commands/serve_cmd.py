"""`extes serve`: an OpenAI-compatible server (and a web chat page) for a model, its adapters or a program."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import click

from extes.commands.common import api_base_option, locale_option
from extes.errors import InputError
from extes.programs.lm import DEFAULT_MODEL, load_lm
from extes.programs.lm.llamacpp import INSTALL_HINT as LLAMACPP_HINT
from extes.programs.lm.weights import EMBEDDED

ENGINES = ("auto", "llamacpp", "torch")


def parse_adapters(specs: tuple[str, ...]) -> dict[str, Path]:
    """`NAME=DIR` options → {name: folder}, or a one-line error naming the bad option."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise InputError(f"--adapter {spec!r}: write NAME=DIR, e.g. --adapter kind=runs/lora-kind")
        if name in out:
            raise InputError(f"--adapter {name}: given twice; give each adapter its own name")
        if not Path(folder).is_dir():
            raise InputError(f"--adapter {spec}: no such folder {folder}; give a folder written by `extes tune`")
        out[name.strip()] = Path(folder)
    return out


def served_name(model: str) -> str:
    """The name a client asks for: the model id without its backend (`local/`, `openai/`) or scripted options."""
    if model.startswith(("local/", "openai/")):
        return Path(model.split("/", 1)[1]).name or model
    return model.split("@", 1)[0].split(":", 1)[0]


def llamacpp_model(model: str, adapters: dict[str, Path], engine: str = "auto") -> str | None:
    """`llamacpp/<name>` when llama.cpp's continuous batcher should serve `model` (programs/lm/llamacpp_batch.py),
    else None (the torch batcher). `auto`: for an embedded `local/` model without adapters, when the llamacpp
    extra is installed (on a 2-core AVX2 CPU its Q4_1 kernels decode ~4x faster than the torch loop in fp32)."""
    name = model.split("/", 1)[1] if model.startswith("local/") else None
    if engine == "torch":
        return None
    fits = name in EMBEDDED and not adapters
    if engine == "llamacpp" and not fits:
        raise InputError(f"--engine llamacpp serves an embedded local/ model without --adapter (got {model!r}"
                         f"{' with adapters' if adapters else ''}); use --engine torch")
    if not fits:
        return None
    if importlib.util.find_spec("llama_cpp") is None:
        if engine == "llamacpp":
            raise InputError(f"--engine llamacpp needs llama-cpp-python; install it with: {LLAMACPP_HINT}")
        return None
    return f"llamacpp/{name}"


def build_engine(model: str, adapters: dict[str, Path], program: Path | None, api_base: str | None,
                 locale: str | None, log_messages: bool, max_tokens: int, engine: str = "auto",
                 adapter_copies: bool = False, prefix_reuse: bool = True):
    """Load the base model, every adapter and the program; check all before serving. A plain LoRA rides on the one
    copy of the base (programs/lm/multi_lora.py): requests for the base and any adapters decode in one batch; other
    adapters (LLaMA-Adapter, DoRA), or all with `adapter_copies`, get their own copy."""
    from extes.programs.serve.engine import Engine  # lazy: programs.serve.engine imports dspy
    from extes.programs.supporter import load_supporter

    if adapters and not model.startswith("local/"):
        raise InputError(f"--adapter needs a local/ base model; {model!r} is not local")
    kwargs = {"max_tokens": max_tokens} if model.startswith("local/") else {}
    on_llamacpp = llamacpp_model(model, adapters, engine)
    if not prefix_reuse and not on_llamacpp:
        raise InputError("--no-prefix-reuse applies to llama.cpp's batcher (the embedded model without --adapter, "
                         "with llama-cpp-python installed); drop it or use --engine llamacpp")
    if on_llamacpp:
        models = {served_name(model): load_lm(on_llamacpp, batched=True, prefix_reuse=prefix_reuse, **kwargs)}
    else:
        models = {served_name(model): load_lm(model, api_base=api_base, **kwargs)}
    for name, folder in adapters.items():
        models[name] = load_lm(model, adapter=str(folder), share_base=not adapter_copies, **kwargs)
    supporter = load_supporter(program) if program else None
    return Engine(models, program=supporter, locale=locale, log_messages=log_messages)


@click.command("serve")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="The base model: local/<name-or-path>, openai/<model> or scripted.")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=DIR",
              help="A LoRA adapter on the base, served as model NAME (repeatable).")
@click.option("--program", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A compiled or distilled Supporter (JSON): every request is answered with a strategy.")
@api_base_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--api-key", envvar="EXTES_API_KEY", help="Require `Authorization: Bearer KEY` on /v1 (or set "
              "EXTES_API_KEY); never logged.")
@locale_option
@click.option("--max-tokens", default=160, show_default=True, help="Default longest reply, in tokens.")
@click.option("--adapter-copies", is_flag=True,
              help="Give each --adapter its own copy of the base (merged where the precision allows) instead of "
              "sharing one: more memory, and each adapter decodes in its own batch.")
@click.option("--log-messages", is_flag=True, help="Put the user's message text into crisis-event log lines.")
@click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True, envvar="EXTES_SERVE_ENGINE",
              help="Batched decoder of a local model: llama.cpp's (auto: for the embedded model without adapters, "
              "when llama-cpp-python is installed) or extes's torch loop (or set EXTES_SERVE_ENGINE).")
@click.option("--no-prefix-reuse", "no_prefix_reuse", is_flag=True,
              help="llama.cpp's batcher: prefill every prompt whole instead of starting from an earlier prompt's "
              "cells (slower; a conversation's greedy replies then match a fresh run's token for token).")
def serve(model, adapters, program, api_base, host, port, api_key, locale, max_tokens, adapter_copies, log_messages,
          engine, no_prefix_reuse) -> None:
    """Serve MODEL behind an OpenAI-compatible API (POST /v1/chat/completions, plain or streamed; GET /v1/models;
    GET /health) and a web chat page at /.

    Every user message passes the crisis layer before any model call; a crisis gets the fixed escalation message
    (events are logged without the message text unless --log-messages). Concurrent requests on a local model
    decode together in one batch, LoRA adapters included (one copy of the base, each sequence with its own
    adapter; the embedded model without adapters on llama.cpp's continuous
    batcher when llama-cpp-python is installed; --engine torch for extes's own loop). The request's `model` picks
    the base or an adapter by NAME; the `extes` extension field asks for the Supporter ({"supporter": true} or
    {"strategy": "Suggest Options"}) and the reply carries the chosen strategy in `extes.strategy`. SIGTERM
    finishes the requests in flight, then exits.

    \b
    Examples:
      extes serve
      extes serve -m scripted --port 8123
      extes serve --engine torch
      extes serve --adapter kind=runs/lora-kind --adapter brief=runs/lora-brief --api-key s3cret
      extes reply "I failed my exam" -m openai/smollm2-135m-instruct --api-base http://127.0.0.1:8000/v1
    """
    from extes.programs.serve.app import create_app, run  # lazy: programs.serve.app imports dspy

    if not 0 < port < 65536:
        raise InputError(f"--port {port}: give a port between 1 and 65535")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        click.echo(f"warning: binding {host} without --api-key: anyone who can reach it can use the model", err=True)
    served = build_engine(model, parse_adapters(adapters), program, api_base, locale, log_messages, max_tokens,
                          engine, adapter_copies, prefix_reuse=not no_prefix_reuse)
    app = create_app(served, api_key=api_key)
    click.echo(f"extes serve: {', '.join(served.models)} on http://{host}:{port} (pid {os.getpid()})", err=True)
    run(app, host, port)
