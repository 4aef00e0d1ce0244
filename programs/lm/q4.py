"""Exact 4-bit weights on CPU for models that came from a Q4_1/Q8_0 GGUF (the embedded SmolLM2 is one).

Decoding a small model on CPU is bound by the bytes of weight read per token. The embedded GGUF stores every
decoder linear as Q4_1: blocks of 32 input weights, each `w = d * q + m` with `q` in 0..15. Loading it through
transformers dequantizes those to floats (and a bf16 cast then rounds them, so bf16 is not even exact). Here the
blocks are recovered from the float weights: in a Q4_1 block the smallest weight has q = 0 and the largest q = 15,
so `m = min`, `d = (max - min) / 15`, `q = round((w - m) / d)`, and the reconstruction is checked to be exact
(`max |d q + m - w| <= tol`). Such a linear becomes a `Q4Linear` on torch's packed int4 CPU kernel
(`_weight_int4pack_mm_for_cpu`, group size 32, `w = (q - 8) * scale + zero`, so scale = d and zero = m + 8 d): the
same weights as the GGUF, a quarter of bf16's bytes. A linear that is not exactly 4-bit (a merged LoRA adapter,
any model that was not 4-bit to begin with) keeps its float weights: nothing is ever quantized lossily. The output
head (the GGUF's Q8_0 embedding, `w = d * q` with q in -127..127 per 32) is recovered exactly too and split into
two 4-bit weights (q = 16 hi + lo), one byte per weight instead of bf16's two. The packed tensors are cached next
to the converted weights (keyed by torch version and CPU capability, since the packed layout may differ), so later
loads skip the recovery.
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


def recover_q8(weight, group: int = GROUP, rtol: float = 1e-5):
    """The two 4-bit parts (q4, scale, zero) of an exactly-Q8_0 weight, or None.

    Q8_0: per group of 32, `w = d * q`, q in -127..127, the largest |w| at |q| = 127. With q = 16 hi + lo (lo in
    0..15, hi in -8..7), w = 16 d hi + d lo: two 4-bit weights, each in the kernel's `(q4 - 8) * scale + zero`
    form, read at one byte per weight together (bf16 reads two)."""
    n, k = weight.shape
    if k % group or n % 8:
        return None
    w = weight.detach().float().reshape(n, k // group, group)
    d = w.abs().amax(-1) / 127
    safe = torch.where(d == 0, torch.ones_like(d), d)
    q = torch.round(w / safe[..., None]).clamp_(-127, 127)
    if float((q * d[..., None] - w).abs().amax()) > rtol * max(float(w.abs().amax()), 1e-12):
        return None
    hi = torch.div(q, 16, rounding_mode="floor")
    lo = q - 16 * hi
    # In the kernel's form (q4 - 8) * scale + zero: hi part q4 = hi + 8, scale 16 d, zero 0; lo part q4 = lo,
    # scale d, zero 8 d.
    return [((hi + 8).reshape(n, k).to(torch.int32), 16 * d, torch.zeros_like(d)),
            (lo.reshape(n, k).to(torch.int32), d, 8 * d)]


def _part(q, scale, zero):
    """One packed 4-bit weight: w = (q - 8) * scale + zero per group."""
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
    sz = torch.stack([scale, zero], -1).transpose(0, 1).contiguous()  # [K/group, N, 2]
    return packed, sz.to(torch.bfloat16)


class Q4Linear(torch.nn.Module):
    """A linear whose weight is a sum of packed 4-bit weights with a bf16 scale and zero per 32 inputs: one part for
    Q4_1, two for Q8_0. Products are summed in fp32."""

    def __init__(self, in_features: int, out_features: int, parts, bias=None):
        super().__init__()
        self.in_features, self.out_features, self.n_parts = in_features, out_features, len(parts)
        for i, (packed, sz) in enumerate(parts):
            self.register_buffer(f"packed_{i}", packed, persistent=False)
            self.register_buffer(f"scales_zeros_{i}", sz, persistent=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear) -> Q4Linear | None:
        """The exact 4-bit form of `linear` (Q4_1: one part, else Q8_0: two parts), or None."""
        found = recover(linear.weight)
        if found is not None:
            q, scale, lo = found
            parts = [_part(q, scale, lo + 8 * scale)]
        else:
            split = recover_q8(linear.weight)
            if split is None:
                return None
            parts = [_part(q, scale, zero) for q, scale, zero in split]
        return cls(linear.in_features, linear.out_features, parts, linear.bias)

    def parts(self):
        return [(getattr(self, f"packed_{i}"), getattr(self, f"scales_zeros_{i}")) for i in range(self.n_parts)]

    def forward(self, x):
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = None
        for packed, sz in self.parts():
            part = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, packed, GROUP, sz)
            y = part if y is None else y.float() + part.float()
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, 4-bit parts={self.n_parts}"


def cache_name() -> str:
    """File name of the packed cache for this torch build and CPU (v2: Q4_1 and Q8_0 layers)."""
    return f"q4v2-torch{torch.__version__}-{torch.backends.cpu.get_cpu_capability()}.safetensors"


def pack_exact_q4(model, cache: Path | None = None) -> tuple[int, int]:
    """Replace every exactly-4-bit or exactly-8-bit (Q4_1 / Q8_0 blocks) `nn.Linear` with a `Q4Linear`, in place.

    `cache`: a .safetensors file of the packed tensors for this very model (written on the first call, read after;
    give it only for unmodified weights, e.g. not with a merged adapter). Returns (linears packed, kept as floats).
    """
    from safetensors.torch import load_file, save_file

    linears = [(mod, name, child) for mod in list(model.modules()) for name, child in list(mod.named_children())
               if isinstance(child, torch.nn.Linear)]
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
            n_parts = sum(1 for k in stored if k.startswith(f"{key}.packed_"))
            if not n_parts:
                continue
            new = Q4Linear(child.in_features, child.out_features,
                           [(stored[f"{key}.packed_{i}"], stored[f"{key}.scales_zeros_{i}"]) for i in range(n_parts)],
                           child.bias)
        else:
            new = Q4Linear.from_linear(child)
            if new is None:
                continue
            for i, (p, sz) in enumerate(new.parts()):
                fresh[f"{key}.packed_{i}"], fresh[f"{key}.scales_zeros_{i}"] = p, sz
        setattr(module, name, new)
        packed += 1
    if stored is None and cache is not None:
        from extes.corpus.atomic import atomic_path

        with atomic_path(cache) as tmp:
            save_file(fresh, str(tmp))
    return packed, len(linears) - packed
