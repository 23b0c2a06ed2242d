"""Vega-Lite specifications of the dashboard's charts, made from the panels' dicts (pure: data in, JSON out).

Every chart carries a ``description`` (vega-embed gives it to screen readers as the SVG's aria label) and
never tells series apart by colour alone: lines also differ by dash and point shape, cells carry their value.
The page puts a table with the same numbers next to each chart.
"""

from __future__ import annotations

from typing import Any

__all__ = ["chart_specs"]

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier only: nothing is fetched from it
WIDTH: Any = "container"


def _base(description: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "description": description,
        "width": WIDTH,
        "height": 220,
        "autosize": {"type": "fit", "contains": "padding"},
        "data": {"values": values},
        "config": {"axis": {"labelFontSize": 11, "titleFontSize": 12}, "legend": {"orient": "bottom"}},
    }


def _learning_curve(panel: dict[str, Any]) -> dict[str, Any] | None:
    names = panel["metric_names"] | {"val_loss": "validation loss", "train_loss": "training loss"}
    values = [
        {"version": i + 1, "model": v["name"], "metric": names[key], "value": v[key]}
        for i, v in enumerate(panel["versions"])
        for key in names
        if v.get(key) is not None
    ]
    if not values:
        return None
    spec = _base(
        "Learning curve: each recorded metric (one line per metric, told apart by dash and point shape) "
        "of every model version, oldest first. The table below the chart lists the same numbers.",
        values,
    )
    spec["mark"] = {"type": "line", "point": {"size": 70, "filled": True}}
    spec["encoding"] = {
        "x": {"field": "version", "type": "ordinal", "title": "model version (oldest first)"},
        "y": {"field": "value", "type": "quantitative", "title": "value"},
        "color": {"field": "metric", "type": "nominal", "title": "metric"},
        "strokeDash": {"field": "metric", "type": "nominal", "legend": None},  # the legend shows colour + shape
        "shape": {"field": "metric", "type": "nominal", "title": "metric"},
        "tooltip": [{"field": "model"}, {"field": "metric"}, {"field": "value", "format": ".4f"}],
    }
    return spec


def _reliability(panel: dict[str, Any]) -> dict[str, Any] | None:
    rel = panel["reliability"]
    if not rel:
        return None
    spec = _base(
        f"Reliability diagram of {rel['model']} on {rel['pairs']} held-out pairs: observed share of wins against "
        "the predicted probability, per bin; a calibrated model follows the diagonal.",
        rel["bins"],
    )
    spec["height"] = 220
    spec["layer"] = [
        {
            "data": {"values": [{"x": 0, "y": 0}, {"x": 1, "y": 1}]},
            "mark": {"type": "line", "strokeDash": [4, 4], "color": "#888"},
            "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}},
        },
        {
            "mark": {"type": "line", "point": {"size": 60, "filled": True}},
            "encoding": {
                "x": {
                    "field": "confidence",
                    "type": "quantitative",
                    "title": "predicted P(win)",
                    "scale": {"domain": [0, 1]},
                },
                "y": {
                    "field": "accuracy",
                    "type": "quantitative",
                    "title": "observed win rate",
                    "scale": {"domain": [0, 1]},
                },
                "tooltip": [{"field": "bin"}, {"field": "confidence"}, {"field": "accuracy"}, {"field": "n"}],
            },
        },
    ]
    return spec


def _labels_over_time(panel: dict[str, Any]) -> dict[str, Any] | None:
    if not panel["series"]:
        return None
    spec = _base(
        f"Labels per {panel['unit']} by annotator (backend in the tooltip), stacked; the table below lists them.",
        [{**row, "who": f"{row['annotator']} ({row['backend']})"} for row in panel["series"]],
    )
    spec["mark"] = {"type": "bar", "stroke": "white", "strokeWidth": 1}
    spec["encoding"] = {
        "x": {"field": "time", "type": "ordinal", "title": f"{panel['unit']} (UTC)"},
        "y": {"field": "labels", "type": "quantitative", "title": "labels", "stack": True},
        "color": {"field": "who", "type": "nominal", "title": "annotator (backend)"},
        "order": {"field": "who"},
        "tooltip": [{"field": "time"}, {"field": "annotator"}, {"field": "backend"}, {"field": "labels"}],
    }
    return spec


def _kappa_heatmap(panel: dict[str, Any]) -> dict[str, Any] | None:
    if not panel["kappa"]:
        return None
    values = [{**c, "text": "–" if c["kappa"] is None else f"{c['kappa']:.2f}"} for c in panel["kappa"]]
    spec = _base(
        "Cohen's kappa between each two annotators (a dash: too few shared pairs); each cell shows its value.",
        values,
    )
    spec["height"] = {"step": 36}
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    spec["encoding"] = {
        "x": {"field": "other", "type": "nominal", "title": None},
        "y": {"field": "rater", "type": "nominal", "title": None},
    }
    spec["layer"] = [
        {
            "mark": "rect",
            "encoding": {
                "color": {
                    "field": "kappa",
                    "type": "quantitative",
                    "scale": {"domain": [-1, 1], "scheme": "blueorange"},
                    "title": "kappa",
                }
            },
        },
        {"mark": {"type": "text", "fontSize": 12}, "encoding": {"text": {"field": "text"}}},
    ]
    return spec


def _uncertainty(panel: dict[str, Any]) -> dict[str, Any] | None:
    if not panel["histogram"]:
        return None
    spec = _base(
        f"Uncertainty of {panel['model']} over {panel['scored_pool']} unlabelled pool pairs: pairs per bin of "
        "entropy of P(a≻b | not a tie), in bits; the right end is where the model is least sure.",
        panel["histogram"],
    )
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "x": {"field": "bin", "type": "ordinal", "sort": None, "title": "entropy (bits)"},
        "y": {"field": "pairs", "type": "quantitative", "title": "pool pairs"},
        "tooltip": [{"field": "bin"}, {"field": "pairs"}],
    }
    return spec


def _audit_shifts(panel: dict[str, Any]) -> dict[str, Any] | None:
    audit = panel["audit"]
    values = [
        {"probe": p["name"], "shift": p["mean_shift"], "low": p["ci"][0], "high": p["ci"][1]}
        for p in (audit["probes"] if audit else [])
        if p["mean_shift"] is not None and p["ci"] and None not in p["ci"]
    ]
    if not values:
        return None
    level = round((audit["confidence"] or 0.95) * 100)
    spec = _base(
        f"Reward-hacking audit of {audit['model']} on {audit['n_pairs']} pairs: the mean change in reward when each "
        f"probe edits a response (a dot), with its {level}% interval (a bar); the line marks no change. The table "
        "below lists the numbers, the flip rates and the shift beyond length.",
        values,
    )
    spec["height"] = {"step": 26}
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    probe = {"field": "probe", "type": "nominal", "sort": None, "title": None}
    spec["layer"] = [
        {
            "data": {"values": [{"zero": 0}]},
            "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#888"},
            "encoding": {"x": {"field": "zero", "type": "quantitative"}},
        },
        {
            "mark": {"type": "rule", "strokeWidth": 2},
            "encoding": {
                "y": probe,
                "x": {"field": "low", "type": "quantitative", "title": f"mean reward shift ({level}% interval)"},
                "x2": {"field": "high"},
            },
        },
        {
            "mark": {"type": "point", "filled": True, "size": 70},
            "encoding": {
                "y": probe,
                "x": {"field": "shift", "type": "quantitative"},
                "tooltip": [
                    {"field": "probe"},
                    {"field": "shift", "format": ".4f"},
                    {"field": "low", "format": ".4f"},
                    {"field": "high", "format": ".4f"},
                ],
            },
        },
    ]
    return spec


def chart_specs(panels: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart id → its Vega-Lite spec; a chart with nothing to draw yet is left out (the page says why)."""
    made = {
        "learning-curve": _learning_curve(panels["model"]),
        "reliability": _reliability(panels["model"]),
        "labels-over-time": _labels_over_time(panels["labels"]),
        "kappa-heatmap": _kappa_heatmap(panels["agreement"]),
        "uncertainty": _uncertainty(panels["queue"]),
        "audit-shifts": _audit_shifts(panels["audit"]),
    }
    return {name: spec for name, spec in made.items() if spec is not None}
