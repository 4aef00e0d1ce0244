"""Several LoRA adapters on one copy of a base model, chosen per sequence: a batch may mix them.

`extes serve --adapter kind=DIR --adapter brief=DIR` used to load one merged copy of the base per adapter (540 MB
each for SmolLM2-135M in fp32) and decode each adapter in its own batch. Here the base is loaded once and every
adapter's low-rank matrices are kept beside it, as S-LoRA and vLLM's multi-LoRA do: a forward hook on each target
linear adds `scale * B(A x)` for the rows that asked for that adapter, so one decode step serves sequences of the
base and of any number of adapters together (programs/lm/batching.py), and the prefix cache keeps each adapter's
keys and values apart (a chunk's digest starts with the adapter's name).

Which adapter a row uses is set per thread by `routed(...)`: one name for every row (a prompt's prefill, the
scoring of choices) or a tuple with one entry per batch row (a batched decode step), None for the base. Outside
`routed` the hooks add nothing, so the base serves as it did.

The arithmetic is peft's unmerged LoRA forward, `result + lora_B(lora_A(x)) * scaling` (dropout is off in
inference), so a sequence decoded here gets the tokens that the model wrapped by `PeftModel` gives it at
temperature 0 in fp32 (tested, with adapters mixed in one batch). In q4/bf16 (`precision auto` on CPUs with native
bf16) the shared base keeps its 4-bit linears and adds the products in bf16, while a copy of its own merges the
adapter into bf16 weights: the same adapter within rounding, so near-ties may decode differently. Plain LoRA only:
an adapter with DoRA, rank or alpha patterns, trained bias, extra saved modules, or not a LoRA at all (LLaMA-
Adapter) is `not routable` and is loaded on its own copy as before (`routable` says why).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from extes.errors import ModelError

_ROUTE = threading.local()
_ATTACH = threading.Lock()


@contextlib.contextmanager
def routed(names):
    """Within the block, this thread's forwards add adapter `names` (one name, or one per batch row; None: none)."""
    old = getattr(_ROUTE, "names", None)
    _ROUTE.names = names
    try:
        yield
    finally:
        _ROUTE.names = old


def routable(folder: Path) -> str | None:
    """None when the adapter in `folder` can share its base (a plain LoRA), else why it cannot."""
    try:
        cfg = json.loads((Path(folder) / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return "no readable adapter_config.json"
    if cfg.get("peft_type") != "LORA":
        return f"it is a {cfg.get('peft_type')} adapter, not a LoRA"
    for key, why in (("use_dora", "it uses DoRA"), ("rank_pattern", "it has a rank pattern"),
                     ("alpha_pattern", "it has an alpha pattern"), ("modules_to_save", "it saves whole modules"),
                     ("fan_in_fan_out", "its weights are stored fan-in-fan-out"),
                     ("layer_replication", "it replicates layers")):
        if cfg.get(key):
            return why
    if cfg.get("bias", "none") != "none":
        return "it trains biases"
    if not _weights_file(Path(folder)):
        return "no adapter_model.safetensors or adapter_model.bin"
    return None


def _weights_file(folder: Path) -> Path | None:
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (folder / name).exists():
            return folder / name
    return None


def _read(folder: Path) -> dict[str, torch.Tensor]:
    path = _weights_file(folder)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)


class _Hook:
    """The forward hook of one linear: its adapters' (A, B, scaling) by name."""

    def __init__(self):
        self.adapters: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}

    def __call__(self, module, args, output):
        names = getattr(_ROUTE, "names", None)
        if names is None:
            return None
        x = args[0]
        if isinstance(names, str):
            got = self.adapters.get(names)
            if got is None:
                return None
            return output + self._delta(x, got)
        present = [n for n in dict.fromkeys(names) if n is not None and n in self.adapters]
        if not present:
            return None
        if len(present) == 1 and all(n == present[0] for n in names):  # every row the same adapter
            return output + self._delta(x, self.adapters[present[0]])
        out = output.clone()
        for name in present:
            idx = torch.tensor([j for j, n in enumerate(names) if n == name])
            out[idx] = out[idx] + self._delta(x[idx], self.adapters[name])
        return out

    @staticmethod
    def _delta(x, got):
        a, b, scaling = got
        return F.linear(F.linear(x.to(a.dtype), a), b) * scaling


def attach(model, folder: Path, name: str | None = None) -> str:
    """Keep the LoRA in `folder` beside `model`'s weights under `name` (default: the folder's resolved path) and
    return that name; attaching the same name again is a no-op. A one-line ModelError when it does not fit."""
    folder = Path(folder)
    why = routable(folder)
    if why:
        raise ModelError(f"--adapter {folder}: cannot share the base model ({why})")
    name = name or str(folder.resolve())
    cfg = json.loads((folder / "adapter_config.json").read_text())
    r = int(cfg.get("r") or 8)
    alpha = float(cfg.get("lora_alpha") or r)
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    dtype = model.get_input_embeddings().weight.dtype
    weights = _read(folder)
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in weights.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                module = key.split(marker)[0].removeprefix("base_model.model.")
                pairs.setdefault(module, {})[part] = tensor
    if not pairs:
        raise ModelError(f"--adapter {folder}: no LoRA weights in it; give a folder saved by `extes tune`")
    modules = dict(model.named_modules())
    with _ATTACH:
        hooks = getattr(model, "_extes_lora_hooks", None)
        if hooks is None:
            hooks = model._extes_lora_hooks = {}
        if name in getattr(model, "_extes_lora_names", set()):
            return name
        found = {}
        for module_name, ab in pairs.items():
            linear = modules.get(module_name)
            if linear is None or "lora_A" not in ab or "lora_B" not in ab:
                raise ModelError(f"--adapter {folder}: it does not fit this base model (no layer {module_name}); "
                                 "use the base it was trained on")
            a, b = ab["lora_A"], ab["lora_B"]
            out_f, in_f = getattr(linear, "out_features", None), getattr(linear, "in_features", None)
            if a.shape[1] != in_f or b.shape[0] != out_f or a.shape[0] != b.shape[1]:
                raise ModelError(f"--adapter {folder}: it does not fit this base model ({module_name} is "
                                 f"{in_f}->{out_f}, the adapter {a.shape[1]}->{b.shape[0]}); use the base it was "
                                 "trained on")
            found[module_name] = (a.to(dtype).contiguous(), b.to(dtype).contiguous(), scaling)
        for module_name, got in found.items():
            hook = hooks.get(module_name)
            if hook is None:
                hook = hooks[module_name] = _Hook()
                modules[module_name].register_forward_hook(hook)
            hook.adapters[name] = got
        model._extes_lora_names = getattr(model, "_extes_lora_names", set()) | {name}
    from extes.programs.prompt_shape import check_adapter_shape  # lazy: it imports programs.adapter

    check_adapter_shape(folder)
    return name


def attached(model) -> set[str]:
    """The adapter names kept beside `model`."""
    return set(getattr(model, "_extes_lora_names", set()))
