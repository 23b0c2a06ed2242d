"""A tiny active-learning simulation end to end on CPU, with real MiniLM embeddings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from prefloop.loop.simulate import LabeledPool, run_simulation
from prefloop.loop.simulate_report import labels_to_reach, summary_markdown, worst_group_markdown, worst_group_table
from prefloop.model import ModelConfig
from prefloop.types import Choice, PairRecord

TOPICS = [
    "bread",
    "tomatoes",
    "a bike tyre",
    "a tent",
    "rice",
    "a fence",
    "tea",
    "a shelf",
    "soup",
    "a kite",
    "coffee",
    "a lamp",
    "pasta",
    "a kayak",
    "jam",
    "a desk",
]


def tiny_pairs(n: int = 48) -> list[PairRecord]:
    """Helpful vs dismissive answers; the helpful one is preferred (a learnable signal)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        good = f"Sure! To fix {topic}, start with step {i % 5 + 1}, check it carefully, then repeat."
        bad = f"I don't know about {topic}, figure it out yourself {'!' * (i % 3 + 1)}"
        first = bool(rng.integers(0, 2))
        a, b = (good, bad) if first else (bad, good)
        out.append(
            PairRecord(
                prompt=f"How do I deal with {topic}? (case {i})",
                response_a=a,
                response_b=b,
                label=Choice.A if first else Choice.B,
            )
        )
    return out


@pytest.mark.slow  # embeds with MiniLM and trains heads each round
def test_tiny_simulation_end_to_end(tmp_path: Path) -> None:
    cfg = ModelConfig(
        mode="heads", k=3, head="linear", head_epochs=30, val_fraction=0.0, cache_dir=str(tmp_path / "cache"), threads=1
    )
    strategies = ["random", "bald", "diverse:bald"]
    result = run_simulation(
        tiny_pairs(),
        strategies=strategies,
        seeds=[0, 1],
        seed_size=6,
        batch_size=6,
        rounds=3,
        test_fraction=0.25,
        model_config=cfg,
        out_dir=tmp_path / "out",
        progress=False,
        noise_rate=0.1,
    )
    # one row per (strategy, seed, round 0..3)
    assert len(result.curves) == len(strategies) * 2 * 4
    for path in result.paths.values():
        assert path.exists() and path.stat().st_size > 0
    rows = list(csv.DictReader(result.paths["csv"].open()))
    assert len(rows) == len(result.curves)
    assert {r["strategy"] for r in rows} == set(strategies)
    assert sorted({int(r["n_labels"]) for r in rows}) == [6, 12, 18, 24]
    data = json.loads(result.paths["json"].read_text())
    assert len(data["curves"]) == len(rows) and {t["strategy"] for t in data["table"]} == set(strategies)
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["log_loss"] > 0 for r in result.curves)
    # labels are never selected twice, and never from the test split
    pool = LabeledPool.from_records(tiny_pairs())
    for per_seed in result.selected.values():
        for keys in per_seed.values():
            assert len(keys) == len(set(keys)) == 24
            assert set(keys) <= set(pool.keys)
    # same seed ⇒ same seed set for every strategy
    for seed in (0, 1):
        firsts = {tuple(result.selected[s][seed][:6]) for s in strategies}
        assert len(firsts) == 1
    # the learnable signal is learnt
    final = [r["accuracy"] for r in result.curves if r["round"] == 3]
    assert np.mean(final) > 0.7
    # 12 test pairs: every length group is too small to be the worst group, and the summary says so
    assert all(r["worst_group_accuracy"] is None and "chosen_longer_accuracy" in r for r in result.curves)
    assert "No length group of the test set has" in result.paths["summary"].read_text()


def test_labels_to_reach_on_hand_made_curves() -> None:
    curves = []
    for seed in (0, 1):
        for n, acc_r, acc_b in ((10, 0.5, 0.5), (20, 0.55, 0.62), (30, 0.6, 0.66), (40, 0.62, 0.67)):
            curves.append({"strategy": "random", "seed": seed, "n_labels": n, "accuracy": acc_r})
            curves.append({"strategy": "bald", "seed": seed, "n_labels": n, "accuracy": acc_b})
    table = {r["strategy"]: r for r in labels_to_reach(curves)}
    assert table["random"]["labels_needed"] == 40 and table["random"]["fraction"] == 1.0
    assert table["bald"]["labels_needed"] == 20 and table["bald"]["fraction"] == 0.5
    assert table["bald"]["ci_low"] == table["bald"]["ci_high"] == 20  # identical seeds: no spread
    # paired by seed: AULC = mean over (0.5, 0.62, 0.66, 0.67) = 0.6125; random's 0.5675; identical seeds
    assert table["bald"]["aulc"] == pytest.approx(0.6125) and table["random"]["aulc"] == pytest.approx(0.5675)
    assert table["bald"]["aulc_diff"] == pytest.approx(0.045) and table["bald"]["final_diff"] == pytest.approx(0.05)
    assert table["bald"]["aulc_diff_ci"] == pytest.approx([0.045, 0.045])
    assert "+4.5 pts" in summary_markdown(list(table.values()))


def test_worst_group_table_on_hand_made_curves() -> None:
    # bald gains overall accuracy by sharpening the length rule: its worst group falls, random's rises
    curves = []
    for seed in (0, 1):
        for n, worst_r, worst_b in ((10, 0.50, 0.50), (20, 0.52, 0.45), (30, 0.56, 0.40)):
            for name, worst in (("random", worst_r), ("bald", worst_b)):
                curves.append(
                    {
                        "strategy": name,
                        "seed": seed,
                        "n_labels": n,
                        "accuracy": 0.6,
                        "worst_group_accuracy": worst,
                        "worst_group": "chosen_longer",
                        "chosen_longer_accuracy": worst,
                        "chosen_shorter_accuracy": 0.8,
                        "near_equal_accuracy": None,
                    }
                )
    table = {r["strategy"]: r for r in worst_group_table(curves)}
    assert table["random"]["final_worst_group_accuracy"] == pytest.approx(0.56)
    assert table["bald"]["final_worst_group_accuracy"] == pytest.approx(0.40)
    assert table["bald"]["worst_group_aulc"] == pytest.approx((0.50 + 0.45 + 0.40) / 3)
    assert table["bald"]["final_diff"] == pytest.approx(-0.16) and table["bald"]["final_diff_ci"] == pytest.approx(
        [-0.16, -0.16]
    )
    assert table["bald"]["aulc_diff"] == pytest.approx((0.45 - 0.52 + 0.40 - 0.56) / 3)
    assert table["random"]["final_diff"] is None, "the baseline is not compared with itself"
    assert table["bald"]["worst_group"] == "chosen_longer" and table["bald"]["final_near_equal_accuracy"] is None
    markdown = worst_group_markdown(list(table.values()))
    assert "| bald | 0.400 ± 0.000 @ 30 | chosen_longer |" in markdown and "-16.0 pts" in markdown


def _write_jsonl(path: Path, records: list[PairRecord], extra: list[dict] | None = None) -> Path:
    rows = [
        {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        for r in records
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in [*rows, *(extra or [])]))
    return path


@pytest.mark.slow  # embeds with MiniLM and trains heads each round
def test_simulate_cli_several_pool_files_and_an_independent_test_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from prefloop.cli import cli

    pairs = tiny_pairs(80)
    pool_a = _write_jsonl(tmp_path / "pool_a.jsonl", pairs[:24])
    pool_b = _write_jsonl(tmp_path / "pool_b.jsonl", pairs[24:48])
    # the test file in HH's layout (whole dialogues), with one degenerate row as real HH files have
    hh = [
        {
            "chosen": f"\n\nHuman: {r.prompt}\n\nAssistant: {r.response_a if r.label is Choice.A else r.response_b}",
            "rejected": f"\n\nHuman: {r.prompt}\n\nAssistant: {r.response_b if r.label is Choice.A else r.response_a}",
        }
        for r in pairs[48:]
    ]
    same = "\n\nHuman: Is this a pair?\n\nAssistant: Same text."
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(row) + "\n" for row in [*hh, {"chosen": same, "rejected": same}]))
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(pool_a),
            str(pool_b),
            "--test",
            str(test),
            "--strategy",
            "random",
            "--strategy",
            "bald",
            "--seeds",
            "0,1",
            "--seed-size",
            "6",
            "--batch",
            "6",
            "--rounds",
            "2",
            "--members",
            "3",
            "--out",
            str(out),
        ],
        env={"HF_HUB_OFFLINE": "1", "PREFLOOP_CACHE": str(tmp_path / "cache")},
    )
    assert result.exit_code == 0, result.output
    # degenerate rows are skipped and counted per file, not fatal
    assert "pool_a.jsonl: 24 pairs, 0 degenerate rows skipped" in result.output
    assert "test.jsonl (test): 32 pairs, 1 degenerate rows skipped" in result.output
    data = json.loads((out / "curves.json").read_text())
    assert {r["n"] for r in data["curves"]} == {32}  # every seed and round scored on the 32 test pairs
    assert sorted({r["n_labels"] for r in data["curves"]}) == [6, 12, 18]
    assert "Paired by seed against random" in result.output
    # the helpful answer is always the longer one: one eligible group, and it is the worst group
    assert {r["worst_group"] for r in data["curves"]} == {"chosen_longer"}
    assert {t["strategy"] for t in data["worst_group_table"]} == {"random", "bald"}
    assert all(t["final_worst_group_accuracy"] is not None for t in data["worst_group_table"])
    assert "Worst-group accuracy" in result.output and "worst group per label spent" in result.output
    # the --strict flag turns a degenerate row into an error
    strict = CliRunner().invoke(cli, ["simulate", str(pool_a), "--test", str(test), "--strict", "--out", str(out)])
    assert strict.exit_code != 0 and "identical" in strict.output


def test_simulate_trains_the_loops_model_mode_unless_told_otherwise() -> None:
    from prefloop.cli.loop import simulate

    mode = next(p for p in simulate.params if p.name == "mode")
    assert mode.default == ModelConfig().mode == "adapted", "simulate measures the model the loop trains"
    assert "heads" in mode.type.choices, "--mode heads stays available as the fast one"  # type: ignore[attr-defined]
