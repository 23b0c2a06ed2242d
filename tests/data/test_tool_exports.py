"""Tool exports of projects prefloop did not make (#26), without a server: field and verdict detection.

The shapes are those the real servers write (see tests/backends/test_exports_label_studio.py and
test_exports_argilla.py, which export them from Label Studio 1.23 and Argilla 2.8 themselves);
here each rule of the readers is pinned on a small file: texts found from ``to_name`` or the
keys' names, choices of any wording, ratings and rankings per response, and the no-silent-zero
rule (a file whose annotations give no label stops with exit 2, naming the column and the fix).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prefloop.errors import IngestError, SourceError
from prefloop.types import Choice
from tests.clirun import prefloop
from tests.data.formats_helpers import raw_verdicts, run, stats, write_json_array


def _task(tid: int, data: dict, results: list[list[dict]], cancelled: tuple[int, ...] = ()) -> dict:
    return {
        "id": tid,
        "data": data,
        "annotations": [
            {
                "id": tid * 10 + i,
                "completed_by": i + 1,
                "result": r,
                "was_cancelled": i in cancelled,
                "lead_time": 2.0,
                "created_at": "2026-12-01T10:00:00Z",
                "updated_at": "2026-12-01T10:00:00Z",
            }
            for i, r in enumerate(results)
        ],
        "predictions": [],
    }


def _pairwise(side: str, to: str = "answer1") -> list[dict]:
    return [{"type": "pairwise", "from_name": "comparison", "to_name": to, "value": {"selected": side}}]


RLHF = {"prompt": "Best pet?", "answer1": "A cat.", "answer2": "A rock."}


def test_rlhf_pairwise_template_json(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The issue's first case: data prompt/answer1/answer2, Pairwise to_name answer1, left/right."""
    tasks = [_task(1, RLHF, [_pairwise("left"), _pairwise("right"), []], cancelled=(2,))]
    assert run(sqlite_engine, write_json_array(tmp_path / "rlhf.json", tasks)).format == "label-studio"
    assert raw_verdicts(sqlite_engine, tmp_path) == sorted(
        [
            ("A cat.", "label-studio:1", "overall", None),
            ("A rock.", "label-studio:2", "overall", None),
            ("skip", "label-studio:3", "overall", None),
        ],
        key=repr,
    )


def test_pairwise_left_is_the_first_to_name(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A Pairwise whose first ``to_name`` is the second text: left means that one."""
    tasks = [_task(1, RLHF, [_pairwise("left", to="answer2,answer1")])]
    run(sqlite_engine, write_json_array(tmp_path / "swapped.json", tasks))
    assert raw_verdicts(sqlite_engine, tmp_path) == [("A rock.", "label-studio:1", "overall", None)]


@pytest.mark.parametrize(
    ("choice", "winner"),
    [
        ("Answer 1", "Paris."),
        ("Response B is better", "Lyon."),
        ("Left", "Paris."),
        ("Both are equally good", "tie"),
        ("answer2", "Lyon."),
    ],
)
def test_choices_of_any_wording(sqlite_engine: Engine, tmp_path: Path, choice: str, winner: str) -> None:
    data = {"question": "Capital of France?", "answer1": "Paris.", "answer2": "Lyon."}
    result = [{"type": "choices", "from_name": "verdict", "to_name": "question", "value": {"choices": [choice]}}]
    run(sqlite_engine, write_json_array(tmp_path / "choices.json", [_task(1, data, [result])]))
    assert raw_verdicts(sqlite_engine, tmp_path) == [(winner, "label-studio:1", "overall", None)]


def test_odd_choice_with_label_map(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = {"prompt": "Capital of France?", "model_x": "Paris.", "model_y": "Lyon."}
    result = [{"type": "choices", "from_name": "pick", "to_name": "prompt", "value": {"choices": ["Gold"]}}]
    path = write_json_array(tmp_path / "odd.json", [_task(1, data, [result])])
    run(
        sqlite_engine,
        path,
        mapping={"response_a": "data.model_x", "response_b": "data.model_y"},
        label_map={"gold": Choice.B},
    )
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Lyon.", "label-studio:1", "overall", None)]


def test_rating_per_response_becomes_a_pair_label(sqlite_engine: Engine, tmp_path: Path) -> None:
    def rated(r1: int, r2: int) -> list[dict]:
        return [
            {"type": "rating", "from_name": "rating1", "to_name": "answer1", "value": {"rating": r1}},
            {"type": "rating", "from_name": "rating2", "to_name": "answer2", "value": {"rating": r2}},
        ]

    tasks = [_task(1, RLHF, [rated(2, 5), rated(4, 4)])]
    run(sqlite_engine, write_json_array(tmp_path / "ratings.json", tasks))
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("A rock.", "label-studio:1", "overall", None),
        ("tie", "label-studio:2", "overall", None),
    ]


def test_ranker_over_a_list_gives_every_pair(sqlite_engine: Engine, tmp_path: Path) -> None:
    items = [{"id": "x", "body": "First."}, {"id": "y", "body": "Second."}, {"id": "z", "body": "Third."}]
    data = {"task": "Rank them", "prompt": "Say something.", "items": items}
    result = [
        {"type": "ranker", "from_name": "rank", "to_name": "answers", "value": {"ranker": {"rank": ["z", "x", "y"]}}}
    ]
    run(sqlite_engine, write_json_array(tmp_path / "ranker.json", [_task(1, data, [result])]))
    winners = [w for w, *_ in raw_verdicts(sqlite_engine, tmp_path)]
    assert sorted(winners) == ["First.", "Third.", "Third."], "z beats x and y, x beats y"
    exported = (tmp_path / "raw.jsonl").read_text().splitlines()
    assert {json.loads(line)["prompt"] for line in exported} == {"Say something."}, "the prompt, not the task text"


def test_json_min_with_email_annotator_and_choice_column(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "id": 1,
            "prompt": "Capital of France?",
            "answer1": "Paris.",
            "answer2": "Lyon.",
            "verdict": "Answer 2",
            "annotator": "ann@example.org",
            "annotation_id": 7,
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": "2026-12-01T10:00:00Z",
            "lead_time": 1.5,
        }
    ]
    assert run(sqlite_engine, write_json_array(tmp_path / "min.json", rows)).format == "label-studio-min"
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Lyon.", "label-studio:ann@example.org", "overall", None)]


def _argilla(rid: str, fields: dict, responses: dict) -> dict:
    return {"id": rid, "fields": fields, "metadata": {}, "suggestions": {}, "responses": responses, "vectors": {}}


def test_argilla_options_naming_fields_without_settings(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The issue's second case: options response_a / response_b / tie name the fields they point at."""
    fields = {"instruction": "Capital of France?", "response_a": "Paris.", "response_b": "Lyon."}
    responses = {
        "better": [
            {"value": "response_b", "user_id": "u1", "status": "submitted"},
            {"value": "tie", "user_id": "u2", "status": "submitted"},
            {"value": "response_a", "user_id": "u3", "status": "draft"},
        ]
    }
    run(sqlite_engine, write_json_array(tmp_path / "records.json", [_argilla("r1", fields, responses)]))
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Lyon.", "argilla:u1", "overall", None),
        ("tie", "argilla:u2", "overall", None),
    ]


def test_argilla_option_texts_a_b_from_settings(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / ".argilla").mkdir(parents=True)
    settings = {
        "fields": [{"name": n, "settings": {"type": "text"}} for n in ("prompt", "completion_1", "completion_2")],
        "questions": [
            {
                "name": "choice",
                "settings": {
                    "type": "label_selection",
                    "options": [
                        {"value": "x", "text": "A is better"},
                        {"value": "y", "text": "B is better"},
                        {"value": "z", "text": "Tie"},
                    ],
                },
            }
        ],
    }
    (folder / ".argilla" / "settings.json").write_text(json.dumps(settings))
    fields = {"prompt": "Capital of France?", "completion_1": "Paris.", "completion_2": "Lyon."}
    responses = {"choice": [{"value": "y", "user_id": "u1"}, {"value": "z", "user_id": "u2"}]}
    write_json_array(folder / "records.json", [_argilla("r1", fields, responses)])
    run(sqlite_engine, folder)
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Lyon.", "argilla:u1", "overall", None),
        ("tie", "argilla:u2", "overall", None),
    ]


def test_argilla_rating_per_response(sqlite_engine: Engine, tmp_path: Path) -> None:
    fields = {"prompt": "Capital of France?", "response_1": "Paris.", "response_2": "Lyon."}
    responses = {
        "rating_response_1": [{"value": 5, "user_id": "u1", "status": "submitted"}],
        "rating_response_2": [{"value": 2, "user_id": "u1", "status": "submitted"}],
    }
    run(sqlite_engine, write_json_array(tmp_path / "records.json", [_argilla("r1", fields, responses)]))
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Paris.", "argilla:u1", "overall", None)]


# -- no silent zero ------------------------------------------------------------------------------


def _unreadable_ls(tmp_path: Path) -> Path:
    quality = [{"type": "choices", "from_name": "quality", "to_name": "prompt", "value": {"choices": ["Good"]}}]
    return write_json_array(tmp_path / "quality.json", [_task(1, RLHF, [quality]), _task(2, RLHF, [quality])])


def test_silent_zero_label_studio_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        run(sqlite_engine, _unreadable_ls(tmp_path))
    message = str(caught.value)
    assert "'quality'" in message and "--label-map" in message and "--map" in message
    assert stats(sqlite_engine)["pairs"] == 0, "nothing written"


def test_silent_zero_argilla_to_disk_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    fields = {"prompt": "Capital of France?", "response_a": "Paris.", "response_b": "Lyon."}
    responses = {"overall": [{"value": "good", "user_id": "u1"}]}
    folder = tmp_path / "disk"
    folder.mkdir()
    write_json_array(folder / "records.json", [_argilla(f"r{i}", fields, responses) for i in range(3)])
    with pytest.raises(SourceError) as caught:
        run(sqlite_engine, folder)
    assert "'overall'" in str(caught.value) and "--label-map" in str(caught.value)


def test_silent_zero_from_the_command_line_exits_2_and_keeps_the_store(tmp_path: Path) -> None:
    good = write_json_array(tmp_path / "good.json", [_task(1, RLHF, [_pairwise("left")])])
    assert prefloop(tmp_path, "--db", "sqlite:///s.db", "ingest", str(good)).returncode == 0
    before = (tmp_path / "s.db").read_bytes()
    done = prefloop(tmp_path, "--db", "sqlite:///s.db", "ingest", str(_unreadable_ls(tmp_path)))
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "quality.json" in said and "'quality'" in said and "--label-map" in said
    assert (tmp_path / "s.db").read_bytes() == before, "the store is unchanged"


def test_some_annotations_unread_are_counted_in_the_report(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Labels were read, so the file is taken; the annotations that gave none are named, not hidden."""
    quality = [{"type": "choices", "from_name": "quality", "to_name": "prompt", "value": {"choices": ["Good"]}}]
    tasks = [_task(1, RLHF, [_pairwise("left")]), _task(2, {**RLHF, "prompt": "Other?"}, [quality])]
    report = run(sqlite_engine, write_json_array(tmp_path / "mixed.json", tasks))
    assert (report.labels_added, report.unread) == (1, {"quality": 1})


def test_ambiguous_texts_name_the_map_that_reads_them(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Two candidate pairs of fields: the error names the file, line, field and the --map to write; that --map works."""
    data = {"prompt": "Pick one.", "draft1": "x1", "draft2": "x2", "final_a": "Paris.", "final_b": "Lyon."}
    path = write_json_array(tmp_path / "two-pairs.json", [_task(1, data, [_pairwise("left", to="x")])])
    with pytest.raises(IngestError) as caught:
        run(sqlite_engine, path)
    problem = caught.value.problems[0]
    assert (problem.source, problem.line, problem.field) == ("two-pairs.json", 1, "data")
    assert "--map response_a=data." in problem.message
    assert stats(sqlite_engine)["pairs"] == 0
    run(sqlite_engine, path, mapping={"response_a": "data.final_a", "response_b": "data.final_b"})
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Paris.", "label-studio:1", "overall", None)]
