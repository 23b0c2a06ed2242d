"""Argilla dataset settings: the template (fields, questions, metadata) and the SDK objects built from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefloop.backends.base import BackendError, BackendSettings
from prefloop.resources import shipped_folder

__all__ = ["dataset_settings", "dimension_question", "load_template"]

TEMPLATE_PATH = shipped_folder("templates") / "argilla.json"
_FALLBACK_TEMPLATE: dict[str, Any] = {
    "fields": [{"name": "prompt"}, {"name": "response_a"}, {"name": "response_b"}],
    "preference": {"name": "preference", "labels": {"a": "A", "b": "B", "tie": "Tie"}},
    "strength": {"name": "strength", "values": [1, 2, 3]},
    "rationale": {"name": "rationale"},
    "dimension": {"name_prefix": "dimension_", "labels": {"a": "A", "b": "B", "tie": "Tie"}},
    "metadata": [
        {"name": n, "type": t, "visible_for_annotators": False}
        for n, t in [
            ("pair_key", "terms"),
            ("strategy", "terms"),
            ("score", "float"),
            ("model_version", "terms"),
            ("len_a", "integer"),
            ("len_b", "integer"),
            ("swapped", "terms"),
        ]
    ],
}


def load_template(path: str | None = None) -> dict[str, Any]:
    """Dataset settings from ``path`` (JSON or YAML), else ``templates/argilla.json``, else built-in."""
    candidate = Path(path) if path else TEMPLATE_PATH
    if not candidate.exists():
        if path:
            raise BackendError(f"Argilla template {path} not found")
        return _FALLBACK_TEMPLATE
    text = candidate.read_text(encoding="utf-8")
    if candidate.suffix in (".yaml", ".yml"):
        import yaml  # optional: only for YAML templates

        return dict(yaml.safe_load(text))
    return dict(json.loads(text))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_") or "dimension"


def dimension_question(template: dict[str, Any], dimension: str) -> str:
    """Name of the per-dimension question, e.g. ``dimension_helpful``."""
    return f"{template['dimension'].get('name_prefix', 'dimension_')}{_slug(dimension)}"


def dataset_settings(template: dict[str, Any], settings: BackendSettings) -> Any:
    """``rg.Settings`` for a preference dataset: fields, questions, metadata and task distribution."""
    import argilla as rg

    tpl, s = template, settings
    fields = [rg.TextField(name=f["name"], title=f.get("title"), use_markdown=False) for f in tpl["fields"]]
    pref = tpl["preference"]
    questions: list[Any] = [rg.LabelQuestion(name=pref["name"], labels=pref["labels"], title=pref.get("title"))]
    if s.with_strength:
        questions.append(
            rg.RatingQuestion(
                name=tpl["strength"]["name"],
                values=tpl["strength"]["values"],
                title=tpl["strength"].get("title"),
                required=False,
            )
        )
    if s.with_rationale:
        questions.append(
            rg.TextQuestion(name=tpl["rationale"]["name"], title=tpl["rationale"].get("title"), required=False)
        )
    dim = tpl["dimension"]
    for dimension in s.dimensions:
        questions.append(
            rg.LabelQuestion(
                name=dimension_question(template, dimension),
                labels=dim["labels"],
                required=False,
                title=dim.get("title", "{dimension}").format(dimension=dimension),
            )
        )
    kinds = {
        "terms": rg.TermsMetadataProperty,
        "float": rg.FloatMetadataProperty,
        "integer": rg.IntegerMetadataProperty,
    }
    metadata = [
        kinds[m["type"]](
            name=m["name"],
            title=m.get("title"),
            visible_for_annotators=m.get("visible_for_annotators", False),
        )
        for m in tpl["metadata"]
    ]
    return rg.Settings(
        fields=fields,
        questions=questions,
        metadata=metadata,
        guidelines=tpl.get("guidelines"),
        distribution=rg.TaskDistribution(min_submitted=max(1, s.annotators_per_pair)),
    )
