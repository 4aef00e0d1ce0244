"""Language-model backends, one model string each, every one usable as a DSPy LM.

| model string | backend |
|---|---|
| `local/<name-or-path>` | `LocalLM`: a Hugging Face causal LM in-process (default `local/smollm2-135m-instruct`) |
| `local/qwen2.5-coder-1.5b-instruct` | the offline teacher (`make teacher`): `TeacherLM` (llama.cpp), else `LocalLM` |
| `openai/<model>` | DSPy's LM client (LiteLLM) against OpenAI or any OpenAI-compatible server (`api_base`) |
| `scripted`, `scripted:FILE.json` | `ScriptedLM`: deterministic, for tests and demos |
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from extes.corpus.provenance import redact
from extes.errors import ModelError
from extes.programs.lm.split_gguf import SPLIT_MODELS, assemble

DEFAULT_MODEL = "local/smollm2-135m-instruct"


def load_lm(model: str = DEFAULT_MODEL, *, adapter: str | None = None, api_base: str | None = None, **kwargs):
    """Build the DSPy LM for a model string. OpenAI keys come from OPENAI_API_KEY and are never stored."""
    if adapter and not model.startswith("local/"):
        raise ModelError(f"--adapter works with local/ models only; {model!r} is not local")
    if adapter and not os.path.isdir(adapter):
        raise ModelError(f"--adapter {adapter}: no such folder; give the folder written by `extes tune`")
    if model.startswith("local/") and _runs_on_llamacpp(model.split("/", 1)[1], adapter):
        from extes.programs.lm.teacher import TeacherLM

        kwargs.pop("precision", None)
        name = model.split("/", 1)[1]
        return TeacherLM(assemble(SPLIT_MODELS[name]), model_id=model, **kwargs)
    if model.startswith("local/"):
        from extes.programs.lm.local import LocalLM

        return LocalLM(model.split("/", 1)[1], adapter=adapter, **kwargs)
    if model == "scripted" or model.startswith(("scripted:", "scripted@")):
        from extes.programs.lm.scripted import ScriptedLM

        return ScriptedLM.from_spec(model)
    if model.startswith("openai/"):
        import dspy

        key = os.environ.get("OPENAI_API_KEY")
        if api_base:
            check_reachable(api_base)
        if not key and not api_base:
            raise ModelError(f"{model} needs OPENAI_API_KEY in the environment (or --api-base for a local server)")
        # DSPy's cache serves identical calls; callers that need diverse samples pass distinct rollout ids.
        return dspy.LM(model, api_base=api_base, api_key=key or "not-needed", cache=kwargs.pop("cache", True),
                       num_retries=kwargs.pop("num_retries", 2), **kwargs)
    raise ModelError(
        f"unknown model {model!r}; use local/<name-or-path> (e.g. {DEFAULT_MODEL}), openai/<model>, or scripted"
    )


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


def _runs_on_llamacpp(name: str, adapter: str | None) -> bool:
    """A split GGUF runs on llama.cpp when it is installed, unless an adapter (a peft folder, which only
    transformers applies) is given or EXTES_LOCAL_BACKEND=transformers asks for the fallback."""
    if name not in SPLIT_MODELS or adapter or os.environ.get("EXTES_LOCAL_BACKEND") == "transformers":
        return False
    from extes.programs.lm.teacher import available

    return available()
