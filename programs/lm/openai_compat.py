"""`openai/<model>`: DSPy's LM client (LiteLLM) against OpenAI or any OpenAI-compatible server (`--api-base`)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import dspy

from extes.corpus.provenance import redact
from extes.errors import ModelError
from extes.programs.lm.registry import Backend, Capabilities, Option, sampling_options


def build(model: str, name: str, *, api_base: str | None = None, **options) -> dspy.LM:
    """The key comes from OPENAI_API_KEY and is never stored; a local server (`api_base`) needs none."""
    key = os.environ.get("OPENAI_API_KEY")
    if not key and not api_base:
        raise ModelError(f"{model} needs OPENAI_API_KEY in the environment (or --api-base for a local server)")
    if api_base:
        check_reachable(api_base)
    # DSPy's cache serves identical calls; callers that need diverse samples pass distinct rollout ids.
    return dspy.LM(model, api_base=api_base, api_key=key or "not-needed", **options)


def check_reachable(api_base: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when nothing listens at `--api-base` (before any compute is spent on a run)."""
    shown = redact(api_base)
    try:
        parts = urlsplit(api_base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise ModelError(f"--api-base {shown}: not a URL ({e}); give one like http://127.0.0.1:8000/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(f"--api-base {shown}: not an http(s) URL; give one like http://127.0.0.1:8000/v1")
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ModelError(f"--api-base {shown}: cannot connect to {parts.hostname}:{port} ({why}); start the server "
                         "there, or fix --api-base") from None


BACKEND = Backend(
    prefix="openai/",
    usage="openai/<model>",
    build=build,
    options=(
        Option("api_base", str, "An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."),
        *sampling_options(max_tokens=None),
        Option("cache", bool, "Serve identical calls from DSPy's cache.", default=True),
        Option("num_retries", int, "LiteLLM's own retries on 429/5xx.", default=2, min=0, max=20),
        Option("timeout", float, "Seconds per request.", min=0.001),
    ),
    capabilities=Capabilities(batched=True),
)
