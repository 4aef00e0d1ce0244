"""4-bit weights (programs/lm/q4.py): codes recovered exactly from Q4_1/Q8_0 blocks, nothing requantized, cached."""

import pytest
import torch

from extes.programs.lm import q4

pytestmark = pytest.mark.skipif(not q4.available(), reason="this torch build has no int4 CPU kernel")


def q4_1_weight(n=64, k=96, seed=0):
    """A weight built as llama.cpp's Q4_1 would store it: per 32 inputs, w = d * q + m, q in 0..15, both ends used."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (n, k // 32, 32), generator=g)
    q[..., 0], q[..., 1] = 0, 15
    d = torch.rand(n, k // 32, 1, generator=g).half().float() * 0.02
    m = (torch.rand(n, k // 32, 1, generator=g) - 0.5).half().float() * 0.1
    return (d * q + m).reshape(n, k)


def test_recover_is_exact_for_q4_1_and_refuses_anything_else():
    w = q4_1_weight()
    q, scale, lo = q4.recover(w)
    rebuilt = (q.reshape(64, 3, 32).float() * scale[..., None] + lo[..., None]).reshape(64, 96)
    assert torch.equal(rebuilt, w) or (rebuilt - w).abs().max() < 1e-7
    assert q4.recover(torch.randn(64, 96)) is None  # a float weight is never quantized
    nudged = w.clone()
    nudged[3, 5] += 1e-3  # one weight off the 4-bit grid: refused
    assert q4.recover(nudged) is None
    assert q4.recover(torch.randn(64, 90)) is None  # not a multiple of the group


def q8_0_weight(n=64, k=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-127, 128, (n, k // 32, 32), generator=g)
    q[..., 0] = 127
    d = torch.rand(n, k // 32, 1, generator=g).half().float() * 0.01
    return (d * q).reshape(n, k)


def test_q8_0_is_split_exactly_into_two_4bit_parts():
    w = q8_0_weight()
    assert q4.recover(w) is None  # not 4-bit
    (qh, sh, zh), (ql, sl, zl) = q4.recover_q8(w)
    assert qh.min() >= 0 and qh.max() <= 15 and ql.min() >= 0 and ql.max() <= 15
    part = lambda q, s, z: ((q.reshape(64, 3, 32).float() - 8) * s[..., None] + z[..., None]).reshape(64, 96)  # noqa: E731
    assert (part(qh, sh, zh) + part(ql, sl, zl) - w).abs().max() < 1e-6  # fp32 rounding of the sum only
    assert q4.recover_q8(torch.randn(64, 96)) is None
    lin = torch.nn.Linear(96, 64, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    packed = q4.Q4Linear.from_linear(lin)
    x = torch.randn(3, 96)
    ref = torch.nn.functional.linear(x.bfloat16().float(), w)
    assert packed.n_parts == 2 and (packed(x) - ref).abs().max() < 0.02 * ref.abs().max()
    long = torch.randn(q4.PREFILL_ROWS, 96)
    ref_long = torch.nn.functional.linear(long.bfloat16().float(), w)
    assert (packed(long) - ref_long).abs().max() < 0.02 * ref_long.abs().max()


def test_q4_linear_computes_the_same_product():
    w = q4_1_weight()
    lin = torch.nn.Linear(96, 64, bias=True)
    with torch.no_grad():
        lin.weight.copy_(w)
    packed = q4.Q4Linear.from_linear(lin)
    x = torch.randn(5, 7, 96)
    ref = torch.nn.functional.linear(x.bfloat16().float(), w, lin.bias)
    out = packed(x)
    assert out.shape == (5, 7, 64) and out.dtype == x.dtype
    assert (out - ref).abs().max() < 0.02 * ref.abs().max()  # bf16 activations and accumulation
    # the dense path's weight: the codes exactly, the per-group scale and zero in bf16 (as the kernel takes them)
    assert (packed.dense().float() - w).abs().max() < 0.02 * w.abs().max()
    long = torch.randn(2, q4.PREFILL_ROWS, 96)  # many rows: the dense path
    ref_long = torch.nn.functional.linear(long.bfloat16().float(), w, lin.bias)
    assert (packed(long) - ref_long).abs().max() < 0.02 * ref_long.abs().max()


def test_a_prompt_runs_on_the_kept_dense_weight_and_a_decoding_step_on_the_int4_kernel_at_any_batch():
    w = q4_1_weight()
    lin = torch.nn.Linear(96, 64, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    packed = q4.Q4Linear.from_linear(lin)
    step = torch.randn(16, 1, 96)  # 16 sequences, one new position each: a batched decoding step
    alone = torch.cat([packed(step[j:j + 1]) for j in range(16)])
    assert torch.equal(packed(step), alone)  # a sequence's step has the same bits alone or in a batch of 16
    assert "_dense" not in packed.__dict__  # a step never builds the dense weight
    prompt = packed(step.reshape(1, 16, 96))  # the same rows as one prompt of 16 positions: the kept dense weight
    assert "_dense" in packed.__dict__ and packed.nibbles_0.numel() == 0  # kept; the nibbles it came from freed
    assert torch.equal(packed.dense(), packed.dense_cached())
    ref = torch.nn.functional.linear(step.reshape(1, 16, 96).bfloat16().float(), w)
    assert (prompt - ref).abs().max() < 0.02 * ref.abs().max()
    assert torch.equal(packed(step.reshape(1, 16, 96)), prompt)  # deterministic
    short = torch.randn(1, q4.DENSE_ROWS - 1, 96)  # a prompt shorter than DENSE_ROWS stays on the int4 kernel
    assert torch.equal(packed(short), torch.cat([packed(short[:, i:i + 1]) for i in range(short.shape[1])], 1))


@pytest.mark.model
def test_embedded_model_packs_every_decoder_linear_and_caches_them(tmp_path):
    from transformers import AutoModelForCausalLM

    from extes.programs.lm.weights import converted_folder, embedded_gguf

    folder = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    cache = tmp_path / q4.cache_name()
    assert q4.pack_q4(model, cache) == (211, 0)  # 30 layers x 7 Q4_1 linears, and the Q8_0 head
    assert cache.exists()
    again = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert q4.pack_q4(again, cache) == (211, 0)  # from the cache
    for m in (model, again):  # every linear replaced in place, under its own name
        assert m.lm_head.n_parts == 2 and m.model.layers[0].mlp.down_proj.n_parts == 1
        assert isinstance(m.model.layers[7].self_attn.q_proj, q4.Q4Linear)
        assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
    ids = torch.tensor([[1, 504, 3456, 314, 253, 1345, 28, 357, 2579, 11530, 30, 1073]])
    with torch.inference_mode():
        a, b, r = (m.to(torch.bfloat16)(ids).logits.float() for m in (model, again, ref))
        r32 = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()(ids).logits
    assert torch.equal(a, b)
    # Same weights as the GGUF: next-token choices agree with the fp32 model about as well as bf16 does.
    agree_q4 = (a.argmax(-1) == r32.argmax(-1)).float().mean()
    agree_bf16 = (r.argmax(-1) == r32.argmax(-1)).float().mean()
    assert agree_q4 >= agree_bf16 - 0.1 and agree_q4 >= 0.8
    cache.write_bytes(b"not a safetensors file")
    third = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert q4.pack_q4(third, cache) == (211, 0)  # a damaged cache is rebuilt


@pytest.mark.model
def test_merged_adapter_layers_stay_in_floats(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from extes.programs.lm.weights import converted_folder, embedded_gguf

    folder = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    merged = model.merge_and_unload()
    assert q4.pack_q4(merged) == (151, 60)  # q and v of 30 layers moved off the 4-bit grid
