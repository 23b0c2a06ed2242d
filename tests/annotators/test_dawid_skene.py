"""Dawid–Skene: against a naive loop implementation of its EM step, and on simulated annotators."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prefloop.annotators import dawid_skene, majority_vote


def _simulate(
    seed: int,
    accuracies: list[float],
    n: int = 400,
    per_item: int = 3,
    priors: tuple[float, float, float] = (0.45, 0.45, 0.10),
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=priors)
    labels = np.full((n, len(accuracies)), -1)
    for i in range(n):
        for u in rng.choice(len(accuracies), size=per_item, replace=False):
            if rng.random() < accuracies[u]:
                labels[i, u] = truth[i]
            else:
                labels[i, u] = rng.choice([c for c in range(3) if c != truth[i]])
    return labels, truth


def _naive_em_step(labels: np.ndarray, post: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One M-step then E-step, written with plain loops (the reference)."""
    n, m = labels.shape
    k = post.shape[1]
    priors = np.array([(sum(post[i, c] for i in range(n)) + smoothing) / (n + k * smoothing) for c in range(k)])
    confusion = np.full((m, k, k), smoothing)
    for i in range(n):
        for u in range(m):
            if labels[i, u] >= 0:
                for c in range(k):
                    confusion[u, c, labels[i, u]] += post[i, c]
    confusion /= confusion.sum(axis=2, keepdims=True)
    new = np.zeros((n, k))
    for i in range(n):
        for c in range(k):
            p = priors[c]
            for u in range(m):
                if labels[i, u] >= 0:
                    p *= confusion[u, c, labels[i, u]]
            new[i, c] = p
        new[i] /= new[i].sum()
    return new, priors, confusion


def test_result_is_a_fixed_point_of_the_naive_em_step() -> None:
    labels, _ = _simulate(0, [0.9, 0.8, 0.7, 0.6], n=80)
    fit = dawid_skene(labels, tol=1e-12, max_iter=2000, smoothing=0.01, diagonal_prior=0.0, symmetric=False)
    assert fit.converged
    post, priors, confusion = _naive_em_step(labels, fit.posteriors, 0.01)
    np.testing.assert_allclose(post, fit.posteriors, atol=1e-6)
    np.testing.assert_allclose(priors, fit.priors, atol=1e-6)
    np.testing.assert_allclose(confusion, fit.confusion, atol=1e-6)


def test_first_iteration_equals_naive_step_from_the_majority_start() -> None:
    labels, _ = _simulate(1, [0.9, 0.7, 0.6], n=30)
    fit = dawid_skene(labels, max_iter=1, diagonal_prior=0.0, symmetric=False)
    votes = np.stack([(labels == c).sum(axis=1) for c in range(3)], axis=1).astype(float)
    start = votes / votes.sum(axis=1, keepdims=True)
    post, _, confusion = _naive_em_step(labels, start, 0.01)
    np.testing.assert_allclose(fit.posteriors, post, atol=1e-12)
    np.testing.assert_allclose(fit.confusion, confusion, atol=1e-12)


def test_symmetric_fit_does_not_care_which_response_is_called_a() -> None:
    labels, _ = _simulate(5, [0.9, 0.8, 0.7, 0.6], n=150)
    swapped = np.where(labels == 0, 1, np.where(labels == 1, 0, labels))
    fit, mirror = dawid_skene(labels), dawid_skene(swapped)
    np.testing.assert_allclose(fit.posteriors[:, [1, 0, 2]], mirror.posteriors, atol=1e-9)
    np.testing.assert_allclose(fit.reliability(), mirror.reliability(), atol=1e-9)
    assert fit.priors[0] == pytest.approx(fit.priors[1])
    np.testing.assert_allclose(fit.confusion[:, 0, 0], fit.confusion[:, 1, 1])
    np.testing.assert_allclose(fit.confusion[:, 0, 1], fit.confusion[:, 1, 0])


def test_log_likelihood_never_decreases() -> None:
    labels, _ = _simulate(2, [0.95, 0.8, 0.6, 0.5, 0.5], n=200)
    lls = [dawid_skene(labels, max_iter=i, tol=0, diagonal_prior=0.0).log_likelihood for i in range(1, 30)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(lls))


def test_recovers_annotator_accuracies_and_beats_majority() -> None:
    accuracies = [0.95, 0.85, 0.75, 0.55, 0.4]
    labels, truth = _simulate(3, accuracies, n=600)
    fit = dawid_skene(labels)
    assert np.argsort(-fit.reliability()).tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(fit.reliability(), accuracies, atol=0.06)
    ds_acc = (fit.hard_labels() == truth).mean()
    mv = majority_vote(labels)
    mv_acc = (mv == truth).mean()  # a split vote counts as wrong: majority has no answer there
    assert ds_acc >= mv_acc
    assert ds_acc > 0.85
    assert fit.priors[2] == pytest.approx((truth == 2).mean(), abs=0.03)


def test_a_spammer_has_no_discrimination() -> None:
    rng = np.random.default_rng(4)
    labels, _ = _simulate(4, [0.95, 0.9, 0.85, 0.8], n=400)
    labels[:, 3] = np.where(labels[:, 3] >= 0, rng.integers(0, 2, size=labels.shape[0]), -1)  # random a/b
    fit = dawid_skene(labels)
    disc = fit.discrimination()
    assert disc[3] < 0.15 and disc[:3].min() > 0.6


def test_known_answers_decide_between_two_annotators_who_always_disagree() -> None:
    truth = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    labels = np.stack([truth, 1 - truth], axis=1)  # annotator 0 always right, annotator 1 always wrong
    blind = dawid_skene(labels)
    assert blind.reliability()[0] == pytest.approx(blind.reliability()[1], abs=0.05), "symmetric: undecidable"
    known = np.array([0, 1, -1, -1, -1, -1, -1, -1])
    fit = dawid_skene(labels, known=known, diagonal_prior=0.0)  # eight pairs: no prior to pull them
    assert fit.reliability()[0] > 0.9 > 0.1 > fit.reliability()[1]
    assert (fit.hard_labels() == truth).all()
    np.testing.assert_allclose(fit.posteriors[:2], np.eye(3)[[0, 1]])


def test_diagonal_prior_is_a_pseudo_count_on_the_diagonal() -> None:
    labels, _ = _simulate(6, [0.9, 0.7, 0.6], n=40)
    fit = dawid_skene(labels, max_iter=1, diagonal_prior=2.0, symmetric=False)
    votes = np.stack([(labels == c).sum(axis=1) for c in range(3)], axis=1).astype(float)
    start = votes / votes.sum(axis=1, keepdims=True)
    _, _, plain = _naive_em_step(labels, start, 0.01)
    counts = np.zeros((3, 3, 3))
    for i in range(labels.shape[0]):
        for u in range(3):
            if labels[i, u] >= 0:
                counts[u, :, labels[i, u]] += start[i]
    counts += 0.01 + 2.0 * np.eye(3)[None]
    np.testing.assert_allclose(fit.confusion, counts / counts.sum(axis=2, keepdims=True), atol=1e-12)
    assert (np.diagonal(fit.confusion, axis1=1, axis2=2) > np.diagonal(plain, axis1=1, axis2=2)).all()


def test_small_samples_with_an_adversary_rarely_flip() -> None:
    """Four annotators (0.9, 0.75, 0.5, 0.3), 60 pairs, 3 labels each, 100 seeds: Dawid–Skene beats
    majority on average and inverts the truth (accuracy < 0.5) in at most 5 % of the samples."""
    acc, flips = [], 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        truth = rng.integers(0, 2, size=60)
        labels = np.full((60, 4), -1)
        for i in range(60):
            for u in rng.choice(4, size=3, replace=False):
                right = rng.random() < (0.9, 0.75, 0.5, 0.3)[u]
                labels[i, u] = truth[i] if right else 1 - truth[i]
        ds = (dawid_skene(labels).hard_labels() == truth).mean()
        acc.append((ds, (majority_vote(labels) == truth).mean()))
        flips += ds < 0.5
    assert np.mean([a for a, _ in acc]) > np.mean([m for _, m in acc]) + 0.05
    assert flips <= 5
