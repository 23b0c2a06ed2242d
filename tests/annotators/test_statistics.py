"""Every agreement statistic against a reference implementation or hand-computed values."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from prefloop.annotators import (
    Annotation,
    binomial_test,
    cohen_kappa,
    cohen_kappa_matrix,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    leave_one_out_agreement,
    majority_vote,
    median_seconds,
    position_bias,
    vote_counts,
)

CLASSES = ("a", "b", "tie")


def _random_matrix(seed: int, n: int = 60, m: int = 4, missing: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=n)
    labels = np.where(rng.random((n, m)) < 0.7, truth[:, None], rng.integers(0, 3, size=(n, m)))
    labels[rng.random((n, m)) < missing] = -1
    return labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_krippendorff_alpha_matches_the_krippendorff_package(seed: int) -> None:
    labels = _random_matrix(seed)
    items = [[CLASSES[c] for c in row if c >= 0] for row in labels]
    reference = krippendorff.alpha(
        reliability_data=np.where(labels >= 0, labels, np.nan).T.astype(float), level_of_measurement="nominal"
    )
    assert krippendorff_alpha_nominal(items) == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fleiss_kappa_matches_statsmodels_with_equal_raters(seed: int) -> None:
    counts = vote_counts(_random_matrix(seed, missing=0.0), 3)
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-12)


def test_fleiss_kappa_by_hand_with_unequal_raters() -> None:
    # item 1: a,a,a (P=1); item 2: a,b (P=0); item 3: b,b (P=1); item 4: one label, ignored
    counts = np.array([[3, 0, 0], [1, 1, 0], [0, 2, 0], [1, 0, 0]])
    p_bar = (1 + 0 + 1) / 3
    p_a, p_b = 4 / 7, 3 / 7
    p_e = p_a**2 + p_b**2
    assert fleiss_kappa(counts) == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert fleiss_kappa(np.array([[2, 0, 0], [3, 0, 0]])) is None  # everyone always says 'a'


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cohen_kappa_matches_scikit_learn(seed: int) -> None:
    labels = _random_matrix(seed, m=2)
    both = (labels >= 0).all(axis=1)
    x, y = labels[both, 0], labels[both, 1]
    assert cohen_kappa(x, y, 3) == pytest.approx(cohen_kappa_score(x, y), abs=1e-12)


def test_cohen_kappa_matrix_uses_shared_items_only() -> None:
    labels = _random_matrix(5, m=4)
    matrix = cohen_kappa_matrix(labels, 3)
    assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T, equal_nan=True)
    both = (labels[:, 1] >= 0) & (labels[:, 3] >= 0)
    assert matrix[1, 3] == pytest.approx(cohen_kappa_score(labels[both, 1], labels[both, 3]))
    disjoint = np.array([[0, -1], [1, -1], [-1, 0], [-1, 1]])
    assert np.isnan(cohen_kappa_matrix(disjoint, 3)[0, 1])


def test_leave_one_out_agreement_by_hand() -> None:
    # annotators u0, u1, u2
    labels = np.array(
        [
            [0, 0, 0],  # everyone agrees
            [0, 0, 1],  # u2 against a consensus of 'a'
            [0, 1, -1],  # for u0 the others are {b}; for u1 {a}; u2 absent
            [0, 1, 2],  # others always split: counts for no one
        ]
    )
    agree, used = leave_one_out_agreement(labels, 3)
    # u0: item0 others {a,a} → agrees; item1 others {a,b} split, not counted; item2 others {b} → disagrees
    # u1: item0 agrees; item1 split; item2 others {a} → disagrees.  item3 is split for everyone.
    assert used.tolist() == [2, 2, 2]
    assert agree.tolist() == pytest.approx([0.5, 0.5, 0.5])
    # u2: item0 agrees, item1 disagrees (others a, a)


def test_majority_vote_marks_split_votes() -> None:
    labels = np.array([[0, 0, 1], [0, 1, -1], [2, 2, 0], [-1, -1, -1]])
    assert majority_vote(labels).tolist() == [0, -1, 2, -1]


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (5, 10), (9, 10), (40, 60), (31, 60), (100, 100)])
def test_binomial_test_matches_scipy(k: int, n: int) -> None:
    assert binomial_test(k, n, 0.5) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9)
    assert binomial_test(k, n, 0.3) == pytest.approx(binomtest(k, n, 0.3).pvalue, rel=1e-9)


def test_position_bias_share_and_test() -> None:
    picks = np.array([True] * 18 + [False] * 2)
    result = position_bias(picks)
    assert result is not None
    assert result["first_shown_share"] == pytest.approx(0.9) and result["n"] == 20
    assert result["p_value"] == pytest.approx(binomtest(18, 20).pvalue)
    assert position_bias(np.array([], dtype=bool)) is None


def test_median_seconds_prefers_the_backends_measure_then_gaps() -> None:
    timed = [Annotation(1, "u", "a", seconds=s) for s in (4.0, 10.0, 7.0)]
    assert median_seconds(timed) == 7.0
    stamped = [Annotation(i, "u", "a", created_at=t) for i, t in enumerate([0.0, 5.0, 25.0, 10_000.0, 10_006.0])]
    # gaps 5, 20, (9975: a break, dropped), 6 → median 6
    assert median_seconds(stamped) == 6.0
    assert median_seconds([Annotation(1, "u", "a")]) is None


def test_report_rates_kappa_and_gold_by_hand() -> None:
    from prefloop.annotators import annotator_report

    # u1 and u2 on four pairs; u1 skips a fifth; both answer one gold check (answer 'a')
    data = [
        Annotation(1, "u1", "a"),
        Annotation(1, "u2", "a"),
        Annotation(2, "u1", "b"),
        Annotation(2, "u2", "b"),
        Annotation(3, "u1", "tie"),
        Annotation(3, "u2", "a"),
        Annotation(4, "u1", "a"),
        Annotation(4, "u2", "b"),
        Annotation(5, "u1", "skip"),
        Annotation(9, "u1", "a", gold="a"),
        Annotation(9, "u2", "b", gold="a"),
    ]
    report = annotator_report(data)
    u1, u2 = report["annotators"]
    assert (u1["labels"], u2["labels"]) == (4, 4)  # skips and gold answers are not labels
    assert u1["tie_rate"] == 0.25 and u2["tie_rate"] == 0.0
    assert u1["skip_rate"] == 0.2 and u2["skip_rate"] == 0.0
    assert u1["gold"] == {"n": 1, "accuracy": 1.0} and u2["gold"] == {"n": 1, "accuracy": 0.0}
    x, y = [0, 1, 2, 0], [0, 1, 0, 1]
    assert u1["kappa"]["u2"] == pytest.approx(round(cohen_kappa_score(x, y), 4))
    assert u1["agreement_with_consensus"] == 0.5  # the other's single vote is the consensus
    assert report["items"] == 4 and report["items_with_several_labels"] == 4
    items = [["a", "a"], ["b", "b"], ["tie", "a"], ["a", "b"]]
    assert report["krippendorff_alpha"] == pytest.approx(round(krippendorff_alpha_nominal(items), 4))


def test_reliability_and_discrimination_by_hand() -> None:
    from prefloop.annotators import DawidSkeneResult

    confusion = np.array(
        [
            [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.2, 0.2, 0.6]],  # careful
            [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0]],  # coin
        ]
    )
    fit = DawidSkeneResult(
        posteriors=np.zeros((0, 3)),
        priors=np.array([0.4, 0.4, 0.2]),
        confusion=confusion,
        log_likelihood=0.0,
        n_iter=1,
        converged=True,
    )
    np.testing.assert_allclose(fit.reliability(), [0.4 * 0.9 + 0.4 * 0.9 + 0.2 * 0.6, 0.4 * 0.5 + 0.4 * 0.5])
    np.testing.assert_allclose(fit.discrimination(), [0.8, 0.0])
