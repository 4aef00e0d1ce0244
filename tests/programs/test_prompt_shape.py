"""The prompt shape is recorded by `extes tune` and checked when an adapter is loaded: one warning on a mismatch."""

import json
import logging
import shutil

import pytest

from extes.corpus.formats import write_corpus
from extes.corpus.seeds import read_seed_folder
from extes.programs.lm.local import LocalLM
from extes.programs.lm.weights import converted_folder, embedded_gguf
from extes.programs.prompt_shape import shape_problem, shape_record
from extes.signatures.support import Respond, RespondWithStrategy
from extes.tuning.sft import prompt_shape
from helpers import tiny_llama


def record(folder, shape):
    folder.mkdir(exist_ok=True)
    (folder / "extes_tune.json").write_text(json.dumps({"config": {}, "result": {}, "prompt_shape": shape}))
    return folder


def test_a_matching_record_passes_and_every_mismatch_is_named(tmp_path):
    assert shape_problem(record(tmp_path / "ok", prompt_shape("strategies"))) is None
    assert "records no prompt shape" in shape_problem(tmp_path)  # an adapter from before the record existed
    other = {**shape_record([RespondWithStrategy], "tagged"), "sha256": "0" * 64}
    assert "not this version's (version 2" in shape_problem(record(tmp_path / "old", other))
    swapped = {**shape_record([Respond], "plain"), "signature": "RespondWithStrategy"}  # the other signature's hash
    assert "RespondWithStrategy prompt shape" in shape_problem(record(tmp_path / "swap", swapped))
    assert "does not serve" in shape_problem(record(tmp_path / "x", {**swapped, "adapter": "ChatAdapter"}))


@pytest.mark.model
def test_tune_records_the_shape_and_a_drifted_adapter_loads_with_one_warning(cli, tmp_path, caplog):
    base = tiny_llama(tmp_path / "tiny", converted_folder(embedded_gguf("smollm2-135m-instruct")), 512)
    write_corpus(read_seed_folder()[:3], tmp_path / "train.jsonl", "jsonl")
    write_corpus(read_seed_folder()[100:101], tmp_path / "valid.jsonl", "jsonl")
    out = tmp_path / "lora"
    code, stdout, err = cli("tune", "lora", "--base", str(base), "--data", tmp_path / "train.jsonl", "--valid",
                            tmp_path / "valid.jsonl", "--max-steps", "2", "--batch-size", "2", "--seq-len", "256",
                            "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["train_samples"] > 3  # one sample per assistant turn, not per dialogue
    saved = json.loads((out / "extes_tune.json").read_text())["prompt_shape"]
    assert saved == prompt_shape("strategies")
    with caplog.at_level(logging.WARNING, logger="extes.programs.prompt_shape"):
        LocalLM(str(base), adapter=str(out), precision="fp32", max_tokens=4)
        # trained and served in one shape: silent
        assert not [r for r in caplog.records if r.name == "extes.programs.prompt_shape"], caplog.text
        drifted = shutil.copytree(out, tmp_path / "drifted")
        meta = json.loads((drifted / "extes_tune.json").read_text())
        meta["prompt_shape"]["sha256"] = "0" * 64
        (drifted / "extes_tune.json").write_text(json.dumps(meta))
        code, stdout, err = cli("reply", "I failed my exam", "-m", f"local/{base}", "--adapter", drifted,
                                "--strategy", "Offer Hope", "--max-tokens", "4", "--json")
        assert code == 0, err  # a warning, not an error: old adapters keep loading
    (warning,) = [r for r in caplog.records if r.name == "extes.programs.prompt_shape"]
    message = warning.getMessage()
    assert str(drifted) in message and "retrain it with this version" in message and "\n" not in message
