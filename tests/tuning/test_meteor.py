"""The fast METEOR (tuning/meteor.py) against NLTK's own meteor_score and WordNet reader, on real ESConv text."""

import pytest

from extes.tuning import meteor as F
from extes.tuning.metrics import tokenize_all


@pytest.fixture(scope="module")
def nltk_wordnet():
    from nltk.corpus import wordnet

    from extes.tuning.wordnet import ensure_wordnet

    ensure_wordnet()
    return wordnet


def test_fast_meteor_equals_nltk_on_real_esconv_pairs(esconv_pairs, nltk_wordnet, monkeypatch):
    from nltk.translate.meteor_score import meteor_score

    h, r = (tokenize_all(x) for x in esconv_pairs)
    direct = [meteor_score([b], a, wordnet=nltk_wordnet) for a, b in zip(h, r, strict=True)]
    assert F.meteor_scores(h, r, workers=1) == direct  # equal floats, not close ones
    monkeypatch.setattr(F, "POOL_MIN_PAIRS", 10)
    assert F.meteor_scores(h, r, workers=2) == direct  # the process pool keeps the order
    assert 0 < sum(direct) and sum(s == 0 for s in direct) < len(direct)


def test_synonym_sets_equal_nltk_wordnet(esconv_pairs, nltk_wordnet):
    from nltk.stem.porter import PorterStemmer

    table, stem = F.wordnet_table(), PorterStemmer().stem
    words = sorted({stem(w) for t in tokenize_all(esconv_pairs[0] + esconv_pairs[1]) for w in t})
    words += ["geese", "better", "worst", "ran", "boxes", "women", "flies", "leaves", "churches"]  # exceptions, rules
    for w in words:
        theirs = {lem.name() for ss in nltk_wordnet.synsets(w) for lem in ss.lemmas() if "_" not in lem.name()}
        assert table.synonyms(w) == theirs | {w}, w
    assert "goose" in table.synonyms("geese") and "sad" in table.synonyms("sad")


def test_morphology_rules_are_nltks():
    from nltk.corpus.reader.wordnet import POS_LIST, WordNetCorpusReader

    theirs = WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS
    assert tuple(POS_LIST) == F.POS_LIST
    assert {p: tuple(theirs[p]) for p in F.POS_LIST} == F.SUBSTITUTIONS


def test_table_is_cached_and_survives_a_damaged_file(tmp_path, monkeypatch):
    """The pickle exists after first use; a truncated one is read as missing (rebuilt), never crashes."""
    F.wordnet_table()
    assert F.table_path().exists()
    damaged = tmp_path / "wordnet.pkl"
    damaged.write_bytes(F.table_path().read_bytes()[:1000])
    built = []
    monkeypatch.setattr(F, "table_path", lambda: damaged)
    monkeypatch.setattr(F.WordNetTable, "build", classmethod(lambda cls: built.append(1) or cls({}, [], {})))
    F.wordnet_table.cache_clear()
    try:
        assert F.wordnet_table().index == {} and built == [1]
        F.wordnet_table.cache_clear()
        assert F.wordnet_table().index == {} and built == [1]  # the rebuilt table was written and read back
    finally:
        F.wordnet_table.cache_clear()


def test_edge_cases_match_nltk(nltk_wordnet):
    from nltk.translate.meteor_score import meteor_score

    m = F.Meteor()
    cases = [([], ["a"]), (["a"], []), (["x"], ["y"]), (["the", "cat", "sat"], ["the", "cat", "sat"]),
             (["a", "big", "house"], ["a", "large", "house"]), (["Sad", "dogs"], ["sad", "dog"]),
             (["a", "a", "b", "a"], ["b", "a", "a"])]
    for h, r in cases:
        assert m.score(h, r) == meteor_score([r], h, wordnet=nltk_wordnet), (h, r)
