"""The learned classifier's bounded reading of long texts, calibration and determinism, on a tiny random model."""

import pytest

from extes.programs import safety_classifier as sc


def test_windows_of_a_long_text_are_bounded():
    text = "".join(chr(97 + i % 26) for i in range(100_000))
    parts = sc.windows_of(text)
    assert len(parts) == sc.MAX_WINDOWS and all(len(p) == sc.WINDOW_CHARS for p in parts)
    assert parts[0] == text[:sc.WINDOW_CHARS] and parts[-1] == text[-sc.WINDOW_CHARS:]
    assert sc.windows_of("short") == ["short"]


def test_sweep_point_counts_rule_hits():
    s = sc.sweep_point(0.5, [None, 0.7, 0.2, 0.9], [True, True, True, False], [True, False, False, False])
    assert s["recall"] == round(2 / 3, 4) and s["precision"] == round(2 / 3, 4) and s["fp"] == 1


@pytest.fixture(scope="module")
def tiny_lm():
    """A 2-layer random Llama with a character tokenizer: real forward passes, no weights to load."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    class CharTokenizer:
        def __call__(self, text, return_tensors="pt", truncation=False, max_length=None):
            ids = [ord(c) % 256 for c in text][: max_length if truncation else None]
            return {"input_ids": torch.tensor([ids])}

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512)

    class Tiny:
        model = "tiny-random"
        hf_model = LlamaForCausalLM(cfg).eval()
        tokenizer = CharTokenizer()
        lengths: list[int] = []

    hook = Tiny.hf_model.register_forward_pre_hook(
        lambda mod, args, kwargs: Tiny.lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    yield Tiny
    hook.remove()


def test_a_100000_character_message_costs_bounded_forward_passes(tiny_lm):
    rows = [{"text": t, "crisis": c, "category": cat} for t, c, cat in [
        ("i want to die", True, "suicide"), ("i cut my arm", True, "self_harm"), ("nice day", False, None),
        ("lunch was good", False, None), ("my friend wants to die now", True, "third_party"),
        ("see you tomorrow", False, None)] * 2]
    ext = sc.HiddenStates(tiny_lm)
    a = sc.train(ext, rows, ["x"])
    assert a == sc.train(ext, rows, ["x"])  # deterministic, threshold and sweep included
    assert 0 < a["threshold"] < 1 and a["calibration"]["sweep"]["classifier_alone"]
    clf = sc.SafetyClassifier(a, ext)
    tiny_lm.lengths.clear()
    probs = clf.probabilities("x" * 100_000)
    assert len(tiny_lm.lengths) == sc.MAX_WINDOWS and max(tiny_lm.lengths) <= sc.MAX_TOKENS
    assert abs(sum(probs.values()) - 1) < 1e-4 and set(probs) == set(sc.CLASSES)


def test_feature_cache_reuses_rows(tiny_lm, tmp_path):
    cache = tmp_path / "f.pt"
    ext = sc.HiddenStates(tiny_lm)
    first = sc.cached_features(ext, ["a", "b"], cache)
    tiny_lm.lengths.clear()
    again = sc.cached_features(ext, ["b", "a", "c"], cache)
    assert len(tiny_lm.lengths) == 1  # only "c" was computed
    assert (again[0] == first[1]).all() and (again[1] == first[0]).all()
