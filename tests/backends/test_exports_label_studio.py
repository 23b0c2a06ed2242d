"""Label Studio exports and adoption against the real server (#26), from Label Studio's own templates.

The project is made with the label config of Label Studio's "Human Preference collection for
RLHF" template, read from the server's own template folder (``annotation_templates/
generative-ai/human-feedback-collection``): task data ``prompt`` / ``answer1`` / ``answer2``,
a Pairwise control ``comparison``. A second project uses the "Pairwise classification"
template (its Text tags show ``$pairText1`` / ``$pairText2``) with a Choices control that has a
tie. Two annotators answer with their own tokens, as the UI does; one cancels (skip); the
project carries a model's prediction. Each project is then exported by the server
(``/api/projects/{id}/export``) as JSON, JSON_MIN, CSV and TSV and each file ingested, label
by label. Finally ``prefloop pull`` adopts the RLHF project, an annotation is edited and one
deleted there, and a second pull brings both: every version kept, nothing twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select

from prefloop.store.db import open_store, session_scope
from prefloop.store.models import Label
from tests.backends.harness_label_studio import VENV, LabelStudioServer
from tests.clirun import clean_env, prefloop
from tests.data.formats_helpers import raw_verdicts, run, stats

pytestmark = pytest.mark.server

TASKS = [
    ("Name a primary colour.", "Red.", "Purple."),
    ("What is 2 + 2?", "Four.", "Five."),
    ("Capital of Italy?", "Rome.", "Milan."),
]


def _template(group: str, name: str) -> str:
    """A label config as Label Studio ships it (the server's own template folder)."""
    folder = next(VENV.glob("lib/python*/site-packages/label_studio/annotation_templates"))
    return str(yaml.safe_load((folder / group / name / "config.yml").read_text())["config"])


class _Project:
    def __init__(self, server: LabelStudioServer, config: str, keys: tuple[str | None, str, str], title: str) -> None:
        self.admin = server.client(server.admin)
        self.people = [server.client(a) for a in server.annotators]
        self.users = [a.user_id for a in server.annotators]
        self.title = title
        answer = self.admin.post("/api/projects", json={"title": title, "label_config": config})
        answer.raise_for_status()
        self.id = answer.json()["id"]
        tasks = [{"data": {k: v for k, v in zip(keys, texts, strict=True) if k}} for texts in TASKS]
        tasks[2]["predictions"] = [{"model_version": "rm", "score": 0.9, "result": self.prediction()}]
        self.admin.post(f"/api/projects/{self.id}/import", json=tasks).raise_for_status()
        listing = self.admin.get("/api/tasks", params={"project": self.id, "page_size": 100}).raise_for_status()
        by_text = {t["data"][keys[1]]: t["id"] for t in listing.json()["tasks"]}
        self.tasks = [by_text[t[1]] for t in TASKS]

    def prediction(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def annotate(self, task: int, who: int, result: list[dict[str, Any]], cancelled: bool = False) -> int:
        answer = self.people[who].post(
            f"/api/tasks/{self.tasks[task]}/annotations/",
            json={"result": result, "was_cancelled": cancelled, "lead_time": 3.5 + task},
        )
        answer.raise_for_status()
        return int(answer.json()["id"])

    def export(self, folder: Path, kind: str) -> Path:
        # every task, the unannotated one with its prediction included (the export dialog's "all tasks")
        params = {"exportType": kind, "download_all_tasks": "true"}
        answer = self.admin.get(f"/api/projects/{self.id}/export", params=params)
        answer.raise_for_status()
        suffix = {"JSON": "json", "JSON_MIN": "json", "CSV": "csv", "TSV": "tsv"}[kind]
        path = folder / f"project-{self.id}-{kind.lower()}.{suffix}"
        path.write_bytes(answer.content)
        return path


class _Rlhf(_Project):
    @staticmethod
    def pick(side: str) -> list[dict[str, Any]]:
        # what the Pairwise tag writes: to_name its first Text tag, the selected side
        return [{"type": "pairwise", "from_name": "comparison", "to_name": "answer1", "value": {"selected": side}}]

    def prediction(self) -> list[dict[str, Any]]:
        return self.pick("right")


_CHOICES_CONFIG = """<View>
  <Header>Select one of two items</Header>
  <Text name="text1" value="$pairText1" />
  <Text name="text2" value="$pairText2" />
  <Choices name="verdict" toName="text1,text2" choice="single-radio">
    <Choice value="Left is better"/><Choice value="Right is better"/><Choice value="Both equally good"/>
  </Choices>
</View>"""


class _Choices(_Project):
    @staticmethod
    def pick(choice: str) -> list[dict[str, Any]]:
        return [{"type": "choices", "from_name": "verdict", "to_name": "text1", "value": {"choices": [choice]}}]

    def prediction(self) -> list[dict[str, Any]]:
        return self.pick("Right is better")


@pytest.fixture(scope="module")
def projects(label_studio_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    rlhf = _Rlhf(
        label_studio_server,
        _template("generative-ai", "human-feedback-collection"),
        ("prompt", "answer1", "answer2"),
        f"RLHF round 2 {uuid.uuid4().hex[:6]}",
    )
    rlhf.annotate(0, 0, rlhf.pick("left"))
    rlhf.annotate(0, 1, rlhf.pick("right"))
    rlhf.annotate(1, 0, rlhf.pick("right"))
    rlhf.annotate(1, 1, [], cancelled=True)
    # the Pairwise classification template's own objects, with a Choices control that has a tie
    pairwise = _template("ranking-and-scoring", "pairwise-classification")
    assert '<Text name="text1" value="$pairText1"' in pairwise.replace("  ", " ")
    choices = _Choices(
        label_studio_server, _CHOICES_CONFIG, (None, "pairText1", "pairText2"), f"choices {uuid.uuid4().hex[:6]}"
    )
    folder = tmp_path_factory.mktemp("ls-exports")
    out = {"rlhf": rlhf, "choices": choices, "folder": folder}
    yield out
    for project in (rlhf, choices):
        project.admin.close()
        for person in project.people:
            person.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}", create=True)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("kind", ["JSON", "JSON_MIN", "CSV", "TSV"])
def test_rlhf_template_export(projects: dict, store: Engine, tmp_path: Path, kind: str) -> None:
    rlhf: _Rlhf = projects["rlhf"]
    path = rlhf.export(projects["folder"], kind)
    report = run(store, path)
    assert report.format == ("label-studio" if kind == "JSON" else "label-studio-min")
    verdicts = raw_verdicts(store, tmp_path)
    u0, u1 = (f"label-studio:{x}" for x in rlhf.users)  # every layout names the annotator by user id
    expected = [("Red.", u0, "overall", None), ("Purple.", u1, "overall", None), ("Five.", u0, "overall", None)]
    if kind == "JSON":  # the flat layouts leave cancelled annotations out
        expected.append(("skip", u1, "overall", None))
    assert verdicts == sorted(expected, key=repr)
    assert stats(store)["pairs"] == 3, "the predicted-only task is a pair, never a label"
    with session_scope(store) as session:
        raws = [lb.raw for lb in session.scalars(select(Label))]
    assert all(r.get("lead_time") is not None and r.get("created_at") for r in raws), "lead_time and times kept"


@pytest.mark.parametrize("kind", ["JSON", "JSON_MIN", "CSV"])
def test_choices_with_tie_export(projects: dict, store: Engine, tmp_path: Path, kind: str) -> None:
    choices: _Choices = projects["choices"]
    if not getattr(choices, "answered", False):
        choices.annotate(0, 0, choices.pick("Left is better"))
        choices.annotate(0, 1, choices.pick("Both equally good"))
        choices.annotate(1, 1, choices.pick("Right is better"))
        choices.answered = True  # type: ignore[attr-defined]
    run(store, choices.export(projects["folder"], kind))
    u0, u1 = (f"label-studio:{x}" for x in choices.users)
    assert raw_verdicts(store, tmp_path) == sorted(
        [("Red.", u0, "overall", None), ("tie", u1, "overall", None), ("Five.", u1, "overall", None)], key=repr
    )


def _labels(engine: Engine) -> list[tuple[str, str, bool, bool]]:
    """(source id, choice, is current, deleted) of every label pulled from Label Studio."""
    with session_scope(engine) as session:
        return sorted(
            (lb.source_id, lb.choice, bool(lb.is_current), lb.deleted_at is not None)
            for lb in session.scalars(select(Label).where(Label.backend == "label_studio"))
        )


def _pull(tmp_path: Path, server: LabelStudioServer, title: str) -> dict[str, Any]:
    env = clean_env(LABEL_STUDIO_URL=server.url, LABEL_STUDIO_API_KEY=server.admin.token)
    done = prefloop(
        tmp_path, "--db", "sqlite:///adopt.db", "pull", "--backend", "label_studio", "--project", title, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_pull_adopts_the_project_then_an_edit_and_a_deletion(
    projects: dict, label_studio_server: LabelStudioServer, tmp_path: Path
) -> None:
    rlhf: _Rlhf = projects["rlhf"]
    first = _pull(tmp_path, label_studio_server, rlhf.title)
    assert (first["pairs_added"], first["new"], first["edited"], first["deleted"]) == (3, 4, 0, 0)
    engine = open_store(f"sqlite:///{tmp_path / 'adopt.db'}")
    before = _labels(engine)
    assert len(before) == 4 and all(current and not gone for _, _, current, gone in before)
    assert sorted(c for _, c, _, _ in before).count("skip") == 1, "the cancelled annotation is a skip"
    # at the server: alice changes her mind on task 0, bob deletes his annotation on task 0
    anns = rlhf.admin.get(f"/api/tasks/{rlhf.tasks[0]}/annotations/").raise_for_status().json()
    ids = {a["completed_by"]: a["id"] for a in anns}
    edited, deleted = f"ls:{ids[rlhf.users[0]]}", f"ls:{ids[rlhf.users[1]]}"
    rlhf.people[0].patch(
        f"/api/annotations/{ids[rlhf.users[0]]}/", json={"result": rlhf.pick("right")}
    ).raise_for_status()
    rlhf.admin.delete(f"/api/annotations/{ids[rlhf.users[1]]}/").raise_for_status()
    second = _pull(tmp_path, label_studio_server, rlhf.title)
    assert (second["new"], second["edited"], second["deleted"]) == (0, 1, 1)
    after = _labels(engine)
    versions = [row for row in after if row[0] == edited]
    assert len(versions) == 2, "both versions of the edited annotation are kept"
    assert {c for _, c, _, _ in versions} == {"a", "b"} and sum(cur for _, _, cur, _ in versions) == 1
    assert [gone for sid, _, _, gone in after if sid == deleted] == [True], "the deletion is marked, not dropped"
    assert [row for row in after if row[0] not in (edited, deleted)] == [
        row for row in before if row[0] not in (edited, deleted)
    ]
    third = _pull(tmp_path, label_studio_server, rlhf.title)
    assert (third["new"], third["edited"], third["deleted"], third["pairs_added"]) == (0, 0, 0, 0)
    assert _labels(engine) == after, "a third pull stores nothing twice"
    engine.dispose()
