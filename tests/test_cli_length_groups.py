"""Accuracy by length group in `prefloop eval` and `prefloop audit`, as a user runs them (real store, model, CLI).

Two hand-built worlds: a model trained where only length tells the preferred response apart (the
longer one always wins) meets pairs where people chose the shorter one, and must be flagged; a
model trained on a content signal, with lengths that say nothing, must not be.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prefloop.model.length_groups import GROUPS, MIN_GROUP
from tests.clirun import run

slow = pytest.mark.slow  # trains a small heads model, then evaluates or audits it (minutes on a loaded CPU)

TOPICS = ("tea", "bikes", "taxes", "rain", "chess", "bread", "moss", "glass", "owls", "jazz")


def _rows(n: int, start: int, chosen_longer: bool) -> list[dict[str, str]]:
    """Pairs whose only difference is length: the same sentence, once plain and once padded."""
    rows = []
    for i in range(start, start + n):
        topic = TOPICS[i % len(TOPICS)]
        short = f"Here is what I know about {topic}, item {i}."
        long = short + " It is worth saying again and again, at length, in many more words than needed." * 3
        chosen, rejected = (long, short) if chosen_longer else (short, long)
        # alternate the side the preferred response is on, so position says nothing
        a, b, label = (chosen, rejected, "a") if i % 2 else (rejected, chosen, "b")
        rows.append({"prompt": f"Tell me about {topic} ({i})", "response_a": a, "response_b": b, "label": label})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _train(folder: Path, rows: list[dict[str, str]]) -> str:
    _write(folder / "train.jsonl", rows)
    run(folder, "init")
    run(folder, "ingest", "train.jsonl")
    return run(folder, "train", "--mode", "heads", "-k", "2", "--max-length", "64").stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def length_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose model learned "the longer response wins", and test files that confound or reverse it."""
    folder = tmp_path_factory.mktemp("length")
    _train(folder, _rows(60, 0, chosen_longer=True))
    _write(folder / "reversed.jsonl", _rows(40, 100, chosen_longer=False) + _rows(MIN_GROUP, 200, chosen_longer=True))
    _write(folder / "same.jsonl", _rows(40, 300, chosen_longer=True))
    return folder


@slow
def test_eval_flags_a_length_detector_in_text_json_and_report(length_model: Path) -> None:
    folder = length_model
    metrics = json.loads(run(folder, "eval", "--data", "reversed.jsonl", "--json", "--out", "eval").stdout)
    groups = metrics["length_groups"]
    assert set(groups["groups"]) == set(GROUPS)
    assert groups["groups"]["chosen_shorter"]["n"] == 40 and groups["groups"]["chosen_longer"]["n"] == MIN_GROUP
    assert groups["worst_group"] == "chosen_shorter" and groups["length_bias_flag"] is True
    # the confound: the worst group sits far below the overall accuracy
    assert groups["worst_group_accuracy"] < 0.5 < groups["groups"]["chosen_longer"]["accuracy"]
    assert groups["worst_group_accuracy"] < metrics["accuracy"] - 0.2
    low, high = groups["worst_group_ci_low"], groups["worst_group_ci_high"]
    assert low <= groups["worst_group_accuracy"] <= high
    assert (folder / "eval" / "length_groups.png").read_bytes()[:4] == b"\x89PNG"
    assert any(Path(p).name == "length_groups.png" for p in metrics["plots"])
    text = run(folder, "eval", "--data", "reversed.jsonl").stdout
    assert "accuracy by length group" in text and all(name in text for name in GROUPS)
    assert "worst group: chosen_shorter" in text and "warning: length bias" in text
    # one length split on the page: the older by-side figures (near-equal pairs on a side) only in --json
    assert "acc_preferred_shorter" not in text and "acc_preferred_shorter" in metrics


@slow
def test_eval_does_not_flag_where_the_worst_group_is_above_a_coin(length_model: Path) -> None:
    # the same detector on pairs drawn like its training data: every eligible group is right
    metrics = json.loads(run(length_model, "eval", "--data", "same.jsonl", "--json").stdout)
    groups = metrics["length_groups"]
    assert groups["worst_group"] == "chosen_longer" and groups["length_bias_flag"] is False
    assert groups["groups"]["chosen_shorter"]["n"] == 0
    text = run(length_model, "eval", "--data", "same.jsonl").stdout
    assert "worst group: chosen_longer" in text and "warning" not in text


@slow
def test_eval_of_a_content_model_on_independent_lengths_is_not_flagged(tmp_path: Path) -> None:
    from prefloop.loop.demo import generated_records

    rows = [
        {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        for r in generated_records(140, seed=7)
        if r.label is not None
    ]
    _train(tmp_path, rows[:80])
    _write(tmp_path / "heldout.jsonl", rows[80:])
    metrics = json.loads(run(tmp_path, "eval", "--data", "heldout.jsonl", "--json").stdout)
    groups = metrics["length_groups"]
    assert groups["length_bias_flag"] is False and groups["worst_group"] is not None
    assert groups["worst_group_accuracy"] > 0.5
    assert "warning" not in run(tmp_path, "eval", "--data", "heldout.jsonl").stdout


@slow
def test_audit_with_labels_reports_groups_and_the_flag(length_model: Path) -> None:
    folder = length_model
    _write(folder / "labelled.jsonl", _rows(MIN_GROUP, 500, chosen_longer=False))
    args = ("audit", "--data", "labelled.jsonl", "--resamples", "50")
    report = json.loads(run(folder, *args, "--json", "--out", "audit").stdout)
    groups = report["length_groups"]
    assert groups["n_labelled_pairs"] == MIN_GROUP and groups["length_bias_flag"] is True
    assert groups["worst_group"] == "chosen_shorter" and groups["worst_group_accuracy"] < 0.5
    markdown = (folder / "audit" / "audit.md").read_text()
    assert "## Accuracy by length group" in markdown and f"| chosen_shorter | {MIN_GROUP} |" in markdown
    assert "warning: length bias" in markdown
    assert json.loads((folder / "audit" / "audit.json").read_text())["length_groups"] == groups
    assert (folder / "audit" / "length_groups.png").exists()
    text = run(folder, *args).stdout
    assert "worst group: chosen_shorter" in text and "warning: length bias" in text
    # unlabelled pairs: no groups, no flag
    unlabelled = [{k: v for k, v in r.items() if k != "label"} for r in _rows(4, 600, chosen_longer=False)]
    _write(folder / "pairs.jsonl", unlabelled)
    plain = json.loads(run(folder, "audit", "--data", "pairs.jsonl", "--resamples", "20", "--json").stdout)
    assert plain["length_groups"] is None


def test_audit_labels_take_each_pairs_majority_in_its_first_orientation(tmp_path: Path) -> None:
    from prefloop.loop.audit import audit_pairs_and_labels

    rows = [
        {"prompt": "q0", "response_a": "x", "response_b": "y", "label": "a"},
        {"prompt": "q0", "response_a": "y", "response_b": "x", "label": "a"},  # swapped: a vote for y
        {"prompt": "q0", "response_a": "y", "response_b": "x", "label": "a"},  # y wins 2 to 1
        {"prompt": "q1", "response_a": "u", "response_b": "v", "label": "a"},
        {"prompt": "q1", "response_a": "u", "response_b": "v", "label": "b"},  # an even split: a tie
        {"prompt": "q2", "response_a": "s", "response_b": "t", "label": "tie"},
        {"prompt": "q3", "response_a": "m", "response_b": "n"},  # no label
    ]
    _write(tmp_path / "votes.jsonl", rows)
    pairs, labels = audit_pairs_and_labels(str(tmp_path / "votes.jsonl"))
    assert pairs == [("q0", "x", "y"), ("q1", "u", "v"), ("q2", "s", "t"), ("q3", "m", "n")]
    assert labels[:3].tolist() == [0.0, 0.5, 0.5] and math.isnan(labels[3])
