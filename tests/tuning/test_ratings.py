"""Bradley-Terry, bootstrap intervals, the win/tie/loss table, biases and Cohen's kappa on hand-built data."""

import math

import pytest

from extes.tuning.ratings import (
    bradley_terry,
    cohen_kappa,
    length_bias,
    length_controlled_bt,
    length_controlled_ratings,
    position_bias,
    ratings,
    win_tie_loss,
)


def j(unit, a, b, outcome, criterion="overall", **kw):
    return {"unit": unit, "a": a, "b": b, "criterion": criterion, "outcome": outcome, **kw}


def test_bradley_terry_two_players_matches_the_closed_form():
    # 3 wins of x, 1 of y, plus the virtual draw each: the MM fixed point for two players with a prior draw.
    games = [("x", "y", 1.0)] * 3 + [("x", "y", 0.0)]
    r = bradley_terry(["x", "y"], games, iters=2000)
    assert r["x"] > r["y"] and abs((r["x"] + r["y"]) / 2 - 1000) < 1e-6
    px, py = 10 ** ((r["x"] - 1000) / 400), 10 ** ((r["y"] - 1000) / 400)
    # Stationarity of the MM update for x: wins_x = sum n/(px+py) * px + 1/(px+1) * px
    assert math.isclose(3.5, 4 * px / (px + py) + px / (px + 1), rel_tol=1e-6)


def test_bradley_terry_orders_a_chain_and_ties_are_even():
    games = [("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0)] * 2
    r = bradley_terry(["a", "b", "c"], games)
    assert r["a"] > r["b"] > r["c"]
    even = bradley_terry(["a", "b"], [("a", "b", 0.5)] * 5)
    assert abs(even["a"] - even["b"]) < 1e-9


def test_ratings_interval_contains_the_point_and_shrinks_with_more_cards():
    few = [j(u, "a", "b", "a" if u % 3 else "b") for u in range(6)]
    many = [j(u, "a", "b", "a" if u % 3 else "b") for u in range(60)]
    r1, r2 = ratings(few, ["a", "b"], bootstrap=300), ratings(many, ["a", "b"], bootstrap=300)
    for r in (r1, r2):
        assert r["a"]["low"] <= r["a"]["rating"] <= r["a"]["high"]
    assert (r2["a"]["high"] - r2["a"]["low"]) < (r1["a"]["high"] - r1["a"]["low"])


def test_win_tie_loss_counts_either_order():
    js = [j(1, "a", "b", "a"), j(2, "b", "a", "b"), j(3, "a", "b", "tie"), j(4, "b", "a", "a")]
    (row,) = win_tie_loss(js, ["a", "b"], ["overall"])
    assert (row["win"], row["tie"], row["loss"], row["n"]) == (0.5, 0.25, 0.25, 4)


def test_position_and_length_bias():
    js = [j(1, "a", "b", "tie", raw=["A", "A"], position_biased=True, len_a=10, len_b=30),
          j(2, "a", "b", "b", raw=["B", "A"], position_biased=False, len_a=10, len_b=40),
          j(3, "a", "b", "a", raw=["A", "B"], position_biased=False, len_a=50, len_b=10)]
    pb = position_bias(js)
    assert pb["disagreements"] == 1 and pb["rate"] == pytest.approx(1 / 3) or pb["rate"] == 0.333
    assert pb["first_shown_won"] == pytest.approx(4 / 6, abs=1e-3)
    assert length_bias(js)["pearson_r"] > 0.9


def test_cohen_kappa_known_value():
    # Two raters, 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4 (the textbook example).
    x = ["y"] * 25 + ["n"] * 25
    y = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(x, y) == pytest.approx(0.4)


def test_length_control_takes_away_a_win_that_length_alone_bought():
    # The judge follows length alone: the longer reply wins, whoever wrote it, but for one game in seven that it
    # gets the other way round. "long" is the longer in 4 of 5 games.
    js = []
    for u in range(70):
        la, lb = (90, 40) if u % 5 else (30, 80)  # a = long, b = short; every fifth game short is the longer
        longer_won = bool(u % 7)
        js.append(j(u, "long", "short", "a" if (la > lb) == longer_won else "b", len_a=la, len_b=lb))
    plain = ratings(js, ["long", "short"], bootstrap=50)
    lc = length_controlled_ratings(js, ["long", "short"], bootstrap=50)
    assert plain["long"]["rating"] - plain["short"]["rating"] > 100  # the plain ratings credit the writer
    r = lc["ratings"]
    assert abs(r["long"]["rating"] - r["short"]["rating"]) < 0.5 * (plain["long"]["rating"] - plain["short"]["rating"])
    assert lc["length_coef"]["value"] > 2 and lc["length_coef"]["low"] > 0 and lc["n"] == 70


def test_length_control_keeps_a_win_that_length_does_not_explain():
    # "good" wins 9 of 10 games and is the shorter in half of them: quality, not length.
    js = [j(u, "good", "bad", "a" if u % 10 else "b", len_a=40 + 40 * ((u // 2) % 2), len_b=60) for u in range(50)]
    lc = length_controlled_ratings(js, ["good", "bad"], bootstrap=50)
    assert lc["ratings"]["good"]["low"] > lc["ratings"]["bad"]["high"]
    assert abs(lc["length_coef"]["value"]) < 1.5
    ratings_, gamma = length_controlled_bt(["x", "y"], [])
    assert ratings_ == {"x": 1000.0, "y": 1000.0} and gamma == 0.0
    # ties are half a win each way: an even record of ties leaves both at 1000 and no length effect
    even, g = length_controlled_bt(["x", "y"], [("x", "y", 0.5, 0.3), ("x", "y", 0.5, -0.3)])
    assert abs(even["x"] - 1000) < 1e-6 and abs(g) < 1e-6
