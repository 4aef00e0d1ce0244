"""Language-model backends, one model string each, every one usable as a DSPy LM.

| model string | backend |
|---|---|
| `local/<name-or-path>` | `LocalLM`: a Hugging Face causal LM in-process (default `local/smollm2-135m-instruct`) |
| `openai/<model>` | DSPy's LM client (LiteLLM) against OpenAI or any OpenAI-compatible server (`api_base`) |
| `scripted`, `scripted:FILE.json` | `ScriptedLM`: deterministic, for tests and demos |

Each backend declares its prefix, options and capabilities in its own file; the table is `registry.py`, and the
lines below are the only place a backend is added.
"""

from __future__ import annotations

from extes.programs.lm import local, openai_compat, scripted
from extes.programs.lm.registry import DEFAULT_MODEL, backend_for, backends, capabilities, get_model, register

register(local.BACKEND)
register(openai_compat.BACKEND)
register(scripted.BACKEND)

# The name every command has used so far; `get_model` is the registry's own.
load_lm = get_model

__all__ = ["DEFAULT_MODEL", "backend_for", "backends", "capabilities", "get_model", "load_lm", "register"]
