"""``prefloop demo``: does the loop learn, and does choosing pairs beat random? On real human labels.

The packaged sample of 2,500 real HH-RLHF pairs (``prefloop/demo_data``; ``--data`` takes any
file ``ingest`` reads, ``--synthetic`` generated pairs) is split once into a held-out test set
and a pool. Two arms then run the real loop side by side — the same pool, test set, simulated
annotators (who answer from the human label, with their own error rates), seed and cold-start
batch — one choosing pairs with the acquisition strategy, one at random. Each arm is a fresh
SQLite store driven by ``run_sync`` cycles with milestone retrains of the default (heads) model;
every model is scored on the test set. The report (Markdown and one self-contained HTML page)
shows both learning curves, calibration, reward vs length, annotator agreement, and a reading
of the result with a paired bootstrap interval.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine

from prefloop.config import AcquisitionSettings, BackendSettings, LoopConfig, MilestoneSettings, ModelConfig
from prefloop.errors import PrefloopError
from prefloop.loop.demo_setup import ANNOTATORS, ArmResult, DemoSize, held_out_labels
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.pairs import add_pairs
from prefloop.types import Choice, PairRecord

if TYPE_CHECKING:
    from prefloop.model import RewardEnsemble

__all__ = ["ANNOTATORS", "ArmResult", "DemoSize", "generated_records", "load_demo_records", "run_demo", "write_oracle"]

TOPICS = ["tea", "bikes", "python", "gardening", "taxes", "sleep", "running", "chess", "bread", "rain"]
GOOD = ["clear", "kind", "accurate", "helpful", "careful", "honest"]
BAD = ["rude", "wrong", "careless", "dismissive", "misleading", "lazy"]
SAMPLE_DIMENSION = "helpful"  # the objective the demo trains on the packaged sample


def generated_records(n: int, seed: int = 0) -> list[PairRecord]:
    """Pairs with a learnable signal: the careful response is the preferred one (label set)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Question {i}: what should I know about {topic}?"
        good = f"A {rng.choice(GOOD)} and {rng.choice(GOOD)} answer about {topic}, number {i}."
        bad = f"A {rng.choice(BAD)} and {rng.choice(BAD)} answer about {topic}, number {i}."
        if rng.random() < 0.5:
            out.append(PairRecord(prompt=prompt, response_a=good, response_b=bad, label=Choice.A))
        else:
            out.append(PairRecord(prompt=prompt, response_a=bad, response_b=good, label=Choice.B))
    return out


def write_oracle(records: list[PairRecord], path: Path) -> Path:
    """Oracle JSONL (canonical orientation) the simulated annotators answer from."""
    with path.open("w") as handle:
        for record in records:
            c = record.canonical()
            assert c.label is not None, "oracle records carry their label"
            handle.write(json.dumps({"pair_key": c.key, "choice": c.label.value}) + "\n")
    return path


def _sample_description() -> str:
    from prefloop.resources import demo_sample

    manifest = json.loads((demo_sample().parent / "manifest.json").read_text())
    parts = ", ".join(f"{v['taken']:,} {k}" for k, v in manifest["sources"].items() if k.startswith(SAMPLE_DIMENSION))
    return (
        f"the {SAMPLE_DIMENSION} pairs of the packaged sample of real HH-RLHF human preferences ({parts}; "
        "MIT, Anthropic 2022)"
    )


def load_demo_records(data: str | None, synthetic: bool, n_generated: int = 600) -> tuple[list[PairRecord], str]:
    """The labelled pairs a demo runs on, and a sentence saying which data they are."""
    if synthetic:
        return generated_records(n_generated), f"{n_generated} generated pairs (--synthetic; not real preferences)"
    from prefloop.data.ingest import read_valid_records
    from prefloop.resources import demo_sample

    source = Path(data) if data else demo_sample()
    if data and not source.exists():
        raise PrefloopError(f"--data {data}: file not found")
    records = [r for r in read_valid_records(str(source)) if r.label in (Choice.A, Choice.B, Choice.TIE)]
    if data is None:
        # One objective per reward: helpfulness and harmlessness pull in opposite directions, and one
        # frozen-feature model trained on both stayed at chance (0.50-0.55 with 600 pairs, measured).
        records = [r for r in records if r.dimension == SAMPLE_DIMENSION]
    if len(records) < 100:
        raise PrefloopError(f"{source}: only {len(records)} labelled pairs; the demo needs at least 100")
    described = _sample_description() if data is None else f"{len(records):,} labelled pairs from {source}"
    return records, described


def _split(records: list[PairRecord], size: DemoSize) -> tuple[list[PairRecord], list[PairRecord]]:
    order = list(range(len(records)))
    random.Random(0).shuffle(order)
    if size.max_pairs is not None:
        order = order[: size.max_pairs]
    n_test = min(size.test_size, len(order) // 2)
    return [records[i] for i in order[n_test:]], [records[i] for i in order[:n_test]]


def arm_config(root: Path, oracle: Path, strategy: str, size: DemoSize, cache: Path) -> LoopConfig:
    """The loop configuration of one arm: simulated annotators, the default heads model."""
    return LoopConfig(
        db=f"sqlite:///{root / 'prefloop.db'}",
        backend=BackendSettings(
            name="simulated",
            project="demo",
            url=str(root / "annotators"),
            annotators_per_pair=2,
            extra={"oracle_path": str(oracle), "annotators": ANNOTATORS, "seed": 0},
        ),
        acquisition=AcquisitionSettings(strategy=strategy, queue_size=size.queue, max_per_prompt=1),
        milestone=MilestoneSettings(every=size.milestone, min_labels=size.milestone),
        # the embedding cache stays the shared one (cache_dir unset), so a rerun embeds nothing again
        model=ModelConfig(mode="heads", k=5, max_length=256, head="linear"),
        artifacts_dir=str(root / "artifacts"),
    )


def demo_ensemble(engine: Engine, model: str | None) -> RewardEnsemble:
    """The demo store's model ``model``, loaded for scoring the held-out pairs."""
    from prefloop.loop.reward import load_ensemble
    from prefloop.store.versions import find_model

    with session_scope(engine) as session:
        version = find_model(session, model)
        if version is None:
            raise PrefloopError(f"model {model} is missing from the demo's store: rerun `prefloop demo`")
        return load_ensemble(version)


def _score_test(engine: Engine, model: str, test: list[PairRecord]) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Metrics of ``model`` on the held-out pairs, which pairs it got right, and its prediction."""
    from prefloop.model import evaluate_prediction

    ens = demo_ensemble(engine, model)
    texts = [(r.prompt, r.response_a, r.response_b) for r in test]
    labels = held_out_labels(test)
    pred = ens.predict(texts)
    metrics, _, _ = evaluate_prediction(pred, texts, labels)
    decisive = np.array([r.label in (Choice.A, Choice.B) for r in test])
    wins_a = np.array([r.label is Choice.A for r in test])
    correct = ((pred.p_a > pred.p_b) == wins_a)[decisive]
    return metrics, correct.astype(np.float64), pred


def _labels_pulled(engine: Engine) -> tuple[int, int]:
    """Live labels the annotators gave (the held-out pairs' labels are not counted), and their pairs."""
    from prefloop.store.queries import pool_label_counts

    with session_scope(engine) as session:
        return pool_label_counts(session)


def _run_arm(
    arm: ArmResult,
    pool: list[PairRecord],
    test: list[PairRecord],
    size: DemoSize,
    label: str,
    say: Callable[[str], None],
) -> None:
    from prefloop.loop.sync import run_sync

    assert arm.config.db is not None
    init_db(arm.config.db)
    engine = make_engine(arm.config.db)
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(r.prompt, r.response_a, r.response_b) for r in pool], source="demo-pool")
        add_pairs(session, test, source="demo-test", split="test")
    last = None
    quiet = lambda entry: None  # noqa: E731 - the demo prints its own progress lines
    for cycle in range(1, size.cycles + 1):
        report = run_sync(engine, arm.config, log=quiet, progress=True)
        if report.model and report.model != last:
            last = report.model
            metrics, correct, pred = _score_test(engine, last, test)
            n_labels, n_pairs = _labels_pulled(engine)
            arm.curve.append(
                {
                    "cycle": cycle,
                    "model": last,
                    "labels": n_labels,
                    "pairs": n_pairs,
                    "accuracy": metrics["accuracy"],
                    "log_loss": metrics["log_loss"],
                    "ece": metrics["ece"],
                    "length_corr": metrics.get("length_corr"),
                }
            )
            arm.final_correct, arm.final_model, arm.final_prediction = correct, last, pred
            say(
                f"  {label} cycle {cycle}/{size.cycles}: {n_labels} labels on {n_pairs} pairs → "
                f"held-out accuracy {metrics['accuracy']:.3f}, log-loss {metrics['log_loss']:.3f}, "
                f"ECE {metrics['ece']:.3f}"
            )
        else:
            say(f"  {label} cycle {cycle}/{size.cycles}: tasks pushed, waiting for labels")
    engine.dispose()


def run_demo(
    workdir: str = "prefloop-demo",
    data: str | None = None,
    synthetic: bool = False,
    quick: bool = False,
    strategy: str | None = None,
    size: DemoSize | None = None,
    say: Callable[[str], None] = print,
) -> Path:
    """Run both arms and write the report; returns the Markdown report's path (HTML beside it)."""
    from prefloop.loop.demo_report import write_report

    started = time.perf_counter()
    size = size or (DemoSize.quick() if quick else DemoSize.full())
    strategy = strategy or AcquisitionSettings().strategy
    if strategy == "random":
        raise PrefloopError("--strategy random: the demo compares a strategy WITH random; pick another one")
    root = Path(workdir).resolve()
    records, described = load_demo_records(data, synthetic)
    pool, test = _split(records, size)
    say(f"data: {described}")
    say(f"split: {len(pool):,} pool pairs for the annotators, {len(test):,} held out for evaluation")
    for name in ("arms", "report"):
        shutil.rmtree(root / name, ignore_errors=True)  # the embedding cache is kept: a rerun is faster
    (root / "report").mkdir(parents=True)
    oracle = write_oracle(pool, root / "oracle.jsonl")
    arms = []
    for i, name in enumerate((strategy, "random"), start=1):
        arm_root = root / "arms" / name.replace(":", "-")
        arm = ArmResult(name, arm_root, arm_config(arm_root, oracle, name, size, root / "embedding-cache"))
        say(f"arm {i}/2: pairs chosen by `{name}`")
        _run_arm(arm, pool, test, size, name, say)
        arms.append(arm)
    path = write_report(root / "report", arms, test, described, size, time.perf_counter() - started)
    say(f"report: {path}")
    say(f"report (HTML): {path.with_suffix('.html')}")
    return path
