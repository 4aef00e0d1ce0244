"""Tuning: supervised samples, LoRA on the embedded model (real steps), LLaMA-Adapter and CLM on tiny models."""

import json
import shutil

import pytest

from extes.corpus.formats import write_corpus
from extes.corpus.seeds import read_seed_folder
from extes.programs.lm.weights import converted_folder, embedded_gguf
from extes.tuning.sft import chat_samples, clm_samples


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted_folder(embedded_gguf("smollm2-135m-instruct")))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    seeds = read_seed_folder()
    write_corpus(seeds[:12], d / "train.jsonl", "jsonl")
    write_corpus(seeds[100:103], d / "valid.jsonl", "jsonl")
    return d


def test_labels_cover_assistant_tokens_only(tok):
    d = read_seed_folder()[0]
    (s, *_) = chat_samples([d], tok, max_len=4096)
    trained = tok.decode([t for t in s.labels if t != -100])
    assert "[" + d.turns[1].strategy + "]" in trained if d.turns[1].strategy else d.turns[1].text in trained
    assert d.turns[0].text not in trained and "<|im_start|>user" not in trained
    plain = chat_samples([d], tok, variant="no-strategies", max_len=4096)[0]
    assert "[Reflective" not in tok.decode([t for t in plain.labels if t != -100])
    last = chat_samples([d], tok, max_len=4096, last_turn_only=True)[0]
    assert tok.decode([t for t in last.labels if t != -100]).strip().startswith(
        f"[{d.turns[-1].strategy}]" if d.turns[-1].strategy else d.turns[-1].text[:20])


def test_long_dialogues_are_cut_not_truncated(tok):
    d = read_seed_folder()[0]
    parts = chat_samples([d], tok, max_len=200)
    assert all(len(p.input_ids) <= 200 for p in parts)
    n_assistant = sum(1 for t in d.turns if t.role == "assistant")
    trained = [tok.decode([t for t in p.labels if t != -100]) for p in parts]
    # one sample per reply, each reply whole (its end-of-turn marker trained too), its oldest history dropped
    assert len(parts) == n_assistant and all(t.count("<|im_end|>") == 1 for t in trained)
    assert len(chat_samples([d], tok, max_len=4096)[-1].input_ids) > 200


@pytest.mark.model
def test_lora_on_the_embedded_model_then_reply_with_it(cli, data, tmp_path):
    out = tmp_path / "lora"
    code, stdout, err = cli("tune", "lora", "--data", data / "train.jsonl", "--valid", data / "valid.jsonl",
                            "--variant", "strategies", "--max-steps", "4", "--batch-size", "2", "--seq-len", "192",
                            "--lr", "1e-3", "--out", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert set(r) >= {"valid_loss_before", "valid_loss_after", "train_tokens_per_s", "adapter_bytes"}
    assert r["valid_loss_after"] < r["valid_loss_before"]
    assert 0 < r["adapter_bytes"] < 5_000_000 and (out / "adapter_config.json").exists()
    code, stdout, err = cli("reply", "I failed my exam again", "--adapter", out, "--strategy", "Offer Hope",
                            "--max-tokens", "20", "--json")
    assert code == 0, err
    reply = json.loads(stdout)["reply"]
    assert reply and not reply.startswith("[")


def tiny_llama(folder, tok_src):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tok_src / name).exists():
            shutil.copy(tok_src / name, folder / name)
    return folder


def test_llama_adapter_trains_and_reloads(cli, data, tmp_path):
    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    out = tmp_path / "adapter"
    code, stdout, err = cli("tune", "adapter", "--base", str(base), "--data", data / "train.jsonl", "--max-steps",
                            "3", "--batch-size", "2", "--seq-len", "192", "--adapter-len", "4", "--adapter-layers",
                            "2", "--out", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["method"] == "adapter" and r["trainable_params"] > 0
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(out))
    assert model.peft_config["default"].adapter_len == 4


def test_clm_full_finetuning_of_a_gpt2_model_trains_and_reloads(cli, data, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_embd=64, n_layer=2, n_head=2, n_positions=512)).save_pretrained(
        base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, base / name)
    out = tmp_path / "clm"
    code, stdout, err = cli("tune", "clm", "--base", str(base), "--data", data / "train.jsonl", "--variant",
                            "no-strategies", "--max-steps", "3", "--batch-size", "2", "--seq-len", "192", "--out",
                            out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["method"] == "clm" and r["valid_loss_after"] < r["valid_loss_before"]
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "gpt2"


def test_clm_samples_are_sessions_with_eos(tok):
    d = read_seed_folder()[0]
    (s, *_) = clm_samples([d], tok, max_len=4096)
    text = tok.decode(s.input_ids)
    assert text.count(tok.eos_token) == len(d.turns) and s.labels == s.input_ids


def test_bad_tune_options(cli, data, tmp_path):
    code, _, err = cli("tune", "lora", "--data", data / "train.jsonl", "--lora-r", "0", "--out", tmp_path / "x")
    assert code == 2 and "--lora-r" in err


def test_merge_a_lora_adapter_into_its_base(cli, data, tmp_path):
    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    lora = tmp_path / "lora"
    code, _, err = cli("tune", "lora", "--base", str(base), "--data", data / "train.jsonl", "--max-steps", "2",
                       "--batch-size", "2", "--seq-len", "192", "--checkpoint-layers", "1", "--out", lora)
    assert code == 0, err
    code, out, err = cli("tune", "merge", lora, "--base", str(base), "--out", tmp_path / "merged", "--json")
    assert code == 0, err
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    code, out, err = cli("reply", "hi there", "-m", f"local/{tmp_path / 'merged'}", "--strategy", "Others",
                         "--max-tokens", "5", "--json")
    assert code == 0, err


def test_two_process_ddp_on_cpu(data, tmp_path):
    """`accelerate launch` with two processes on a CPU-only machine (DDP over gloo): ranks agree, one adapter."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "lora"
    import extes

    accelerate = str(Path(sys.executable).parent / "accelerate")
    config = Path(extes.__file__).parent / "tuning" / "accelerate" / "ddp.yaml"  # the shipped config, as documented
    proc = subprocess.run(
        [accelerate, "launch", "--config_file", str(config), "--num_processes", "2", "--main_process_port", str(port),
         "-m", "extes.cli", "tune", "lora",
         "--base", str(base), "--data", str(data / "train.jsonl"), "--max-steps", "3",
         "--batch-size", "2", "--seq-len", "192", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    r = json.loads(line)
    assert r["world_size"] == 2 and r["ranks_agree"] is True
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".safetensors") == ["adapter_model.safetensors"]


def test_resume_from_a_checkpoint_gives_the_same_adapter(cli, data, tmp_path):
    from safetensors.torch import load_file

    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    common = ["--base", str(base), "--data", str(data / "train.jsonl"), "--max-steps", "4", "--batch-size", "2",
              "--seq-len", "192", "--json"]
    code, _, err = cli("tune", "lora", *common, "--out", tmp_path / "straight", "--eval-every", "2")
    assert code == 0, err
    code, out, err = cli("tune", "lora", *common, "--out", tmp_path / "resumed", "--stop-after", "2")
    assert code == 0, err
    assert json.loads(out)["stopped_after"] == 2 and not (tmp_path / "resumed" / "adapter_model.safetensors").exists()
    code, out, err = cli("tune", "lora", *common, "--out", tmp_path / "resumed", "--resume")
    assert code == 0, err
    r = json.loads(out)
    assert r["resumed_from"] == 2
    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    straight = json.loads((tmp_path / "straight" / "extes_tune.json").read_text())["result"]
    assert [h["step"] for h in straight["valid_history"]] == [2]
    code, _, err = cli("tune", "lora", *common, "--out", tmp_path / "none", "--resume")
    assert code == 2 and "--resume" in err


@pytest.mark.parametrize("method", ["lora", "adapter", "clm"])
def test_labelled_loss_equals_transformers_loss(tok, tmp_path, method):
    """The head-only-where-labelled loss is transformers' own causal-LM loss, value and gradients."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from extes.tuning.sft import batches
    from extes.tuning.trainer import TuneConfig, labelled_loss, wrap

    torch.manual_seed(0)
    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    if method == "clm":
        from transformers import AutoModelForCausalLM

        GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_embd=64, n_layer=2, n_head=2, n_positions=512)
                        ).save_pretrained(tmp_path / "m")
        model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "m", src))
    model = wrap(model, TuneConfig(method=method, lora_dropout=0.0, adapter_len=4, adapter_layers=2))
    if method == "adapter":  # peft starts the adapter's gate at zero; open it so that the adapter shapes the loss
        for n, p in model.named_parameters():
            if "adaption_gate" in n:
                p.data.fill_(0.5)
    samples = chat_samples(read_seed_folder()[:3], tok, max_len=200)
    b = next(batches(samples, 3, tok.pad_token_id))
    assert (b["attention_mask"] == 0).any()  # padding present, so the mask matters
    params = [p for p in model.parameters() if p.requires_grad]
    ours = labelled_loss(model)(**b)
    g_ours = torch.autograd.grad(ours, params)
    ref = model(**b).loss
    g_ref = torch.autograd.grad(ref, params)
    assert torch.allclose(ours, ref, atol=1e-5), (float(ours), float(ref))
    assert all(torch.allclose(a, r, atol=1e-6, rtol=1e-4) for a, r in zip(g_ours, g_ref, strict=True))


def test_training_log_lines_and_progress_bar(data, tmp_path):
    """Off a terminal: one log line per interval on stderr; on a terminal (pty): a tqdm bar over the steps too."""
    import subprocess
    import sys

    import pexpect

    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    args = ["-m", "extes.cli", "tune", "lora", "--base", str(base), "--data", str(data / "train.jsonl"),
            "--max-steps", "4", "--batch-size", "2", "--seq-len", "192", "--eval-every", "2"]
    proc = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "a")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("step ")]
    assert [x.split()[1] for x in lines if "loss" in x and "valid" not in x] == ["4/4"]
    assert any(x.startswith("step 2 valid loss") for x in lines)
    assert "lora: valid loss" in proc.stdout and "steps:" not in proc.stderr
    child = pexpect.spawn(sys.executable, [*args, "--out", str(tmp_path / "b"), "--log-every", "2"], timeout=300,
                          encoding="utf-8", dimensions=(24, 200))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before[-2000:]
    assert "steps: 100%" in child.before and "4/4" in child.before and "step 2/4 loss" in child.before


def test_selective_checkpointing_marks_only_the_first_layers(tok, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.modeling_layers import GradientCheckpointingLayer

    from extes.tuning.sft import batches
    from extes.tuning.trainer import TuneConfig, labelled_loss, select_checkpointed_layers, wrap

    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    model = wrap(AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "m", src)), TuneConfig(lora_dropout=0.0))
    b = next(batches(chat_samples(read_seed_folder()[:2], tok, max_len=192), 2, tok.pad_token_id))
    plain = labelled_loss(model)(**b)
    model.activation_checkpointing_enable()
    model.enable_input_require_grads()
    assert select_checkpointed_layers(model, 1) == 1
    flags = [m.gradient_checkpointing for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert flags == [True, False]
    loss = labelled_loss(model)(**b)
    loss.backward()
    assert torch.allclose(loss, plain) and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert TuneConfig(checkpoint_layers=4).gradient_checkpointing is True


def test_labelled_loss_defers_to_transformers_for_soft_capped_heads(tok):
    """Gemma-2 soft-caps its logits; the head-only loss would miss that, so transformers' own loss is used."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from extes.tuning.sft import batches
    from extes.tuning.trainer import labelled_loss

    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, final_logit_softcapping=0.5)
    model = Gemma2ForCausalLM(cfg).eval()
    b = next(batches(chat_samples(read_seed_folder()[:2], tok, max_len=192), 2, tok.pad_token_id))
    with torch.no_grad():
        assert torch.allclose(labelled_loss(model)(**b), model(**b).loss, atol=1e-5)


def test_resume_with_other_data_or_hyperparameters_is_refused(cli, data, tmp_path):
    src = converted_folder(embedded_gguf("smollm2-135m-instruct"))
    base = tiny_llama(tmp_path / "tiny", src)
    common = ["--base", str(base), "--max-steps", "3", "--batch-size", "2", "--seq-len", "192", "--out",
              tmp_path / "run"]
    train = ["--data", str(data / "train.jsonl")]
    code, _, err = cli("tune", "lora", *common, *train, "--stop-after", "1")
    assert code == 0, err
    other = tmp_path / "other.jsonl"
    write_corpus(read_seed_folder()[20:32], other, "jsonl")
    code, _, err = cli("tune", "lora", *common, "--data", other, "--resume")
    assert code == 2 and "data_sha256" in err and "new --out" in err and len(err.splitlines()) == 1, err
    code, _, err = cli("tune", "lora", *common, *train, "--lr", "0.1", "--resume")
    assert code == 2 and "lr" in err, err
    code, _, err = cli("tune", "lora", *common, *train, "--resume")  # the same options still resume
    assert code == 0, err
