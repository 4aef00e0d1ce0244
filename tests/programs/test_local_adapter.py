"""`--adapter` errors with tiny random LLaMA models built in the test (no downloads)."""

import shutil

import pytest

from extes.errors import ModelError
from extes.programs.lm.local import LocalLM
from extes.programs.lm.weights import converted_folder, embedded_gguf


def tiny_llama(folder, hidden):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=49152, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (src / name).exists():
            shutil.copy(src / name, folder / name)
    return folder


def lora_for(base_folder, out):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_folder),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(out)
    return out


@pytest.mark.model
def test_adapter_for_another_base_is_a_one_line_error(tmp_path):
    base = tiny_llama(tmp_path / "base64", 64)
    other = tiny_llama(tmp_path / "base32", 32)
    good = lora_for(base, tmp_path / "lora64")
    bad = lora_for(other, tmp_path / "lora32")
    lm = LocalLM(str(base), adapter=str(good), max_tokens=4)
    assert lm.generate([{"role": "user", "content": "hi"}])[2] <= 4
    with pytest.raises(ModelError, match="does not fit this base model"):
        LocalLM(str(base), adapter=str(bad))
    with pytest.raises(ModelError, match="no adapter_config.json"):
        LocalLM(str(base), adapter=str(tmp_path))
