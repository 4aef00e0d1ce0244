import pytest

from extes.corpus.labels import LabelNormalizer, esconv_to_extes, normalizer


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Reflective Statements", "Reflective Statements"),
        ("RS", "Reflective Statements"),
        ("rs", "Reflective Statements"),
        ("reflective statements", "Reflective Statements"),
        ("Reflective Statements (RS)", "Reflective Statements"),
        ("Avoid Judgement and Criticism", "Avoid Judgment and Criticism"),
        ("AJC", "Avoid Judgment and Criticism"),
        ("Promote Self Care Practices", "Promote Self-Care Practices"),
        ("Oth", "Others"),
        ("Other", "Others"),
        ("  Offer Hope ", "Offer Hope"),
    ],
)
def test_extes_variants_map_to_canonical(raw, expected):
    n = normalizer("extes").normalize(raw)
    assert n.known and n.label == expected


def test_unknown_label_is_kept_and_flagged_not_dropped():
    n = normalizer("extes").normalize("Telepathy")
    assert n.label == "Telepathy" and not n.known


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_means_no_strategy(raw):
    n = normalizer("extes").normalize(raw)
    assert n.label is None and n.known


def test_esconv_label_set_is_its_own():
    norm = normalizer("esconv")
    assert norm.normalize("Questions").label == "Question"
    assert norm.normalize("Approval and Reassurance").label == "Affirmation and Reassurance"
    assert norm.normalize("Restatement").label == "Restatement or Paraphrasing"
    assert not norm.normalize("Direct Guidance").known
    # ExTES labels are not ESConv labels.
    assert not norm.normalize("Stress Management").known
    assert len(norm.canonical) == 8


def test_esconv_mapping_onto_extes_is_complete_and_valid():
    mapping = esconv_to_extes()
    assert len(mapping) == 8
    assert set(mapping.values()) <= set(normalizer("extes").canonical)


def test_unknown_label_set():
    with pytest.raises(ValueError, match="unknown label set"):
        LabelNormalizer("nope")
