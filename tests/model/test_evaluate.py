import math
from pathlib import Path

import numpy as np

from prefloop.model import evaluate_predictions, plot_reliability, plot_reward_vs_length
from prefloop.model.evaluate import spearman
from prefloop.types import Choice


def test_metrics_match_hand_computation() -> None:
    p_a = np.array([0.8, 0.3, 0.6, 0.5, 0.9])
    labels = [Choice.A, "a", "b", "tie", "skip"]
    m = evaluate_predictions(p_a, labels)
    assert m["n"] == 4 and m["n_decisive"] == 3 and m["n_ties"] == 1
    # winners predicted: pair0 a (right), pair1 b (wrong), pair2 a (wrong)
    assert math.isclose(m["accuracy"], 1 / 3)
    assert math.isclose(m["log_loss"], -(math.log(0.8) + math.log(0.3) + math.log(0.4)) / 3)
    # ECE over both orientations: q = 0.8,0.3,0.6,0.2,0.7,0.4 with y = 1,1,0,0,0,1;
    # 15 bins → every q in its own bin, ECE = mean |y − q|
    q = np.array([0.8, 0.3, 0.6, 0.2, 0.7, 0.4])
    y = np.array([1, 1, 0, 0, 0, 1])
    assert math.isclose(m["ece"], float(np.abs(y - q).mean()))
    assert m["length_corr"] is None


def test_tie_aware_accuracy_and_three_way_log_loss() -> None:
    p_a, p_t = np.array([0.5, 0.2, 0.1]), np.array([0.2, 0.6, 0.1])
    m = evaluate_predictions(p_a, ["a", "tie", "a"], p_tie=p_t)
    assert math.isclose(m["tie_aware_accuracy"], 2 / 3)  # argmax: a, tie, b
    assert math.isclose(m["log_loss_3way"], -(math.log(0.5) + math.log(0.6) + math.log(0.1)) / 3)
    assert math.isclose(m["accuracy"], 0.5)


def test_length_metrics() -> None:
    p_a = np.array([0.9, 0.9, 0.2, 0.2])
    labels = ["a", "a", "a", "b"]
    ra, rb = np.array([1.0, 2.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0, 4.0])
    la, lb = np.array([10.0, 20.0, 5.0, 8.0]), np.array([5.0, 30.0, 6.0, 2.0])
    m = evaluate_predictions(p_a, labels, reward_a=ra, reward_b=rb, len_a=la, len_b=lb)
    r, n = np.concatenate([ra, rb]), np.concatenate([la, lb])
    assert math.isclose(m["length_corr"], float(np.corrcoef(r, n)[0, 1]))
    # preferred longer: pair0 (right), pair3 (b=2 < a=8: preferred shorter, right)
    assert m["n_preferred_longer"] == 1 and m["acc_preferred_longer"] == 1.0
    assert m["n_preferred_shorter"] == 3 and math.isclose(m["acc_preferred_shorter"], 2 / 3)


def test_spearman_with_ties() -> None:
    assert math.isclose(spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])), 1.0)
    x, y = np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])
    # average ranks: x → 0, 1.5, 1.5, 3 ; y → 0, 2, 1, 3
    assert math.isclose(spearman(x, y), float(np.corrcoef([0, 1.5, 1.5, 3], [0, 2, 1, 3])[0, 1]))


def test_plots_write_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50)
    labels = ["a" if rng.uniform() < x else "b" for x in p]
    f1 = plot_reliability(p, labels, tmp_path / "rel.png")
    f2 = plot_reward_vs_length(rng.normal(size=40), rng.uniform(10, 100, 40), tmp_path / "len.png")
    for f in (f1, f2):
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_prediction_reads_lengths_from_the_texts() -> None:
    from types import SimpleNamespace

    from prefloop.model import evaluate_prediction

    pairs = [("p", "a long answer", "no"), ("p", "yes", "a longer answer"), ("p", "same", "size")]
    pred = SimpleNamespace(
        p_a=np.array([0.7, 0.2, 0.5]),
        p_b=np.array([0.2, 0.7, 0.3]),
        p_tie=np.array([0.1, 0.1, 0.2]),
        reward_a=np.array([1.0, -1.0, 0.0]),
        reward_b=np.array([-1.0, 1.0, 0.5]),
    )
    metrics, len_a, len_b = evaluate_prediction(pred, pairs, ["a", "b", "tie"])
    assert len_a.tolist() == [13, 3, 4] and len_b.tolist() == [2, 15, 4]
    rewards, lengths = np.r_[pred.reward_a, pred.reward_b], np.r_[len_a, len_b]
    assert math.isclose(metrics["length_corr"], float(np.corrcoef(rewards, lengths)[0, 1]))
    assert metrics["accuracy"] == 1.0 and metrics["acc_preferred_longer"] == 1.0
