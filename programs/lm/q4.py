"""Exact 4-bit weights on CPU for models that came from a 4-bit GGUF (the embedded SmolLM2 is Q4_1).

Decoding a small model on CPU is bound by the bytes of weight read per token. The embedded GGUF stores every
decoder linear as Q4_1: blocks of 32 input weights, each `w = d * q + m` with `q` in 0..15. Loading it through
transformers dequantizes those to floats (and a bf16 cast then rounds them, so bf16 is not even exact). Here the
blocks are recovered from the float weights: in a Q4_1 block the smallest weight has q = 0 and the largest q = 15,
so `m = min`, `d = (max - min) / 15`, `q = round((w - m) / d)`, and the reconstruction is checked to be exact
(`max |d q + m - w| <= tol`). Such a linear becomes a `Q4Linear` on torch's packed int4 CPU kernel
(`_weight_int4pack_mm_for_cpu`, group size 32, `w = (q - 8) * scale + zero`, so scale = d and zero = m + 8 d): the
same weights as the GGUF, a quarter of bf16's bytes. A linear that is not exactly 4-bit (a merged LoRA adapter,
the Q8_0 embedding/output head, any model that was not 4-bit to begin with) keeps its float weights: nothing is
ever quantized lossily. The packed tensors are cached next to the converted weights (keyed by torch version and
CPU capability, since the packed layout may differ), so later loads skip the recovery.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

GROUP = 32


@functools.cache
def available() -> bool:
    """Whether this torch build has the packed int4 CPU kernel (and it runs)."""
    if not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
        return False
    try:
        q = torch.zeros(64, 64, dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
        sz = torch.zeros(64 // GROUP, 64, 2, dtype=torch.bfloat16)
        torch.ops.aten._weight_int4pack_mm_for_cpu(torch.zeros(1, 64, dtype=torch.bfloat16), packed, GROUP, sz)
    except (RuntimeError, NotImplementedError):
        return False
    return True


def recover(weight, group: int = GROUP, rtol: float = 1e-5):
    """(q int32 [N, K], scale [N, K/group], minimum [N, K/group]) if `weight` is exactly 4-bit asymmetric per
    group of `group` input weights (Q4_1), else None."""
    n, k = weight.shape
    if k % group or n % 8:
        return None
    w = weight.detach().float().reshape(n, k // group, group)
    lo, hi = w.amin(-1), w.amax(-1)
    scale = (hi - lo) / 15
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round((w - lo[..., None]) / safe[..., None]).clamp_(0, 15)
    err = (q * scale[..., None] + lo[..., None] - w).abs().amax()
    if float(err) > rtol * max(float(w.abs().amax()), 1e-12):
        return None
    return q.reshape(n, k).to(torch.int32), scale, lo


class Q4Linear(torch.nn.Module):
    """A linear whose weight is packed int4 with a bf16 scale and zero per 32 input weights."""

    def __init__(self, in_features: int, out_features: int, packed, scales_zeros, bias=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("scales_zeros", scales_zeros, persistent=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear, q, scale, lo) -> Q4Linear:
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
        sz = torch.stack([scale, lo + 8 * scale], -1).transpose(0, 1).contiguous()  # [K/group, N, 2]
        return cls(linear.in_features, linear.out_features, packed, sz.to(torch.bfloat16), linear.bias)

    def forward(self, x):
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scales_zeros)
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, q4 group={GROUP}"


def cache_name() -> str:
    """File name of the packed cache for this torch build and CPU."""
    return f"q4-torch{torch.__version__}-{torch.backends.cpu.get_cpu_capability()}.safetensors"


def pack_exact_q4(model, cache: Path | None = None) -> tuple[int, int]:
    """Replace every exactly-4-bit `nn.Linear` (not the output head) with a `Q4Linear`, in place.

    `cache`: a .safetensors file of the packed tensors for this very model (written on the first call, read after;
    give it only for unmodified weights, e.g. not with a merged adapter). Returns (linears packed, kept as floats).
    """
    from safetensors.torch import load_file, save_file

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    linears = [(mod, name, child) for mod in list(model.modules()) for name, child in list(mod.named_children())
               if isinstance(child, torch.nn.Linear) and child is not head]
    names = {id(child): n for n, child in model.named_modules()}
    stored = None
    if cache is not None and Path(cache).exists():
        try:
            stored = load_file(str(cache))
        except Exception as e:  # noqa: BLE001 - SafetensorError and OS errors alike: a damaged cache is rebuilt
            log.warning("q4 cache %s unreadable (%s); rebuilding it", cache, e)
    packed, fresh = 0, {}
    for module, name, child in linears:
        key = names[id(child)]
        if stored is not None:
            if f"{key}.packed" not in stored:
                continue
            new = Q4Linear(child.in_features, child.out_features, stored[f"{key}.packed"],
                           stored[f"{key}.scales_zeros"], child.bias)
        else:
            found = recover(child.weight)
            if found is None:
                continue
            new = Q4Linear.from_linear(child, *found)
            fresh[f"{key}.packed"], fresh[f"{key}.scales_zeros"] = new.packed, new.scales_zeros
        setattr(module, name, new)
        packed += 1
    if stored is None and cache is not None:
        from extes.corpus.atomic import atomic_path

        with atomic_path(cache) as tmp:
            save_file(fresh, str(tmp))
    return packed, len(linears) - packed
