"""Label Studio and Argilla exports, written as those tools write them for prefloop's own projects.

The fixtures follow prefloop's templates (``templates/label_studio.xml``, ``templates/argilla.json``)
and the tools' documented export layouts; every label's winner, skip, annotator, dimension
and strength is checked after ingest -> ``export --kind raw``, and that model suggestions or
predictions never become labels.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select

from prefloop.store.db import session_scope
from prefloop.store.models import Label
from prefloop.types import Choice
from tests.data.formats_helpers import raw_verdicts, run, stats, write_json_array, write_jsonl

PROMPT = "Which is the capital of France?"


def _ls_task(task_id: int, left: str, right: str, annotations: list[dict]) -> dict:
    return {
        "id": task_id,
        "data": {
            "prompt": PROMPT,
            "left": left,
            "right": right,
            "pair_key": f"k{task_id}",
            "swapped": task_id % 2 == 0,
        },
        "annotations": annotations,
        "predictions": [
            {
                "result": [
                    {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": ["b"]}}
                ],
                "score": 0.9,
            }
        ],
    }


def _ls_annotation(ann_id: int, user: int, choice: str | None, cancelled: bool = False, **extra: object) -> dict:
    result = (
        []
        if choice is None
        else [{"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": [choice]}}]
    )
    for name, value in extra.items():
        result.append({"from_name": name, "to_name": "prompt", "value": value})
    return {
        "id": ann_id,
        "completed_by": user,
        "result": result,
        "was_cancelled": cancelled,
        "lead_time": 12.5 + ann_id,
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z",
    }


def test_label_studio_json_choices_cancel_strength_dimension(engine: Engine, tmp_path: Path) -> None:
    tasks = [
        _ls_task(
            1,
            "Paris.",
            "Lyon.",
            [
                _ls_annotation(
                    11,
                    1,
                    "a",
                    strength={"rating": 3},
                    rationale={"text": ["Paris is right"]},
                    dim_harmless={"choices": ["tie"]},
                ),
                _ls_annotation(12, 2, "A is better"),
            ],
        ),
        _ls_task(2, "Marseille.", "Paris!", [_ls_annotation(21, 1, "b"), _ls_annotation(22, 3, None, cancelled=True)]),
    ]
    report = run(engine, write_json_array(tmp_path / "project-1.json", tasks))
    assert report.format == "label-studio"
    assert raw_verdicts(engine, tmp_path) == sorted(
        [
            ("Paris.", "label-studio:1", "overall", 3.0),
            ("tie", "label-studio:1", "harmless", None),
            ("Paris.", "label-studio:2", "overall", None),
            ("Paris!", "label-studio:1", "overall", None),
            ("skip", "label-studio:3", "overall", None),
        ],
        key=repr,
    )
    with session_scope(engine) as session:
        raws = [lb.raw for lb in session.scalars(select(Label))]
    assert {r["lead_time"] for r in raws} == {23.5, 24.5, 33.5, 34.5}, "lead_time kept with each label"


def test_label_studio_pairwise_project(sqlite_engine: Engine, tmp_path: Path) -> None:
    def ann(ann_id: int, user: dict, selected: str) -> dict:
        return {
            "id": ann_id,
            "completed_by": user,
            "was_cancelled": False,
            "lead_time": 4.0,
            "result": [
                {"from_name": "comparison", "to_name": "text1", "type": "pairwise", "value": {"selected": selected}}
            ],
        }

    tasks = [
        {
            "id": 7,
            "data": {"prompt": "Haiku about rain", "text1": "Rain taps softly", "text2": "It rains."},
            "annotations": [
                ann(1, {"id": 5, "email": "ann@example.org"}, "left"),
                ann(2, {"id": 6, "email": "bob@example.org"}, "right"),
            ],
        }
    ]
    run(sqlite_engine, write_json_array(tmp_path / "pairwise.json", tasks))
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("It rains.", "label-studio:bob@example.org", "overall", None),
        ("Rain taps softly", "label-studio:ann@example.org", "overall", None),
    ]


def test_label_studio_json_min(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "id": 1,
            "prompt": PROMPT,
            "left": "Paris.",
            "right": "Lyon.",
            "pair_key": "k1",
            "swapped": False,
            "preference": "a",
            "annotator": "ann@example.org",
            "annotation_id": 11,
            "created_at": "x",
            "updated_at": "x",
            "lead_time": 3.0,
        },
        {
            "id": 1,
            "prompt": PROMPT,
            "left": "Paris.",
            "right": "Lyon.",
            "pair_key": "k1",
            "swapped": False,
            "preference": "Tie",
            "annotator": "bob@example.org",
            "annotation_id": 12,
            "created_at": "x",
            "updated_at": "x",
            "lead_time": 5.0,
        },
    ]
    report = run(sqlite_engine, write_json_array(tmp_path / "project-min.json", rows))
    assert report.format == "label-studio-min"
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Paris.", "label-studio:ann@example.org", "overall", None),
        ("tie", "label-studio:bob@example.org", "overall", None),
    ]


def _argilla_nested(rid: str, a: str, b: str, responses: dict) -> dict:
    return {
        "id": rid,
        "_server_id": f"srv-{rid}",
        "status": "completed",
        "fields": {"prompt": PROMPT, "response_a": a, "response_b": b},
        "metadata": {"pair_key": f"k-{rid}", "swapped": "false"},
        "suggestions": {"preference": {"value": "b", "score": 0.8, "agent": "rm-1"}},
        "responses": responses,
        "vectors": {},
    }


NESTED = [
    _argilla_nested(
        "r1",
        "Paris.",
        "Lyon.",
        {
            "preference": [
                {"value": "a", "user_id": "u1", "status": "submitted"},
                {"value": "b", "user_id": "u2", "status": "draft"},
                {"value": None, "user_id": "u3", "status": "discarded"},
            ],
            "strength": [{"value": 2, "user_id": "u1", "status": "submitted"}],
            "dimension_harmless": [{"value": "tie", "user_id": "u1", "status": "submitted"}],
        },
    ),
    _argilla_nested("r2", "Nice.", "Paris!", {"preference": [{"value": "b", "user_id": "u2", "status": "submitted"}]}),
    _argilla_nested("r3", "Only", "suggested", {}),
]
EXPECTED_ARGILLA = sorted(
    [
        ("Paris.", "argilla:u1", "overall", 2.0),
        ("tie", "argilla:u1", "harmless", None),
        ("skip", "argilla:u3", "overall", None),
        ("Paris!", "argilla:u2", "overall", None),
    ],
    key=repr,
)


def test_argilla_nested_records_suggestions_never_labels(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = run(sqlite_engine, write_json_array(tmp_path / "records.json", NESTED))
    assert report.format == "argilla-records"
    assert raw_verdicts(sqlite_engine, tmp_path) == EXPECTED_ARGILLA
    assert stats(sqlite_engine)["pairs"] == 3, "a record with only a suggestion is an unlabeled pair"


def test_argilla_to_disk_folder(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "argilla_export"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"fields": [], "questions": []}))
    (folder / "dataset.json").write_text(json.dumps({"name": "prefloop"}))
    write_json_array(folder / "records.json", NESTED)
    run(sqlite_engine, folder)
    assert raw_verdicts(sqlite_engine, tmp_path) == EXPECTED_ARGILLA


def _flat(record: dict) -> dict:
    """The ``to_hub`` / ``to_datasets`` layout of one nested record."""
    row = {
        "id": record["id"],
        "status": record["status"],
        "_server_id": record["_server_id"],
        **record["fields"],
        **record["metadata"],
        "preference.suggestion": record["suggestions"]["preference"]["value"],
        "preference.suggestion.score": record["suggestions"]["preference"]["score"],
        "preference.suggestion.agent": record["suggestions"]["preference"]["agent"],
    }
    for question in ("preference", "strength", "dimension_harmless", "rationale"):
        items = record["responses"].get(question, [])
        row[f"{question}.responses"] = [i["value"] for i in items] or None
        row[f"{question}.responses.users"] = [i["user_id"] for i in items] or None
        row[f"{question}.responses.status"] = [i["status"] for i in items] or None
    return row


def test_argilla_flat_hub_layout(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = run(sqlite_engine, write_jsonl(tmp_path / "hub.jsonl", [_flat(r) for r in NESTED]))
    assert report.format == "argilla"
    assert raw_verdicts(sqlite_engine, tmp_path) == EXPECTED_ARGILLA


def test_argilla_flat_as_saved_dataset(sqlite_engine: Engine, tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([_flat(r) for r in NESTED]).save_to_disk(str(tmp_path / "ds"))
    assert run(sqlite_engine, tmp_path / "ds").format == "argilla"
    assert raw_verdicts(sqlite_engine, tmp_path) == EXPECTED_ARGILLA


def test_argilla_dataset_with_other_field_names_via_format_and_map(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A dataset not made by prefloop: its fields are renamed with --map, the format named with --format."""
    record = _argilla_nested("r9", "", "", {"preference": [{"value": "b", "user_id": "u5", "status": "submitted"}]})
    record["fields"] = {"instruction": "Pick one", "answer_1": "Left answer", "answer_2": "Right answer"}
    path = write_json_array(tmp_path / "other.json", [record])
    mapping = {"prompt": "fields.instruction", "response_a": "fields.answer_1", "response_b": "fields.answer_2"}
    assert run(sqlite_engine, path, fmt="argilla-records", mapping=mapping).format == "argilla-records"
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Right answer", "argilla:u5", "overall", None)]


def test_label_studio_generic_choices_project_with_map_and_label_map(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A choices project not made by prefloop: texts renamed with --map, choice values explained with --label-map."""
    rows = [
        {
            "id": 3,
            "question": "Best pet?",
            "answer1": "A cat.",
            "answer2": "A rock.",
            "verdict": "Response 1",
            "annotator": "ann@example.org",
            "annotation_id": 31,
            "lead_time": 2.0,
        },
        {
            "id": 4,
            "question": "Best drink?",
            "answer1": "Sand.",
            "answer2": "Water.",
            "verdict": "Response 2",
            "annotator": "bob@example.org",
            "annotation_id": 41,
            "lead_time": 2.5,
        },
    ]
    path = write_json_array(tmp_path / "choices-min.json", rows)
    mapping = {"prompt": "question", "response_a": "answer1", "response_b": "answer2"}
    labels = {"response 1": Choice.A, "response 2": Choice.B}
    run(sqlite_engine, path, fmt="label-studio-min", mapping=mapping, label_map=labels)
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("A cat.", "label-studio:ann@example.org", "overall", None),
        ("Water.", "label-studio:bob@example.org", "overall", None),
    ]
