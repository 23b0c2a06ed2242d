"""Batches: top-k, exclusions, per-prompt caps and diversity."""

from __future__ import annotations

import numpy as np

from prefloop.acquisition import apply_prompt_cap, diverse_select, shortlist, top_k


def test_top_k_is_sorted_and_skips_exclusions() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.7, np.nan, 0.3])
    assert top_k(s, 3).tolist() == [1, 3, 2]
    assert top_k(s, 3, exclude=np.array([1])).tolist() == [3, 2, 5]
    mask = np.zeros(6, dtype=bool)
    mask[[1, 3]] = True
    assert top_k(s, 3, exclude=mask).tolist() == [2, 5, 0]
    # the pool runs out: exclusions still hold and the batch shrinks
    assert top_k(s, 10, exclude=np.arange(5)).tolist() == [5]


def test_top_k_breaks_ties_by_index() -> None:
    assert top_k(np.zeros(5), 3).tolist() == [0, 1, 2]


def test_prompt_cap_holds_and_backfills() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    prompts = np.array(["p", "p", "p", "q", "q", "r"])
    got = top_k(s, 4, prompt_ids=prompts, max_per_prompt=1)
    assert got.tolist() == [0, 3, 5]
    got = top_k(s, 4, prompt_ids=prompts, max_per_prompt=2)
    assert got.tolist() == [0, 1, 3, 4]
    assert apply_prompt_cap(np.array([2, 0, 1, 5]), prompts, 2).tolist() == [2, 0, 5]


def _near_duplicates(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """50 near-duplicate pairs of one prompt (top scores) + 50 other prompts (lower scores)."""
    centre = rng.normal(size=16)
    dup = centre + 0.01 * rng.normal(size=(50, 16))
    others = rng.normal(size=(50, 16)) * 3
    emb = np.vstack([dup, others])
    scores = np.r_[0.9 + 0.01 * rng.random(50), 0.5 + 0.3 * rng.random(50)]
    prompts = np.r_[np.zeros(50, dtype=int), np.arange(1, 51)]
    return emb, scores, prompts


def test_diverse_batch_covers_many_prompts() -> None:
    emb, scores, prompts = _near_duplicates(np.random.default_rng(0))
    plain = top_k(scores, 10)
    assert len(set(prompts[plain])) == 1  # top-k takes only the duplicates
    cand = shortlist(scores, 100)
    for method in ("kcenter", "kmeanspp"):
        got = diverse_select(emb, cand, 10, scores, method=method, rng=np.random.default_rng(1))
        assert len(got) == 10 and len(set(got.tolist())) == 10
        assert len(set(prompts[got])) >= 9, method
        assert got[0] == plain[0]  # starts from the best-scored pair


def test_diverse_respects_cap_and_exclusions() -> None:
    emb, scores, prompts = _near_duplicates(np.random.default_rng(0))
    excluded = np.arange(50, 90)
    cand = shortlist(scores, 100, exclude=excluded)
    assert not set(cand.tolist()) & set(excluded.tolist())
    got = diverse_select(emb, cand, 20, scores, prompt_ids=prompts, max_per_prompt=3)
    assert not set(got.tolist()) & set(excluded.tolist())
    assert np.bincount(prompts[got]).max() <= 3
    assert len(got) == 13  # 3 from the duplicate prompt + the 10 prompts left


def test_score_weight_pulls_towards_high_scores() -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(200, 8))
    scores = rng.random(200)
    cand = shortlist(scores, 200)
    flat = diverse_select(emb, cand, 20, scores)
    weighted = diverse_select(emb, cand, 20, scores, score_weight=4.0)
    assert scores[weighted].mean() > scores[flat].mean()


def test_memmap_embeddings_are_read_by_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    emb = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float32, shape=emb.shape)
    mm[:] = emb
    cand = np.array([250, 3, 120, 7, 299])
    a = diverse_select(mm, cand, 3)
    b = diverse_select(emb, cand, 3)
    assert a.tolist() == b.tolist()
