"""Language-model backends, one model string each, every one usable as a DSPy LM.

Each backend lives in its own module, which says in its docstring how its model string is written
(`local/<name-or-path>`, `openai/<model>`, `scripted`, ...) and defines its `BACKEND`: prefix, options with types
and ranges, capabilities. The table is `registry.py`; the `register(...)` lines below are the only place a backend
is added, and `backends()` lists them (the "unknown model" error names every model string there is).
"""

from __future__ import annotations

from extes.programs.lm import llamacpp, local, openai_compat, scripted
from extes.programs.lm.registry import DEFAULT_MODEL, backend_for, backends, capabilities, get_model, register

register(local.BACKEND)
register(openai_compat.BACKEND)
register(scripted.BACKEND)
register(llamacpp.BACKEND)

# The name every command has used so far; `get_model` is the registry's own.
load_lm = get_model

__all__ = ["DEFAULT_MODEL", "backend_for", "backends", "capabilities", "get_model", "load_lm", "register"]
