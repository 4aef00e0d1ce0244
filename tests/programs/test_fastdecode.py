"""The lean decode loop (programs/lm/fastdecode.py) against transformers' own forward and generate."""

import pytest
import torch

from extes.programs.lm import fastdecode
from extes.programs.lm.local import LocalLM

pytestmark = pytest.mark.model

CHAT = [{"role": "user", "content": "My dog died last week and I can't stop crying."}]


@pytest.fixture(scope="module", params=["fp32", "auto"])
def lm(request):
    return LocalLM(precision=request.param, max_tokens=40)


def test_step_logits_match_the_full_forward(lm):
    """Teacher-forced: the prompt, then one token at a time, against one transformers forward over it all."""
    model = lm.hf_model
    ids = lm._inputs(CHAT)
    cont = torch.tensor([[40, 1053, 2091, 288, 3365, 338, 30, 378, 314, 2286, 28, 1130, 1023]])
    full = torch.cat([ids, cont], 1)
    dec = fastdecode.LlamaDecoder(model)
    dec._cache(full.shape[1])
    with torch.inference_mode():
        ref = model(full).logits[0, ids.shape[1] - 1:].float()
        ours = [dec.forward(ids, 0)]
        for j in range(cont.shape[1]):
            ours.append(dec.forward(cont[:, j:j + 1], ids.shape[1] + j))
    ours = torch.stack(ours)
    scale = ref.abs().max()
    tol = 1e-3 if lm.precision == "fp32" else 0.03  # bf16 activations: rounding differs by kernel, not by math
    assert (ours - ref).abs().max() <= tol * scale
    assert (ours.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9


def test_greedy_replies_equal_generate_in_fp32(lm):
    if lm.precision != "fp32":
        pytest.skip("token identity is checked in fp32; bf16 near-ties may break either way")
    gen = lm._gen_kwargs({"max_tokens": 40})
    ids = lm._inputs(CHAT)
    with torch.inference_mode():
        ref = lm.hf_model.generate(ids, attention_mask=torch.ones_like(ids), **gen)[0, ids.shape[1]:]
        new = fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen)
    assert torch.equal(ref, new)


def test_local_lm_uses_the_lean_loop_with_stop_and_sampling(lm):
    text, _, n = lm.generate(CHAT, max_tokens=30)
    assert text and 0 < n <= 30 and getattr(lm.hf_model, "_extes_decoder", None) is not None
    cut, _, _ = lm.generate([{"role": "user", "content": "Count: one, two, three, four, five"}], max_tokens=30,
                            stop=["three"])
    assert "three" not in cut
    ids = lm._inputs(CHAT)
    gen = lm._gen_kwargs({"max_tokens": 20, "temperature": 0.9, "top_p": 0.9})
    with torch.inference_mode():
        torch.manual_seed(7)
        a = fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen)
        torch.manual_seed(7)
        b = fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen)
    assert torch.equal(a, b) and len(a) > 0


def test_other_architectures_fall_back_to_generate(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from extes.programs.lm.weights import converted_folder, embedded_gguf

    model = GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_embd=32, n_layer=1, n_head=2, n_positions=64)).eval()
    tok = AutoTokenizer.from_pretrained(converted_folder(embedded_gguf("smollm2-135m-instruct")))
    assert not fastdecode.supports(model) and fastdecode.decoder_for(model) is None
    ids = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        out = fastdecode.new_tokens(model, tok, ids, {"max_new_tokens": 4, "do_sample": False, "min_new_tokens": 4,
                                                      "pad_token_id": 0})
    assert len(out) == 4


def test_streamed_pieces_join_to_the_generated_reply(lm):
    gen = lm._gen_kwargs({"max_tokens": 30})
    ids = lm._inputs(CHAT)
    with torch.inference_mode():
        whole = lm.tokenizer.decode(fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen),
                                    skip_special_tokens=True)
    pieces = list(lm.stream(CHAT, max_tokens=30))
    assert len(pieces) > 3 and "".join(pieces) == whole


def test_length_dependent_rope_is_left_to_generate():
    from transformers import LlamaConfig, LlamaForCausalLM

    small = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1)
    assert fastdecode.supports(LlamaForCausalLM(LlamaConfig(**small)))
    dynamic = LlamaConfig(**small, rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    assert not fastdecode.supports(LlamaForCausalLM(dynamic))
