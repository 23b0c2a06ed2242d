"""The demo's report: one list of blocks rendered twice, as Markdown and as a self-contained HTML page.

It answers the two questions a reward-model team brings to the demo — does the loop learn,
and does choosing pairs beat random — with the learning curves of both arms, a paired
bootstrap interval on the final accuracy difference (the same held-out pairs score both
arms), calibration and reward-vs-length plots of the final model, and annotator agreement.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine

from prefloop.errors import PrefloopError
from prefloop.loop.demo_setup import ANNOTATORS, ArmResult, DemoSize, held_out_labels
from prefloop.store.db import make_engine, session_scope

if TYPE_CHECKING:
    from prefloop.types import PairRecord

__all__ = ["paired_bootstrap", "reading", "write_report"]

Block = tuple[Any, ...]  # ("h1"|"h2"|"p", text) | ("table", header, rows) | ("img", file, alt)


def paired_bootstrap(diff: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-pair differences and its 95 % percentile-bootstrap interval (pairs resampled)."""
    diff = np.asarray(diff, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def _labels_to_reach(curve: list[dict[str, Any]], target: float) -> int | None:
    return next((c["labels"] for c in curve if c["accuracy"] >= target), None)


def reading(chosen: ArmResult, random_arm: ArmResult, n_test: int) -> tuple[str, dict[str, Any]]:
    """One honest paragraph on what the two curves show, and the numbers behind it."""
    first, last = chosen.curve[0], chosen.curve[-1]
    assert chosen.final_correct is not None and random_arm.final_correct is not None
    diff, lo, hi = paired_bootstrap(chosen.final_correct - random_arm.final_correct)
    r_last = random_arm.curve[-1]
    reach = _labels_to_reach(chosen.curve, r_last["accuracy"])
    aulc = {a.strategy: float(np.mean([c["accuracy"] for c in a.curve])) for a in (chosen, random_arm)}
    learned = last["log_loss"] < first["log_loss"] and last["accuracy"] > first["accuracy"]
    text = (
        f"With `{chosen.strategy}`, held-out accuracy went from {first['accuracy']:.3f} at {first['labels']} labels "
        f"to {last['accuracy']:.3f} at {last['labels']}, and log-loss from {first['log_loss']:.3f} to "
        f"{last['log_loss']:.3f} (a coin scores 0.693): "
        + ("the loop learned from the labels. " if learned else "this run did not show the loop learning. ")
        + f"Against random choice, on the same {n_test} held-out pairs, the final models differ by "
        f"{100 * diff:+.1f} accuracy points (95 % paired-bootstrap interval {100 * lo:+.1f} to {100 * hi:+.1f}); "
    )
    if lo > 0:
        text += f"`{chosen.strategy}` was better in this run. "
    elif hi < 0:
        text += "random was better in this run. "
    else:
        text += "the interval includes zero, so this run cannot tell the two apart. "
    text += (
        f"Averaged over the curve, accuracy was {aulc[chosen.strategy]:.3f} vs {aulc['random']:.3f}. "
        + (
            f"`{chosen.strategy}` reached random's final accuracy after {reach} labels, random after "
            f"{r_last['labels']}. "
            if reach is not None
            else f"`{chosen.strategy}` never reached random's final accuracy ({r_last['accuracy']:.3f}). "
        )
        + "One run on one sample is an anecdote: docs/benchmarks.md has the multi-seed comparison."
    )
    numbers = {"diff": diff, "ci": [lo, hi], "aulc": aulc, "labels_to_reach": reach, "learned": learned}
    return text, numbers


def _curve_plot(arms: list[ArmResult], path: Path) -> None:
    from prefloop.model.plots import pyplot, save_figure

    plt = pyplot()
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(9, 3.5))
    for i, arm in enumerate(arms):
        xs = [c["labels"] for c in arm.curve]
        acc.plot(xs, [c["accuracy"] for c in arm.curve], "o-", color=f"C{i}", label=arm.strategy)
        loss.plot(xs, [c["log_loss"] for c in arm.curve], "s-", color=f"C{i}", label=arm.strategy)
    loss.axhline(np.log(2), color="grey", ls=":", label="coin (0.693)")
    acc.set_ylabel("held-out accuracy")
    loss.set_ylabel("held-out log-loss")
    for ax in (acc, loss):
        ax.set_xlabel("labels pulled from annotators")
        ax.legend(fontsize=8)
    fig.suptitle("Learning curves: strategy vs random, same pool, annotators and test set")
    save_figure(fig, path)


def _agreement(engine: Engine, path: Path) -> dict[str, float]:
    """Each annotator's agreement with the other annotators on shared pairs (bar chart)."""
    from prefloop.model.plots import pyplot, save_figure
    from prefloop.store.queries import votes_by_annotator

    with session_scope(engine) as session:
        votes = votes_by_annotator(session)
    agree: dict[str, list[int]] = defaultdict(list)
    for by_who in votes.values():
        for who, choice in by_who.items():
            agree[who].extend(int(choice == c) for w, c in by_who.items() if w != who)
    rates = {who: float(np.mean(v)) for who, v in sorted(agree.items()) if v}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(rates), list(rates.values()), color="C2")
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with others")
    ax.set_title("Annotator agreement on shared pairs")
    save_figure(fig, path)
    return rates


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _blocks(
    arms: list[ArmResult],
    test: list[PairRecord],
    described: str,
    size: DemoSize,
    seconds: float,
    final: dict[str, Any],
    rates: dict[str, float],
    agreement: dict[str, Any],
) -> list[Block]:
    text, _numbers = reading(arms[0], arms[1], len(test))
    curve_rows = [
        [a.strategy, c["cycle"], c["labels"], c["pairs"], c["accuracy"], c["log_loss"], c["ece"]]
        for a in arms
        for c in a.curve
    ]
    final_rows = [[k, v] for k, v in final.items() if isinstance(v, float | int) and not isinstance(v, bool)]
    who = ", ".join(f"{a['id']} ({a['accuracy']:.0%} agreement with the human label)" for a in ANNOTATORS)
    return [
        ("h1", "prefloop demo: does the loop learn, and does choosing pairs beat random?"),
        (
            "p",
            f"Data: {described}. {len(test)} pairs are held out for evaluation; the rest form the pool. "
            f"Simulated annotators answer from the human label with their own error rates: {who}; two per "
            f"pair. Both arms start from the same random batch, retrain the heads model (frozen MiniLM "
            f"features, K = 5 linear heads; seconds per retrain) every "
            f"{size.milestone} labels with {size.queue} tasks in the queue, for {size.cycles} sync cycles. "
            f"Ran in {seconds:.0f} s.",
        ),
        ("h2", "Reading"),
        ("p", text),
        ("h2", "Learning curves"),
        ("img", "learning_curves.png", "learning curves"),
        ("table", ["arm", "cycle", "labels", "pairs", "accuracy", "log-loss", "ECE"], curve_rows),
        ("h2", f"Final model of `{arms[0].strategy}` on the held-out pairs"),
        ("table", ["metric", "value"], final_rows),
        (
            "p",
            "Calibration: when the model says 70 %, the preferred side should win 70 % of the time "
            "(the diagonal). Reward vs length: a strong slope means the model leans on length, the "
            "classic reward-model shortcut.",
        ),
        ("img", "reliability.png", "calibration"),
        ("img", "reward_vs_length.png", "reward vs length"),
        ("h2", "Annotators"),
        (
            "p",
            "Agreement over pairs labelled twice: "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in agreement.items() if not isinstance(v, dict | list)),
        ),
        ("table", ["annotator", "agreement with the others"], [[k, v] for k, v in rates.items()]),
        ("img", "agreement.png", "annotator agreement"),
    ]


def _markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, *rest in blocks:
        if kind == "h1":
            out += [f"# {rest[0]}", ""]
        elif kind == "h2":
            out += [f"## {rest[0]}", ""]
        elif kind == "p":
            out += [rest[0], ""]
        elif kind == "img":
            out += [f"![{rest[1]}]({rest[0]})", ""]
        elif kind == "table":
            header, rows = rest
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


def _inline_code(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html(blocks: list[Block], folder: Path) -> str:
    body: list[str] = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{_inline_code(rest[0])}</{kind}>")
        elif kind == "img":
            data = base64.b64encode((folder / rest[0]).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(rest[1])}" src="data:image/png;base64,{data}">')
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;line-height:1.5}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}img{max-width:100%;display:block;margin:1em 0}code{background:#f3f3f3}"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>prefloop demo report</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_report(
    out: Path, arms: list[ArmResult], test: list[PairRecord], described: str, size: DemoSize, seconds: float
) -> Path:
    """report.md and report.html (plots embedded) in ``out``; returns the Markdown path."""
    from prefloop.loop.reward import report_prediction
    from prefloop.loop.status import loop_status

    if any(not a.curve for a in arms):
        raise PrefloopError("an arm trained no model: raise --cycles or lower --milestone")
    _curve_plot(arms, out / "learning_curves.png")
    assert arms[0].config.db is not None  # the demo gives every arm its own store
    engine = make_engine(arms[0].config.db)
    try:
        texts = [(r.prompt, r.response_a, r.response_b) for r in test]
        first = arms[0]
        labels = held_out_labels(test)
        final = report_prediction(first.final_prediction, texts, labels, first.final_model or "", str(out))
        rates = _agreement(engine, out / "agreement.png")
        with session_scope(engine) as session:
            agreement = loop_status(session, arms[0].config)["agreement"]
    finally:
        engine.dispose()
    blocks = _blocks(arms, test, described, size, seconds, final, rates, agreement)
    path = out / "report.md"
    path.write_text(_markdown(blocks))
    path.with_suffix(".html").write_text(_html(blocks, out))
    return path
