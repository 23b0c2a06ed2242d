"""Several objectives from the command line: ingest --dimension, train --dimension A --dimension B,
eval --dimension, score per dimension (and combined), and the unknown-dimension errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.clirun import run

TOPICS = ["cats", "tax", "soup", "trains", "chess", "rain", "maps", "bread"]
FILLER = "and here is a much longer answer that goes on with many more words about it, step by step, in detail"


def write_pairs(path: Path, n: int, prefer: str, seed: int, offset: int = 0) -> None:
    """Pairs of a one-line and a long answer; ``prefer`` ('long' or 'short') is the chosen one."""
    rng = random.Random(seed)
    rows = []
    for i in range(offset, offset + n):
        topic = rng.choice(TOPICS)
        short, long = f"Yes, {topic}.", f"Yes, {topic}, {FILLER} number {i}."
        chosen, rejected = (long, short) if prefer == "long" else (short, long)
        rows.append({"prompt": f"Tell me about {topic} ({i}).", "chosen": chosen, "rejected": rejected})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow  # trains a model
def test_two_dimensions_train_one_model_with_a_head_each(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text("[model]\nmax_length = 48\nk = 2\n")
    # the same 40 pool pairs labelled on two dimensions that disagree; held-out pairs for each
    write_pairs(tmp_path / "long.jsonl", 40, "long", seed=1)
    write_pairs(tmp_path / "short.jsonl", 40, "short", seed=1)
    write_pairs(tmp_path / "long_test.jsonl", 20, "long", seed=2, offset=1000)
    write_pairs(tmp_path / "short_test.jsonl", 20, "short", seed=2, offset=1000)
    run(tmp_path, "init")
    run(tmp_path, "ingest", "long.jsonl", "--dimension", "long")
    run(tmp_path, "ingest", "short.jsonl", "--dimension", "short")
    run(tmp_path, "ingest", "long_test.jsonl", "--dimension", "long", "--split", "test")
    run(tmp_path, "ingest", "short_test.jsonl", "--dimension", "short", "--split", "test")
    stats = json.loads(run(tmp_path, "stats", "--json").stdout)
    assert stats["labels_by_dimension"] == {"long": 60, "short": 60}

    name = run(tmp_path, "train", "--mode", "heads", "--dimension", "long", "--dimension", "short").stdout.split()[-1]
    long_eval = json.loads(run(tmp_path, "eval", "--json").stdout)  # default: the first dimension
    short_eval = json.loads(run(tmp_path, "eval", "--dimension", "short", "--json").stdout)
    assert (long_eval["dimension"], short_eval["dimension"]) == ("long", "short")
    assert long_eval["model"] == short_eval["model"] == name
    assert long_eval["n"] == short_eval["n"] == 20
    assert long_eval["accuracy"] >= 0.9 and short_eval["accuracy"] >= 0.9

    proc = run(tmp_path, "eval", "--dimension", "nope", check=False)
    assert proc.returncode == 2 and f"model {name} has no head for dimension 'nope'; its dimensions: long, short" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert f"{name}: 60 pairs scored" in run(tmp_path, "score", "--all").stdout
    engine = create_engine(f"sqlite:///{tmp_path}/prefloop.db")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT dimension, COUNT(*) FROM predictions GROUP BY dimension")).all()
        assert dict(rows) == {"long": 60, "short": 60}  # every pair (pool and test), once per head
        # the heads disagree: on a pool pair long's P(a≻b) and short's are on opposite sides of 1/2
        opposite = conn.execute(
            text(
                "SELECT AVG(CASE WHEN (l.p_a - 0.5) * (s.p_a - 0.5) < 0 THEN 1.0 ELSE 0.0 END) FROM predictions l "
                "JOIN predictions s ON s.pair_id = l.pair_id AND s.dimension = 'short' WHERE l.dimension = 'long'"
            )
        ).scalar()
        assert opposite >= 0.9

    # a combined reward in [objectives]: score adds a 'combined' row per pair, and it becomes the reward
    (tmp_path / "prefloop.toml").write_text(
        "[model]\nmax_length = 48\nk = 2\n[objectives]\nweights = { long = 1.0, short = 0.0 }\n"
    )
    run(tmp_path, "score", "--all")
    with engine.connect() as conn:
        combined = conn.execute(
            text(
                "SELECT c.p_a, l.p_a FROM predictions c JOIN predictions l ON l.pair_id = c.pair_id "
                "AND l.dimension = 'long' WHERE c.dimension = 'combined'"
            )
        ).all()
    assert len(combined) == 60 and all((c - 0.5) * (lp - 0.5) > 0 for c, lp in combined)
    engine.dispose()

    # export per dimension: the model's predictions, one row per pair, a column set per head and combined
    assert "wrote 60 rows" in run(tmp_path, "export", "scores.jsonl", "--kind", "scores").stdout
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert {k for k in rows[0] if k.startswith("p_a_")} == {"p_a_long", "p_a_short", "p_a_combined"}
    assert all(r["model"] == name and r["reward"] == "combined" for r in rows)
    assert all(r["reward_prefers"] == ("a" if r["p_a_combined"] >= 0.5 else "b") for r in rows)


def test_unknown_dimension_exits_2_listing_the_known_ones(tmp_path: Path) -> None:
    write_pairs(tmp_path / "long.jsonl", 6, "long", seed=1)
    run(tmp_path, "init")
    run(tmp_path, "ingest", "long.jsonl", "--dimension", "long")
    proc = run(tmp_path, "train", "--mode", "heads", "--dimension", "long", "--dimension", "nope", check=False)
    assert proc.returncode == 2
    assert "no labels of dimension 'nope'; known dimensions: long" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    proc = run(tmp_path, "train", "--mode", "heads", "--dimension", "long", "--dimension", "long", check=False)
    assert proc.returncode == 2 and "--dimension given twice" in proc.stderr
    proc = run(tmp_path, "train", "--mode", "finetune", "--dimension", "long", "--dimension", "x", check=False)
    assert proc.returncode == 2 and "need --mode heads or --mode adapted" in proc.stderr
    assert not (tmp_path / "prefloop-artifacts" / "models").exists()
