"""4-bit weights on CPU for models that came from a Q4_1/Q8_0 GGUF (the embedded SmolLM2 is one), without
requantizing anything.

Decoding a small model on CPU is bound by the bytes of weight read per token. The embedded GGUF stores every
decoder linear as Q4_1: blocks of 32 input weights, each `w = d * q + m` with `q` in 0..15. Loading it through
transformers dequantizes those to floats. Here the blocks are recovered from the float weights: in a Q4_1 block the
smallest weight has q = 0 and the largest q = 15, so `m = min`, `d = (max - min) / 15`, `q = round((w - m) / d)`,
and the reconstruction is checked to be exact (`max |d q + m - w| <= tol`): the 4-bit codes are the GGUF's own.
Such a linear becomes a `Q4Linear` on torch's packed int4 CPU kernel (`_weight_int4pack_mm_for_cpu`, group size
32, `w = (q - 8) * scale + zero`, so scale = d and zero = m + 8 d), at a quarter of bf16's bytes. One rounding
remains: the kernel takes the per-group scale and zero in bf16 (its fp32 form is ~19x slower), so the effective
weights differ from the GGUF's by bf16 rounding of those two numbers — on SmolLM2 a mean absolute error of 2.6e-4
(bf16-cast weights: 1.7e-4; mean |w| 0.15). A linear that is not on a 4-bit grid (a merged LoRA adapter, any
model that was not 4-bit to begin with) keeps its float weights: nothing is requantized. The output head (the
GGUF's Q8_0 embedding, `w = d * q` with q in -127..127 per 32) is recovered the same way and split into two 4-bit
weights (q = 16 hi + lo), one byte per weight instead of bf16's two. The packed tensors are cached next to the
converted weights (keyed by torch version and CPU capability, since the packed layout may differ), so later loads
skip the recovery.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import torch

from extes.corpus.atomic import atomic_path

log = logging.getLogger(__name__)

GROUP = 32
_KEEP = threading.Lock()  # one thread builds a layer's kept dense weight (Q4Linear.dense_cached)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX-512-BF16 or AMX (Linux /proc/cpuinfo), where bf16 matmuls are fast; elsewhere
    (AVX2 machines, e.g. AMD EPYC without AVX-512) bf16 on the CPU is emulated: a 250-row bf16 linear took 27 ms
    where fp32 took 3.5 ms, and the int4 kernel decoded no faster than fp32 (11.9 vs 14.4 tok/s)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def dense_dtype():
    """The float type the model's non-4-bit parts and long prefills run in: bf16 where native, else fp32."""
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


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


def _groups(weight, group: int):
    """The weight as float groups [N, K/group, group], or None if the kernel cannot take its shape."""
    n, k = weight.shape
    if k % group or n % 8:
        return None
    return weight.detach().float().reshape(n, k // group, group)


def _on_grid(rebuilt, w, rtol: float) -> bool:
    return float((rebuilt - w).abs().amax()) <= rtol * max(float(w.abs().amax()), 1e-12)


def recover(weight, group: int = GROUP, rtol: float = 1e-5):
    """(q int32 [N, K], scale [N, K/group], minimum [N, K/group]) if `weight` is exactly 4-bit asymmetric per
    group of `group` input weights (Q4_1), else None."""
    w = _groups(weight, group)
    if w is None:
        return None
    lo, hi = w.amin(-1), w.amax(-1)
    scale = (hi - lo) / 15
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round((w - lo[..., None]) / safe[..., None]).clamp_(0, 15)
    if not _on_grid(q * scale[..., None] + lo[..., None], w, rtol):
        return None
    return q.reshape(weight.shape).to(torch.int32), scale, lo


def recover_q8(weight, group: int = GROUP, rtol: float = 1e-5):
    """The two 4-bit parts (q4, scale, zero) of an exactly-Q8_0 weight, or None.

    Q8_0: per group of 32, `w = d * q`, q in -127..127, the largest |w| at |q| = 127. With q = 16 hi + lo (lo in
    0..15, hi in -8..7), w = 16 d hi + d lo: two 4-bit weights, each in the kernel's `(q4 - 8) * scale + zero`
    form, read at one byte per weight together (bf16 reads two)."""
    w = _groups(weight, group)
    if w is None:
        return None
    d = w.abs().amax(-1) / 127
    safe = torch.where(d == 0, torch.ones_like(d), d)
    q = torch.round(w / safe[..., None]).clamp_(-127, 127)
    if not _on_grid(q * d[..., None], w, rtol):
        return None
    hi = torch.div(q, 16, rounding_mode="floor")
    lo = q - 16 * hi
    # In the kernel's form (q4 - 8) * scale + zero: hi part q4 = hi + 8, scale 16 d, zero 0; lo part q4 = lo,
    # scale d, zero 8 d.
    return [((hi + 8).reshape(weight.shape).to(torch.int32), 16 * d, torch.zeros_like(d)),
            (lo.reshape(weight.shape).to(torch.int32), d, 8 * d)]


PREFILL_ROWS = 128  # a Q8_0 layer (the head) dequantizes per call from this many rows on (2x faster at 512 rows)
# From this many rows of a prompt on (not a decoding step), a Q4_1 layer runs a dense matmul on its weight
# dequantized once and kept (`Q4Linear.forward`). Measured on 2 AVX-512-BF16 cores (SmolLM2's shapes, 2026-12-02):
# the kept bf16 weight against the int4 kernel at 8 / 16 / 48 / 128 / 320 rows of the 576x1536 MLP linear:
# 0.12 / 0.16 / 0.32 / 0.67 / 1.47 ms against 0.11 / 0.21 / 0.64 / 1.61 / 4.00 ms (dequantizing per call: 1.3-2.6 ms).
DENSE_ROWS = 12


def _part(q, scale, zero):
    """One 4-bit weight, w = (q - 8) * scale + zero per group: (kernel-packed, [K/group, N, 2] bf16 scale and zero,
    plain nibbles [N, K/2] for the dense path)."""
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
    sz = torch.stack([scale, zero], -1).transpose(0, 1).contiguous()  # [K/group, N, 2]
    nibbles = (q[:, 0::2] | (q[:, 1::2] << 4)).to(torch.uint8)
    return packed, sz.to(torch.bfloat16), nibbles


class Q4Linear(torch.nn.Module):
    """A linear whose weight is a sum of 4-bit weights with a bf16 scale and zero per 32 inputs: one part for Q4_1,
    two for Q8_0. A decoding step (one position per sequence, [B, 1, K], whatever the batch) runs on the int4
    kernel, products summed in fp32, so a sequence's step computes the same bits alone or in a batch. A prompt
    ([1, T, K], T > 1, at least `DENSE_ROWS` rows) runs a dense matmul, where the int4 kernel is compute-bound and
    2-3x slower: on a Q4_1 layer against its weight dequantized on the first such call and kept (`dense_cached`:
    +2 bytes per weight, ~210 MB for the embedded model's decoder, the nibbles it came from freed); a Q8_0 layer
    (the embedded model's output head, which a prompt runs on a few rows only) dequantizes per call from
    `PREFILL_ROWS` rows on. Which path a call takes depends only on its input's shape, so a prompt gets the same
    bits cold or through the prefix cache, alone or beside a batch."""

    def __init__(self, in_features: int, out_features: int, parts, bias=None):
        super().__init__()
        self.in_features, self.out_features, self.n_parts = in_features, out_features, len(parts)
        for i, (packed, sz, nibbles) in enumerate(parts):
            self.register_buffer(f"packed_{i}", packed, persistent=False)
            self.register_buffer(f"scales_zeros_{i}", sz, persistent=False)
            self.register_buffer(f"nibbles_{i}", nibbles, persistent=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear) -> Q4Linear | None:
        """The 4-bit form of `linear` (Q4_1: one part, else Q8_0: two parts), or None if it is on neither grid."""
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

    def dense(self):
        """The weight ([N, K], in `dense_dtype()`), from the nibbles (or the kept copy, once there is one)."""
        kept = self.__dict__.get("_dense")
        if kept is not None:
            return kept
        n, k = self.out_features, self.in_features
        w = None
        for i in range(self.n_parts):
            nib, sz = getattr(self, f"nibbles_{i}"), getattr(self, f"scales_zeros_{i}")
            q = torch.stack([nib & 15, nib >> 4], -1).reshape(n, k // GROUP, GROUP).to(dense_dtype())
            scale, zero = sz[..., 0].t()[..., None].to(q.dtype), sz[..., 1].t()[..., None].to(q.dtype)
            part = ((q - 8) * scale + zero).reshape(n, k)
            w = part if w is None else w + part
        return w

    def parts(self):
        return [(getattr(self, f"packed_{i}"), getattr(self, f"scales_zeros_{i}"), getattr(self, f"nibbles_{i}"))
                for i in range(self.n_parts)]

    def dense_cached(self):
        """The dense weight, dequantized on the first call and kept; the nibbles are freed (the kept copy is exact
        to them). One thread builds it (a lock); a thread that arrives meanwhile waits and takes it."""
        kept = self.__dict__.get("_dense")
        if kept is None:
            with _KEEP:
                kept = self.__dict__.get("_dense")
                if kept is None:
                    kept = self.dense()
                    self.__dict__["_dense"] = kept  # a plain attribute: state_dict and .to() skip it
                    for i in range(self.n_parts):
                        setattr(self, f"nibbles_{i}", torch.empty(0, dtype=torch.uint8))
        return kept

    def forward(self, x):
        flat = x.reshape(-1, self.in_features)
        rows = flat.shape[0]
        prompt = x.dim() >= 2 and x.shape[-2] > 1
        if self.n_parts == 1 and prompt and rows >= DENSE_ROWS:
            y = torch.nn.functional.linear(flat.to(dense_dtype()), self.dense_cached())
            y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
            return y if self.bias is None else y + self.bias
        if rows >= PREFILL_ROWS:
            y = torch.nn.functional.linear(flat.to(dense_dtype()), self.dense())
            y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
            return y if self.bias is None else y + self.bias
        flat = flat.to(torch.bfloat16)
        y = None
        for packed, sz, _ in self.parts():
            part = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, packed, GROUP, sz)
            y = part if y is None else y.float() + part.float()
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, 4-bit parts={self.n_parts}"


def cache_name() -> str:
    """File name of the packed cache for this torch build and CPU (v3: Q4_1 and Q8_0 layers, with nibbles)."""
    return f"q4v3-torch{torch.__version__}-{torch.backends.cpu.get_cpu_capability()}.safetensors"


def pack_q4(model, cache: Path | None = None) -> tuple[int, int]:
    """Replace every `nn.Linear` whose weight lies on a Q4_1 or Q8_0 grid with a `Q4Linear`, in place.

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
            parts = [tuple(stored[f"{key}.{kind}_{i}"] for kind in ("packed", "scales_zeros", "nibbles"))
                     for i in range(n_parts)]
            new = Q4Linear(child.in_features, child.out_features, parts, child.bias)
        else:
            new = Q4Linear.from_linear(child)
            if new is None:
                continue
            for i, part in enumerate(new.parts()):
                for kind, tensor in zip(("packed", "scales_zeros", "nibbles"), part, strict=True):
                    fresh[f"{key}.{kind}_{i}"] = tensor
        setattr(module, name, new)
        packed += 1
    if stored is None and cache is not None:
        with atomic_path(cache) as tmp:
            save_file(fresh, str(tmp))
    return packed, len(linears) - packed
