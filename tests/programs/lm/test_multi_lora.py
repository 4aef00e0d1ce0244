"""Several LoRA adapters on one copy of the embedded model (programs/lm/multi_lora.py): sequences of the base and of
two adapters decode in one batch with exactly the tokens that peft's own wrapped copy gives each alone (fp32,
temperature 0), the prefix cache keeps each adapter's keys apart, scoring and perplexity go through the adapter,
and adapters that cannot share the base say why."""

import json

import pytest
import torch

from extes.errors import ModelError
from extes.programs.lm import fastdecode, multi_lora
from extes.programs.lm.local import LocalLM
from tests.programs.lm.test_prefix_cache import HISTORY, REPLY
from tests.programs.test_local_adapter import lora_for, tiny_llama

pytestmark = pytest.mark.model

# a conversation long enough that its prompt is prefilled in several chunks the prefix cache keeps
CHAT = [{"role": t["role"], "content": t["text"]} for t in HISTORY]
SHORT = [{"role": "user", "content": "Work is overwhelming and I can't sleep."}]


def random_lora(folder, seed, targets=("q_proj", "v_proj", "down_proj")):
    """A LoRA with random (non-zero) weights on the embedded model: it changes the replies as a trained one does."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from extes.programs.lm.weights import resolve_local

    path, _ = resolve_local("smollm2-135m-instruct")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets),
                                            init_lora_weights=False))
    peft.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {"kind": random_lora(root / "kind", 1), "brief": random_lora(root / "brief", 2)}


def _alone(lm, messages, max_tokens=20):
    """Greedy tokens of one chat through the single-sequence loop (peft's wrapped model for an own-copy adapter)."""
    ids = lm._inputs(messages)
    gen = lm._gen_kwargs({"max_tokens": max_tokens})
    with torch.inference_mode():
        return fastdecode.new_tokens(lm.hf_model, lm.tokenizer, ids, gen).tolist()


def test_mixed_batch_is_token_identical_to_each_adapter_alone(adapters):
    base = LocalLM(precision="fp32", max_tokens=20)
    shared = {name: LocalLM(adapter=str(d), share_base=True, precision="fp32", max_tokens=20)
              for name, d in adapters.items()}
    assert all(lm.hf_model is base.hf_model for lm in shared.values())  # one copy of the weights
    assert all(lm.route for lm in shared.values()) and base.route is None
    refs = {}
    for name, d in adapters.items():
        own = LocalLM(adapter=str(d), precision="fp32", max_tokens=20)  # peft's PeftModel on its own copy
        assert own.hf_model is not base.hf_model and own.route is None
        refs[name] = [_alone(own, CHAT), _alone(own, SHORT)]
    refs["base"] = [_alone(base, CHAT), _alone(base, SHORT)]
    assert len({tuple(r[0]) for r in refs.values()}) == 3  # the adapters change the replies

    # The base first, so that its chunks of CHAT are in the prefix cache when the adapters' prompts arrive: an
    # adapter that reused them would get the base's keys and values, and other tokens.
    views = {"base": base, **shared}
    batcher = base.hf_model._extes_batcher if hasattr(base.hf_model, "_extes_batcher") else None
    from extes.programs.lm.batching import batcher_for

    batcher = batcher or batcher_for(base.hf_model, base.tokenizer)
    reqs = []
    for messages in (CHAT, SHORT):
        for name, lm in views.items():
            ids = lm._inputs(messages)
            plan = batcher.plan(ids, lm._gen_kwargs({"max_tokens": 20}))
            reqs.append((name, messages is CHAT, batcher.submit(ids, plan, lm.route)))
    for name, is_chat, req in reqs:
        assert req.result().tolist() == refs[name][0 if is_chat else 1], name
    assert batcher.stats()["peak_batch"] >= 3  # base and both adapters decoded together
    # through the LM's own entry points too
    text, _, n = shared["kind"].generate(SHORT, max_tokens=20)
    assert n == len(refs["kind"][1]) and text


def test_scores_and_perplexity_go_through_the_adapter(adapters):
    from extes.tuning.perplexity import reply_nll

    base = LocalLM(precision="fp32")
    own = LocalLM(adapter=str(adapters["kind"]), precision="fp32")
    shared = LocalLM(adapter=str(adapters["kind"]), share_base=True, precision="fp32")
    labels = ["Reflective Statements", "Suggest Options", "Emotional Validation"]
    want = own.score_choices(CHAT, labels)
    assert shared.score_choices(CHAT, labels) == pytest.approx(want, abs=1e-4)
    assert base.score_choices(CHAT, labels) != pytest.approx(want, abs=1e-3)
    history, reply = HISTORY, REPLY
    nll_own, n = reply_nll(own, history, reply)
    nll_shared, m = reply_nll(shared, history, reply)
    nll_base, _ = reply_nll(base, history, reply)
    assert n == m and nll_shared == pytest.approx(nll_own, rel=1e-4)
    assert abs(nll_base - nll_own) > 1e-2


def test_adapters_that_cannot_share_say_why(tmp_path):
    base = tiny_llama(tmp_path / "base64", 64)
    other = tiny_llama(tmp_path / "base32", 32)
    bad = lora_for(other, tmp_path / "lora32")
    lm = LocalLM(str(base), precision="fp32")
    with pytest.raises(ModelError, match="does not fit this base model"):
        multi_lora.attach(lm.hf_model, bad)
    dora = lora_for(base, tmp_path / "dora")
    cfg = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    assert multi_lora.routable(dora) == "it uses DoRA"
    with pytest.raises(ModelError, match="cannot share the base model"):
        multi_lora.attach(lm.hf_model, dora)
    prompt = tmp_path / "prompt"
    prompt.mkdir()
    (prompt / "adapter_config.json").write_text(json.dumps({"peft_type": "ADAPTION_PROMPT"}))
    assert "not a LoRA" in multi_lora.routable(prompt)
    good = lora_for(base, tmp_path / "lora64")
    name = multi_lora.attach(lm.hf_model, good)
    assert multi_lora.attach(lm.hf_model, good) == name and multi_lora.attached(lm.hf_model) == {name}
