"""``prefloop demo``: the whole loop on one machine, offline, in a few minutes.

A fresh SQLite store, simulated annotators that answer from real human labels (the
shared HH-RLHF pairs when present, otherwise generated pairs with a learnable signal),
the offline MiniLM reward model, several ``sync`` cycles with milestone retrains, and a
Markdown report with PNGs: learning curve, calibration, reward vs length, agreement.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from prefloop.config import AcquisitionSettings, BackendSection, LoopConfig, MilestoneSettings
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.models import Annotator, Label
from prefloop.store.pairs import add_pairs
from prefloop.types import Choice, PairRecord

__all__ = ["find_shared_hh", "generated_records", "run_demo", "write_oracle"]

HH_NAME = "hh-rlhf-harmless-base-test.dev.jsonl.gz"
TOPICS = ["tea", "bikes", "python", "gardening", "taxes", "sleep", "running", "chess", "bread", "rain"]
GOOD = ["clear", "kind", "accurate", "helpful", "careful", "honest"]
BAD = ["rude", "wrong", "careless", "dismissive", "misleading", "lazy"]
ANNOTATORS = [{"id": "alice", "accuracy": 0.95}, {"id": "bob", "accuracy": 0.85}, {"id": "carol", "accuracy": 0.75}]


def find_shared_hh() -> Path | None:
    """The shared HH pairs, if this machine has them: $PREFLOOP_DEMO_DATA, or ../shared/data near here."""
    env = os.environ.get("PREFLOOP_DEMO_DATA")
    if env:
        return Path(env) if Path(env).exists() else None
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *Path.cwd().parents, *here.parents):
        candidate = base / "shared" / "data" / HH_NAME
        if candidate.exists():
            return candidate
    return None


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


def _load_records(source: Path | None, n_generated: int) -> tuple[list[PairRecord], str]:
    if source is None:
        return generated_records(n_generated), f"{n_generated} generated pairs (no shared HH data found)"
    from prefloop.data.ingest import read_valid_records

    records = read_valid_records(str(source))
    return records, f"{len(records)} HH-RLHF harmless pairs from {source}"


def _clean(root: Path) -> None:
    """Start from an empty store and annotators; keep the embedding cache so a rerun is faster."""
    import shutil

    for name in ("prefloop.db", "prefloop.db-wal", "prefloop.db-shm"):
        (root / name).unlink(missing_ok=True)
    for folder in (root / "annotators", root / "report", root / "artifacts" / "models"):
        shutil.rmtree(folder, ignore_errors=True)


def demo_config(workdir: Path, oracle: Path, cycles_queue: int, milestone: int) -> LoopConfig:
    return LoopConfig(
        db=f"sqlite:///{workdir / 'prefloop.db'}",
        backend=BackendSection(name="simulated", project="demo", url=str(workdir / "annotators"),
                               annotators_per_pair=2,
                               extra={"oracle_path": str(oracle), "annotators": ANNOTATORS, "seed": 0}),
        acquisition=AcquisitionSettings(strategy="diverse:bald", queue_size=cycles_queue, max_per_prompt=1),
        milestone=MilestoneSettings(every=milestone, min_labels=milestone),
        model={"mode": "heads", "k": 5, "max_length": 256, "head": "linear"},
        artifacts_dir=str(workdir / "artifacts"),
    )


def _agreement_plot(engine: Engine, path: Path) -> dict[str, Any]:
    """Each annotator's agreement with the other annotators on shared pairs (bar chart)."""
    from prefloop.model.plots import pyplot, save_figure

    plt = pyplot()

    votes: dict[int, dict[str, str]] = defaultdict(dict)
    with session_scope(engine) as session:
        for pair_id, who, choice in session.execute(
                select(Label.pair_id, Annotator.external_id, Label.choice).join(Annotator)
                .where(Label.live(), Label.choice != "skip")):
            votes[pair_id][who] = choice
    agree: dict[str, list[int]] = defaultdict(list)
    for by_who in votes.values():
        for who, choice in by_who.items():
            others = [c for w, c in by_who.items() if w != who]
            agree[who].extend(int(choice == c) for c in others)
    rates = {who: float(np.mean(v)) for who, v in sorted(agree.items()) if v}
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(rates), list(rates.values()), color="C2")
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with others")
    ax.set_title("Annotator agreement on shared pairs")
    save_figure(fig, path)
    return rates


def _curve_plot(curve: list[dict[str, Any]], path: Path) -> None:
    from prefloop.model.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [c["labels"] for c in curve]
    ax.plot(xs, [c["accuracy"] for c in curve], "o-", label="held-out accuracy")
    ax.plot(xs, [c["log_loss"] for c in curve], "s--", label="held-out log-loss")
    ax.set_xlabel("labels pulled from annotators")
    ax.set_title("Learning curve (demo)")
    ax.legend()
    save_figure(fig, path)


def run_demo(workdir: str = "prefloop-demo", cycles: int = 6, queue: int = 40, milestone: int = 60,
             test_size: int = 300, n_generated: int = 400,
             say: Callable[[str], None] = print) -> Path:
    """Run the loop end to end and return the report's path."""
    from prefloop.reward import evaluate_model
    from prefloop.status import loop_status
    from prefloop.sync import json_logger, run_sync

    started = time.perf_counter()
    root = Path(workdir).resolve()
    _clean(root)
    (root / "report").mkdir(parents=True, exist_ok=True)
    records, described = _load_records(find_shared_hh(), n_generated)
    say(f"data: {described}")
    rng = random.Random(0)
    order = list(range(len(records)))
    rng.shuffle(order)
    test = [records[i] for i in order[:test_size]]
    pool = [records[i] for i in order[test_size:]]
    oracle = write_oracle(pool, root / "oracle.jsonl")
    config = demo_config(root, oracle, queue, milestone)
    assert config.db is not None
    init_db(config.db)
    engine = make_engine(config.db)
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(r.prompt, r.response_a, r.response_b) for r in pool], source="demo-pool")
        add_pairs(session, test, source="demo-test", split="test")
    say(f"store: {root / 'prefloop.db'} ({len(pool)} pool pairs for annotators, {len(test)} held out)")
    log = json_logger()
    curve: list[dict[str, Any]] = []
    last_model = None
    for cycle in range(1, cycles + 1):
        say(f"sync cycle {cycle}/{cycles}")
        report = run_sync(engine, config, log=log, progress=True)
        if report.model and report.model != last_model:
            last_model = report.model
            metrics = evaluate_model(engine, last_model, progress=False)
            with session_scope(engine) as session:
                n_labels = loop_status(session, config)["labels_by_backend"].get("simulated", 0)
            curve.append({"cycle": cycle, "model": last_model, "labels": n_labels,
                          "accuracy": metrics["accuracy"], "log_loss": metrics["log_loss"], "ece": metrics["ece"]})
            say(f"  model {last_model}: {n_labels} labels, held-out accuracy {metrics['accuracy']:.3f}")
    return _write_report(engine, config, root, curve, described, time.perf_counter() - started, say)


def _write_report(engine: Engine, config: LoopConfig, root: Path, curve: list[dict[str, Any]], described: str,
                  seconds: float, say: Callable[[str], None]) -> Path:
    from prefloop.reward import evaluate_model
    from prefloop.status import loop_status

    out = root / "report"
    final = evaluate_model(engine, None, out=str(out), progress=False) if curve else {}
    if curve:
        _curve_plot(curve, out / "learning_curve.png")
    rates = _agreement_plot(engine, out / "agreement.png")
    with session_scope(engine) as session:
        status = loop_status(session, config)
    lines = [
        "# prefloop demo report", "",
        f"Data: {described}. Simulated annotators (accuracy vs the human label): "
        + ", ".join(f"{a['id']} {a['accuracy']}" for a in ANNOTATORS) + ", two per pair.",
        f"Strategy `{config.acquisition.strategy}`, queue {config.acquisition.queue_size}, "
        f"retrain every {config.milestone.every} labels. Ran in {seconds:.0f} s.", "",
        "## Learning curve", "", "| cycle | labels | model | accuracy | log-loss | ECE |", "|---|---|---|---|---|---|",
        *[f"| {c['cycle']} | {c['labels']} | {c['model']} | {c['accuracy']:.3f} | {c['log_loss']:.3f} | "
          f"{c['ece']:.3f} |" for c in curve], "",
        "![learning curve](learning_curve.png)", "",
        "## Final model on the held-out pairs", "",
        *[f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in final.items()
          if not isinstance(v, dict | list)], "",
        "![calibration](reliability.png)", "", "![reward vs length](reward_vs_length.png)", "",
        "## Annotators", "",
        f"Agreement: {json.dumps(status['agreement'])}", "",
        *[f"- {who}: agrees with the others on {rate:.0%} of shared pairs" for who, rate in rates.items()], "",
        "![agreement](agreement.png)", "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    say(f"report: {path}")
    return path
