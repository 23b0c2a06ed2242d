"""Which pool pairs go to the annotators next: the configured strategy over the newest model's
stored predictions, or random before any model exists.

Shared by the sync cycle's top-up and refresh (``sync.py``) and by ``Loop.select`` (``api.py``),
so a notebook sees the pairs the next cycle would push (gold checks aside).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Engine

from prefloop.acquisition import ProbPool, configured_strategy, get_strategy
from prefloop.config import LoopConfig
from prefloop.store.db import session_scope
from prefloop.store.models import ModelVersion
from prefloop.store.queries import pair_texts, pairs_by_id, response_lengths
from prefloop.store.tasks import acquired_pair_ids, last_task_id, pool_candidates
from prefloop.store.versions import latest_model

__all__ = ["candidate_pairs", "next_pairs"]


def candidate_pairs(
    engine: Engine,
    config: LoopConfig,
    need: int,
    model: ModelVersion | None,
    include: set[int] | frozenset[int] = frozenset(),
    skip: set[int] | frozenset[int] = frozenset(),
    progress: bool = False,
) -> tuple[list[int], np.ndarray, str, dict[str, Any]]:
    """Pick up to ``need`` pool pairs: the configured strategy, or random before any model exists.

    ``include`` puts otherwise excluded pairs (pending tasks being re-ranked) back in the
    running; ``skip`` keeps pairs out (tasks withdrawn in this cycle).
    """
    from prefloop.loop.objectives import acquisition_predictions

    with session_scope(engine) as session:
        pool = pool_candidates(session, include=include, skip=skip)
        preds, heads = (
            acquisition_predictions(session, model, [p for p, _ in pool], config.acquisition.dimension)
            if model is not None
            else ({}, None)
        )
        n_tasks = last_task_id(session)
    rng = np.random.default_rng(config.acquisition.seed + n_tasks)
    cap = config.acquisition.max_per_prompt
    if model is None or not pool:
        strategy = get_strategy("random", max_per_prompt=cap)
        probs = np.full((len(pool), 1), 0.5)
        pool_ids = [p for p, _ in pool]
        prompts = np.array([q for _, q in pool])
        sel = strategy.select(ProbPool(probs, prompt_ids=prompts), need, rng)
        return [pool_ids[i] for i in sel.indices], sel.scores, strategy.name, {**sel.params, "cold_start": True}
    pool = [(p, q) for p, q in pool if p in preds and (heads is None or p in heads)]
    pool_ids = [p for p, _ in pool]
    dimension_probs = np.array([heads[p] for p in pool_ids]) if heads is not None and pool_ids else None
    members = np.array([preds[p].members for p in pool_ids], dtype=np.float64)
    p_tie = np.array([preds[p].p_tie for p in pool_ids], dtype=np.float64)
    strategy = configured_strategy(config.acquisition.strategy, config.acquisition.strategy_params(), cap)
    embeddings = acquired = None
    if strategy.needs_embeddings:
        from rich.console import Console

        from prefloop.loop.reward import load_ensemble

        ens = load_ensemble(model)
        with session_scope(engine) as session:
            acquired_ids = acquired_pair_ids(session, include, skip) if strategy.uses_acquired_set else []
            texts = pair_texts(session, pool_ids + acquired_ids)
        if progress:
            Console(stderr=True).print(
                f"[bold]sync[/bold] embedding {len(texts)} pairs for {strategy.name}", highlight=False
            )
        both = ens.embed_pairs(texts, progress=progress)  # the pool's, then the acquired set's
        embeddings = both[: len(pool_ids)]
        acquired = both[len(pool_ids) :] if strategy.uses_acquired_set else None
    len_a = len_b = None
    if strategy.needs_lengths:
        with session_scope(engine) as session:
            lengths = response_lengths(session, pool_ids)
        len_a, len_b = (np.array([lengths[p][side] for p in pool_ids], dtype=np.int64) for side in (0, 1))
    prob_pool = ProbPool(
        members,
        p_tie=p_tie,
        embeddings=embeddings,
        acquired_embeddings=acquired,
        prompt_ids=np.array([q for _, q in pool]),
        dimension_probs=dimension_probs,
        len_a=len_a,
        len_b=len_b,
    )
    sel = strategy.select(prob_pool, need, rng)
    params = sel.params if acquired is None else {**sel.params, "acquired": len(acquired)}  # on each task
    return [pool_ids[i] for i in sel.indices], sel.scores, strategy.name, params


def next_pairs(engine: Engine, config: LoopConfig, n: int, progress: bool = False) -> list[dict[str, Any]]:
    """The ``n`` pool pairs the next top-up would choose with the newest model, best first, as records.

    What ``Loop.select`` shows: nothing is planned or pushed, and gold checks (``gold_rate``),
    which a top-up mixes in, are left out. Each record: ``rank``, ``pair_id``, ``pair_key``,
    ``score`` (the strategy's), ``strategy``, ``model`` (None before the first one), and the texts.
    """
    with session_scope(engine) as session:
        model = latest_model(session)
    chosen, scores, strategy, _ = candidate_pairs(engine, config, n, model, progress=progress)
    with session_scope(engine) as session:
        pairs = pairs_by_id(session, chosen)
        return [
            {
                "rank": rank,
                "pair_id": pair_id,
                "pair_key": pairs[pair_id].key,
                "score": float(score),
                "strategy": strategy,
                "model": model.name if model else None,
                "prompt": pairs[pair_id].prompt.text,
                "response_a": pairs[pair_id].response_a.text,
                "response_b": pairs[pair_id].response_b.text,
            }
            for rank, (pair_id, score) in enumerate(zip(chosen, scores, strict=True), start=1)
        ]
