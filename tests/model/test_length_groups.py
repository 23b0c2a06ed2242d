"""Length groups and the worst group on hand-built data (length independent of / confounded with the label)."""

import math

import numpy as np

from prefloop.model.length_groups import (
    GROUPS,
    MIN_GROUP,
    NEAR_EQUAL,
    assign_groups,
    flat_group_metrics,
    group_metrics,
)


def test_assign_groups_by_hand() -> None:
    y = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.0])
    la = np.array([200.0, 50.0, 200.0, 50.0, 100.0, 10.0, 0.0])
    lb = np.array([100.0, 100.0, 100.0, 100.0, 100.0 * (1 - NEAR_EQUAL), 500.0, 0.0])
    groups = assign_groups(y, la, lb)
    assert list(groups) == [
        "chosen_longer",  # a chosen, a longer
        "chosen_shorter",  # a chosen, a shorter
        "chosen_shorter",  # b chosen, b shorter
        "chosen_longer",  # b chosen, b longer
        "near_equal",  # 10 % apart: the bound is inside
        "tie",
        "near_equal",  # two empty responses
    ]


def _biased_model(y: np.ndarray, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """P(a ≻ b) of a pure length detector: the longer response wins, with confidence."""
    return np.where(la > lb, 0.8, 0.2)


def test_confounded_lengths_flag_a_length_detector() -> None:
    # the shorter answer is chosen in 70 % of pairs; the length detector learned "longer wins"
    # on other data and is right only on the chosen-longer pairs
    n_short, n_long = 70, 30
    y = np.ones(n_short + n_long)
    la = np.concatenate([np.full(n_short, 50.0), np.full(n_long, 300.0)])
    lb = np.concatenate([np.full(n_short, 300.0), np.full(n_long, 50.0)])
    m = group_metrics(_biased_model(y, la, lb), y, la, lb)
    g = m["groups"]
    assert g["chosen_shorter"]["n"] == n_short and g["chosen_longer"]["n"] == n_long
    assert g["chosen_shorter"]["accuracy"] == 0.0 and g["chosen_longer"]["accuracy"] == 1.0
    assert math.isclose(g["chosen_shorter"]["share"], n_short / (n_short + n_long))
    assert g["near_equal"]["n"] == 0 and g["near_equal"]["accuracy"] is None
    assert m["worst_group"] == "chosen_shorter" and m["worst_group_accuracy"] == 0.0
    assert m["length_bias_flag"] is True
    overall = float(((_biased_model(y, la, lb) > 0.5) == (y == 1)).mean())
    assert m["worst_group_accuracy"] < overall - 0.2  # worst group ≪ overall


def test_independent_lengths_no_flag_and_intervals_cover() -> None:
    # lengths drawn independently of the label; a content model right 80 % of the time in every group
    rng = np.random.default_rng(1)
    n = 900
    y = (rng.uniform(size=n) < 0.5).astype(float)
    la, lb = rng.integers(20, 400, n).astype(float), rng.integers(20, 400, n).astype(float)
    right = rng.uniform(size=n) < 0.8
    q = np.where(right == (y == 1), 0.7, 0.3)
    m = group_metrics(q, y, la, lb)
    assert m["length_bias_flag"] is False
    assert sum(m["groups"][g]["n"] for g in GROUPS) == n
    assert math.isclose(sum(m["groups"][g]["share"] for g in GROUPS), 1.0)
    for name in GROUPS:
        row = m["groups"][name]
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
        assert row["ci_low"] > 0.5 and abs(row["accuracy"] - 0.8) < 0.1
    eligible = [g for g in GROUPS if m["groups"][g]["n"] >= MIN_GROUP]
    assert m["worst_group_accuracy"] == min(m["groups"][g]["accuracy"] for g in eligible)
    assert m["worst_group_ci_low"] <= m["worst_group_accuracy"] <= m["worst_group_ci_high"]
    # the bootstrap min is never above any group's own interval
    assert m["worst_group_ci_high"] <= min(m["groups"][g]["ci_high"] for g in eligible)


def test_small_group_is_reported_but_not_worst() -> None:
    # 5 chosen-shorter pairs all wrong, 40 chosen-longer pairs all right
    y = np.ones(45)
    la = np.concatenate([np.full(5, 50.0), np.full(40, 300.0)])
    lb = np.concatenate([np.full(5, 300.0), np.full(40, 50.0)])
    m = group_metrics(_biased_model(y, la, lb), y, la, lb)
    assert m["groups"]["chosen_shorter"]["n"] == 5 < MIN_GROUP
    assert m["groups"]["chosen_shorter"]["accuracy"] == 0.0
    assert m["worst_group"] == "chosen_longer" and m["length_bias_flag"] is False


def test_no_eligible_group_and_ties_excluded() -> None:
    y = np.array([1.0, 0.5, 0.5])
    la, lb = np.array([10.0, 10.0, 10.0]), np.array([100.0, 5.0, 5.0])
    m = group_metrics(np.array([0.9, 0.5, 0.5]), y, la, lb)
    assert m["worst_group"] is None and m["worst_group_accuracy"] is None and m["length_bias_flag"] is False
    assert m["groups"]["chosen_shorter"] == {"n": 1, "share": 1.0, "accuracy": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert m["near_equal_threshold"] == NEAR_EQUAL


def test_bootstrap_is_seeded_and_flat_keys() -> None:
    rng = np.random.default_rng(2)
    n = 200
    y = (rng.uniform(size=n) < 0.5).astype(float)
    la, lb = rng.integers(20, 400, n).astype(float), rng.integers(20, 400, n).astype(float)
    q = rng.uniform(size=n)
    assert group_metrics(q, y, la, lb, seed=3) == group_metrics(q, y, la, lb, seed=3)
    flat = flat_group_metrics(group_metrics(q, y, la, lb))
    for name in GROUPS:
        assert f"length_groups/{name}/accuracy" in flat
    assert "worst_group_accuracy" in flat and flat["length_bias_flag"] in (0.0, 1.0)
