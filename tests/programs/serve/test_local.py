"""`extes serve` on the embedded model: the openai client plain and streamed, concurrent streams in one batch, and
two LoRA adapters on one base selected by the request's `model`."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from extes.programs.safety import SafetyChecker
from extes.programs.serve.app import create_app

pytestmark = pytest.mark.model

MSGS = [{"role": "user", "content": "I failed my exam again and I feel worthless."}]


def _adapter(folder, seed):
    """A tiny LoRA with random (non-zero) weights: cheap, and it changes the replies as a trained one does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from extes.programs.lm.weights import resolve_local

    path, _ = resolve_local("smollm2-135m-instruct")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    peft.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """What `extes serve --engine torch --adapter kind=DIR --adapter brief=DIR` serves: both LoRAs on one copy of
    the base (programs/lm/multi_lora.py)."""
    from extes.commands.serve_cmd import build_engine

    root = tmp_path_factory.mktemp("adapters")
    adapters = {name: _adapter(root / name, seed) for name, seed in (("kind", 1), ("brief", 2))}
    served = build_engine("local/smollm2-135m-instruct", adapters, None, None, None, False, 16, "torch")
    served.checker = SafetyChecker(rules_only=True)
    return served


def test_openai_client_plain_streamed_and_batched(serve, engine):
    from openai import OpenAI

    server = serve(create_app(engine))
    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    plain = client.chat.completions.create(model="smollm2-135m-instruct", messages=MSGS, max_tokens=16)
    text = plain.choices[0].message.content
    assert text and 0 < plain.usage.completion_tokens <= 16 and plain.usage.prompt_tokens > 10

    def streamed(_):
        chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", messages=MSGS, max_tokens=16,
                                                     stream=True))
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip(), chunks[-1].usage

    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(streamed, range(4)))
    # at temperature 0 the streamed, batched pieces join to the plain reply (cut to its last full sentence there)
    assert all(text in s for s, _ in outs) and outs[0][1].completion_tokens == plain.usage.completion_tokens
    stats = engine.models["smollm2-135m-instruct"].hf_model._extes_batcher.stats()
    assert stats["peak_batch"] >= 2


def test_two_adapters_are_selected_by_the_model_field(serve, engine):
    from openai import OpenAI

    server = serve(create_app(engine))
    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    assert {m.id for m in client.models.list().data} == {"smollm2-135m-instruct", "kind", "brief"}
    replies = {name: client.chat.completions.create(model=name, messages=MSGS, max_tokens=12).choices[0].message.content
               for name in ("smollm2-135m-instruct", "kind", "brief")}
    assert len(set(replies.values())) == 3, replies
    again = client.chat.completions.create(model="kind", messages=MSGS, max_tokens=12).choices[0].message.content
    assert again == replies["kind"]
    # one copy of the weights, one batch: requests for the base and both adapters decode together (a new message:
    # the ones above are in the models' call cache; tokens as each alone: tests/programs/lm/test_multi_lora.py)
    models = engine.models
    assert models["kind"].hf_model is models["brief"].hf_model is models["smollm2-135m-instruct"].hf_model
    batcher = models["kind"].hf_model._extes_batcher
    before = batcher.stats()["peak_batch"]
    batcher.peak_batch = 0

    def ask(name):
        messages = [{"role": "user", "content": "My best friend moved away and I feel so alone."}]
        return client.chat.completions.create(model=name, messages=messages, max_tokens=24).choices[0].message.content

    names = ["smollm2-135m-instruct", "kind", "brief"]
    with ThreadPoolExecutor(len(names)) as ex:
        together = list(ex.map(ask, names))
    assert len(set(together)) == 3, together
    assert batcher.stats()["peak_batch"] >= 2, (before, batcher.stats())
