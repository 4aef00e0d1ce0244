"""Strategy proficiency and preference bias on a hand-built fixture, against computations written here."""

import copy
import math

import pytest

from extes.tuning import strategy_metrics as S

LABELS = ["Q", "R", "F", "S"]
# (gold, predicted): the predictor over-uses F.
PAIRS = ([("Q", "Q")] * 5 + [("Q", "F")] * 3 + [("Q", "R")] + [("R", "F")] * 2 + [("R", "R")] + [("F", "F")] * 4
         + [("F", "Q")] + [("F", "S")] + [("S", "F")] * 2 + [("S", "S")] + [("S", "Q")])
GOLD = [g for g, _ in PAIRS]
PRED = [p for _, p in PAIRS]


def reference_preferences(gold, pred, labels, sweeps=20):
    """The authors' procedure, written out again: table[i][j] = times i was predicted where j was gold."""
    k = len(labels)
    table = [[sum(1 for g, p in zip(gold, pred, strict=True) if p == labels[i] and g == labels[j]) for j in range(k)]
             for i in range(k)]
    p = [1.0] * k
    for _ in range(sweeps):
        q = copy.deepcopy(p)
        for i in range(k):
            model = sum(table[i][j] * q[j] / (q[i] + q[j]) for j in range(k) if j != i)
            human = sum(table[j][i] / (q[i] + q[j]) for j in range(k) if j != i)
            q[i] = model / human
        nz = [x for x in q if x > 0]
        g = math.prod(nz) ** (1 / len(nz))
        p = [x / g for x in q]
    return [k * x / sum(p) for x in p]


def test_confusion_and_f1_by_hand():
    scores = S.strategy_scores(GOLD, PRED, LABELS)
    assert scores["confusion"] == [[5, 1, 3, 0], [0, 1, 2, 0], [1, 0, 4, 1], [1, 0, 2, 1]]
    # by hand: Q tp5 gold9 pred7; R tp1 gold3 pred2; F tp4 gold6 pred11; S tp1 gold4 pred2
    f1 = {"Q": 2 * 5 / 16, "R": 2 * 1 / 5, "F": 2 * 4 / 17, "S": 2 * 1 / 6}
    for lab, v in f1.items():
        assert scores["per_strategy"][lab]["f1"] == pytest.approx(100 * v)
    assert scores["accuracy"] == pytest.approx(100 * 11 / 22)
    assert scores["macro_f1"] == pytest.approx(100 * sum(f1.values()) / 4)
    assert scores["weighted_f1"] == pytest.approx(100 * (9 * f1["Q"] + 3 * f1["R"] + 6 * f1["F"] + 4 * f1["S"]) / 22)


def test_f1_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    scores = S.strategy_scores(GOLD, PRED, LABELS)
    assert scores["macro_f1"] == pytest.approx(100 * sk.f1_score(GOLD, PRED, average="macro"))
    assert scores["weighted_f1"] == pytest.approx(100 * sk.f1_score(GOLD, PRED, average="weighted"))
    # a label never gold nor predicted is left out of the macro mean, as scikit-learn does
    labels5 = [*LABELS, "X"]
    assert S.strategy_scores(GOLD, PRED, labels5)["macro_f1"] == pytest.approx(scores["macro_f1"])
    assert S.strategy_scores(GOLD, PRED, labels5)["per_strategy"]["X"]["f1"] is None


def test_bradley_terry_preferences_and_bias():
    scores = S.strategy_scores(GOLD, PRED, LABELS)
    ref = reference_preferences(GOLD, PRED, LABELS)
    prefs = [scores["per_strategy"][lab]["preference"] for lab in LABELS]
    assert prefs == pytest.approx(ref, rel=1e-9)
    assert sum(prefs) == pytest.approx(4)
    assert max(prefs) == prefs[2]  # F, the over-used strategy, is preferred most
    mean = sum(ref) / 4
    assert scores["bias"] == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in ref) / 4))


def test_bradley_terry_converges_to_the_maximum_likelihood():
    counts = S.confusion(GOLD, PRED, LABELS)
    p = S.bt_preferences(counts, sweeps=2000)
    wins = [[counts[j][i] for j in range(4)] for i in range(4)]
    for i in range(4):  # score equations of the BT likelihood: observed wins = expected wins
        expected = sum((wins[i][j] + wins[j][i]) * p[i] / (p[i] + p[j]) for j in range(4) if j != i)
        assert sum(wins[i][j] for j in range(4) if j != i) == pytest.approx(expected, rel=1e-6)


def test_unbiased_predictor_has_no_bias():
    gold = ["Q", "R", "F", "S"] * 3
    pred = ["R", "F", "S", "Q"] * 3  # every strategy wins and loses equally often
    assert S.strategy_scores(gold, pred, LABELS)["bias"] == pytest.approx(0, abs=1e-9)


def test_strategies_never_predicted_get_no_preference():
    # R and S are never predicted in place of another: their strengths fall to 0 (no division by zero)
    scores = S.strategy_scores(["Q", "R", "S", "F", "F"], ["Q", "F", "F", "Q", "F"], LABELS)
    prefs = {lab: v["preference"] for lab, v in scores["per_strategy"].items()}
    assert prefs["R"] == pytest.approx(0, abs=1e-6) and prefs["S"] == pytest.approx(0, abs=1e-6)
    assert sum(prefs.values()) == pytest.approx(4) and scores["bias"] > 1


def test_per_phase():
    positions = [(k % 8 + 1, 8) for k in range(len(GOLD))]  # phase = ceil(4k/8)
    phases = S.by_phase(GOLD, PRED, positions, LABELS)
    for ph in range(1, 5):
        idx = [i for i, (k, n) in enumerate(positions) if math.ceil(4 * k / n) == ph]
        expected = S.strategy_scores([GOLD[i] for i in idx], [PRED[i] for i in idx], LABELS)
        assert phases[str(ph)]["n"] == len(idx) and phases[str(ph)]["macro_f1"] == expected["macro_f1"]


def test_label_outside_the_set_is_named():
    from extes.errors import InputError

    with pytest.raises(InputError, match=r"sample 1: predicted strategy 'Z' is not in the declared label set"):
        S.strategy_scores(["Q", "R"], ["Q", "Z"], LABELS)


def test_confusion_png(tmp_path):
    S.confusion_png(S.strategy_scores(GOLD, PRED, LABELS), tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
