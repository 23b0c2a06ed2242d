"""Argilla exports made by the real server and SDK (#26): every layout ingested, label by label.

Two datasets, neither made by prefloop: Argilla's own pairwise template
(``rg.Settings.for_ranking()``: fields instruction / response1 / response2, a RankingQuestion
over response1 / response2) and a LabelQuestion whose options name the fields they point at
(``response_a`` / ``response_b`` / ``tie``). Two annotators answer over REST with their own
keys, as the UI does: submitted, discarded and draft responses; the owner adds a model's
suggestion. Each dataset is then exported in the three layouts the SDK writes:

* ``to_disk`` (``records.json`` + ``.argilla/``), by the SDK itself;
* ``records.to_datasets()`` saved with ``save_to_disk``;
* the ``to_hub`` folder (``data/train-00000-of-00001.parquet`` + ``.argilla/`` + README.md),
  made by the same SDK calls ``to_hub`` makes, written to a folder instead of uploaded
  (nothing here can reach the Hub).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from prefloop.store.db import open_store, session_scope
from prefloop.store.models import Label
from prefloop.types import Choice, PairRecord
from tests.backends.harness_argilla import ArgillaServer
from tests.clirun import clean_env, prefloop
from tests.data.formats_helpers import raw_verdicts, run, stats

pytestmark = pytest.mark.server

rg = pytest.importorskip("argilla")

TEXTS = [
    ("Name a primary colour.", "Red.", "Purple."),
    ("What is 2 + 2?", "Four.", "Five."),
    ("Capital of Italy?", "Rome.", "Milan."),
]


def _to_hub_folder(dataset: Any, folder: Path) -> Path:
    """What ``Dataset.to_hub`` uploads, written to ``folder``: the SDK's own steps, minus the upload."""
    from argilla.datasets._io.card import ArgillaDatasetCard, size_categories_parser
    from huggingface_hub import DatasetCardData

    hfds = dataset.records(with_vectors=True, with_responses=True, with_suggestions=True).to_datasets()
    (folder / "data").mkdir(parents=True)
    hfds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))  # push_to_hub's shard name
    dataset.to_disk(path=str(folder), with_records=False)
    sample = next(iter(dataset.records(with_suggestions=True, with_responses=True)))
    card = ArgillaDatasetCard.from_template(
        card_data=DatasetCardData(size_categories=size_categories_parser(len(hfds)), tags=["rlfh", "argilla"]),
        repo_id="local/export",
        argilla_fields=dataset.settings.fields,
        argilla_questions=dataset.settings.questions,
        argilla_guidelines=dataset.settings.guidelines or None,
        argilla_vectors_settings=dataset.settings.vectors or None,
        argilla_metadata_properties=dataset.settings.metadata,
        argilla_record=sample.to_dict(),
        huggingface_record=dataset._get_sample_hf_record(hfds),
    )
    card.save(filepath=str(folder / "README.md"))
    return folder


class _Project:
    """A dataset made with ``settings``, three records, answered by two annotators."""

    def __init__(self, server: ArgillaServer, settings: Any, fields: tuple[str, str, str], question: str) -> None:
        self.client = rg.Argilla(api_url=server.url, api_key=server.api_key)
        self.dataset = rg.Dataset(
            name=f"ext-{uuid.uuid4().hex[:10]}", workspace=server.workspace, settings=settings, client=self.client
        ).create()
        self.question = question
        records = [
            rg.Record(
                fields=dict(zip(fields, texts, strict=True)),
                suggestions=[rg.Suggestion(question, self.suggested(), agent="reward-model")],
            )
            for texts in TEXTS
        ]
        self.dataset.records.log(records)
        listing = httpx.get(
            f"{server.url}/api/v1/datasets/{self.dataset.id}/records",
            headers={"X-Argilla-Api-Key": server.api_key},
            params={"limit": 100},
        ).raise_for_status()
        by_text = {item["fields"][fields[0]]: item["id"] for item in listing.json()["items"]}
        self.ids = [by_text[t[0]] for t in TEXTS]
        self.people = [
            httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": a.api_key}, timeout=30)
            for a in server.annotators
        ]
        self.users = [a.id for a in server.annotators]

    def suggested(self) -> Any:
        raise NotImplementedError

    def respond(self, record: int, who: int, status: str, value: Any) -> None:
        body = {"status": status, "values": {self.question: {"value": value}}}
        self.people[who].post(f"/api/v1/records/{self.ids[record]}/responses", json=body).raise_for_status()

    def exports(self, folder: Path) -> dict[str, Path]:
        disk = folder / "to_disk"
        disk.mkdir(parents=True)  # to_disk wants an existing, empty folder
        self.dataset.to_disk(str(disk))
        saved = folder / "to_datasets"
        self.dataset.records(with_responses=True, with_suggestions=True).to_datasets().save_to_disk(str(saved))
        return {"to_disk": disk, "to_datasets": saved, "to_hub": _to_hub_folder(self.dataset, folder / "to_hub")}


class _LabelProject(_Project):
    def suggested(self) -> Any:
        return "response_b"


class _RankingProject(_Project):
    def suggested(self) -> Any:
        return ["response2", "response1"]


def _label_settings() -> Any:
    return rg.Settings(
        fields=[rg.TextField(name="prompt"), rg.TextField(name="response_a"), rg.TextField(name="response_b")],
        questions=[rg.LabelQuestion(name="which_is_better", labels=["response_a", "response_b", "tie"])],
    )


def build_exports(server: ArgillaServer, folder: Path) -> dict[str, Any]:
    """Both datasets answered and exported; the annotators' clients closed."""
    rg.Argilla(api_url=server.url, api_key=server.api_key)  # the SDK's default client, which settings use
    labelled = _LabelProject(server, _label_settings(), ("prompt", "response_a", "response_b"), "which_is_better")
    labelled.respond(0, 0, "submitted", "response_a")
    labelled.respond(0, 1, "submitted", "tie")
    labelled.respond(1, 0, "submitted", "response_b")
    labelled.respond(1, 1, "discarded", "response_a")
    labelled.respond(2, 0, "draft", "response_a")
    ranked = _RankingProject(server, rg.Settings.for_ranking(), ("instruction", "response1", "response2"), "ranking")
    ranked.respond(0, 0, "submitted", [{"value": "response2", "rank": 1}, {"value": "response1", "rank": 2}])
    ranked.respond(0, 1, "submitted", [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 2}])
    ranked.respond(1, 0, "discarded", [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 2}])
    ranked.respond(1, 1, "draft", [{"value": "response2", "rank": 1}, {"value": "response1", "rank": 2}])
    ranked.respond(2, 1, "submitted", [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 1}])
    try:
        return {
            "label": labelled.exports(folder / "label"),
            "ranking": ranked.exports(folder / "ranking"),
            "users": labelled.users,
            "label_dataset": labelled.dataset.name,
            "label_dataset_id": str(labelled.dataset.id),
        }
    finally:
        for project in (labelled, ranked):
            for person in project.people:
                person.close()


@pytest.fixture(scope="module")
def exports(argilla_server: ArgillaServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_exports(argilla_server, tmp_path_factory.mktemp("argilla-exports"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}", create=True)
    yield engine
    engine.dispose()


def _expected_label(users: list[str], with_status: bool) -> list[tuple[str, str, str, float | None]]:
    u0, u1 = (f"argilla:{u}" for u in users)
    out = [("Red.", u0, "overall", None), ("tie", u1, "overall", None), ("Five.", u0, "overall", None)]
    if with_status:
        out.append(("skip", u1, "overall", None))  # the discarded response; the draft is no label
    else:  # to_disk drops each response's status: the discarded and the draft answers read as given
        out += [("Four.", u1, "overall", None), ("Rome.", u0, "overall", None)]
    return sorted(out, key=repr)


def _expected_ranking(users: list[str], with_status: bool) -> list[tuple[str, str, str, float | None]]:
    """The SDK exports a ranking as the option values in order (ranks dropped): equal ranks read as that order."""
    u0, u1 = (f"argilla:{u}" for u in users)
    out = [("Purple.", u0, "overall", None), ("Red.", u1, "overall", None), ("Rome.", u1, "overall", None)]
    if with_status:
        out.append(("skip", u0, "overall", None))  # the discarded response; the draft is no label
    else:  # to_disk drops each response's status: the discarded and the draft answers read as given
        out += [("Four.", u0, "overall", None), ("Five.", u1, "overall", None)]
    return sorted(out, key=repr)


@pytest.mark.parametrize("layout", ["to_hub", "to_datasets", "to_disk"])
def test_label_question_whose_options_name_the_fields(
    exports: dict[str, Any], store: Engine, tmp_path: Path, layout: str
) -> None:
    report = run(store, exports["label"][layout])
    assert report.format == ("argilla-records" if layout == "to_disk" else "argilla")
    assert raw_verdicts(store, tmp_path) == _expected_label(exports["users"], with_status=layout != "to_disk")
    assert stats(store)["pairs"] == len(TEXTS), "the record with a draft and a suggestion is an unlabeled pair"


@pytest.mark.parametrize("layout", ["to_hub", "to_datasets", "to_disk"])
def test_argilla_ranking_template(exports: dict[str, Any], store: Engine, tmp_path: Path, layout: str) -> None:
    run(store, exports["ranking"][layout])
    assert raw_verdicts(store, tmp_path) == _expected_ranking(exports["users"], with_status=layout != "to_disk")


def test_to_hub_folder_is_what_the_hub_holds(exports: dict[str, Any]) -> None:
    folder = exports["label"]["to_hub"]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        ".argilla/dataset.json",
        ".argilla/settings.json",
        "README.md",
        "data/train-00000-of-00001.parquet",
    ]


def _labels(engine: Engine) -> list[tuple[str, str, bool, bool]]:
    """(source id, choice, is current, deleted) of every label pulled from Argilla."""
    with session_scope(engine) as session:
        return sorted(
            (lb.source_id, lb.choice, bool(lb.is_current), lb.deleted_at is not None)
            for lb in session.scalars(select(Label).where(Label.backend == "argilla"))
        )


def _pull(tmp_path: Path, server: ArgillaServer, name: str) -> dict[str, Any]:
    env = clean_env(ARGILLA_API_URL=server.url, ARGILLA_API_KEY=server.api_key)
    done = prefloop(tmp_path, "--db", "sqlite:///adopt.db", "pull", "--backend", "argilla", "--project", name, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_pull_adopts_the_dataset_then_an_edit_and_a_deletion(
    exports: dict[str, Any], argilla_server: ArgillaServer, tmp_path: Path
) -> None:
    name = exports["label_dataset"]
    first = _pull(tmp_path, argilla_server, name)
    assert (first["pairs_added"], first["new"], first["edited"], first["deleted"]) == (3, 4, 0, 0)
    engine = open_store(f"sqlite:///{tmp_path / 'adopt.db'}")
    before = _labels(engine)
    assert sorted(c for _, c, _, _ in before).count("skip") == 1 and len(before) == 4, "3 submitted, 1 discarded"
    # at the server: annotator 1 changes the tie on record 0 to response_b; annotator 1's discard is deleted
    owner = httpx.Client(base_url=argilla_server.url, headers={"X-Argilla-Api-Key": argilla_server.api_key})
    listing = owner.get(
        f"/api/v1/datasets/{exports['label_dataset_id']}/records", params={"include": "responses", "limit": 100}
    ).raise_for_status()
    by_status = {
        (r["status"], r["user_id"]): r["id"] for record in listing.json()["items"] for r in record["responses"]
    }
    u1 = exports["users"][1]
    tie = next(rid for (status, user), rid in by_status.items() if status == "submitted" and user == u1)
    body = {"status": "submitted", "values": {"which_is_better": {"value": "response_b"}}}
    owner.put(f"/api/v1/responses/{tie}", json=body).raise_for_status()
    owner.delete(f"/api/v1/responses/{by_status[('discarded', u1)]}").raise_for_status()
    owner.close()
    second = _pull(tmp_path, argilla_server, name)
    assert (second["new"], second["edited"], second["deleted"]) == (0, 1, 1)
    after = _labels(engine)
    changed = [row for row in after if row[0] not in {b[0] for b in before if b[1] not in ("tie", "skip")}]
    purple = PairRecord(*TEXTS[0], label=Choice.B).canonical().label  # "response_b" in the store's orientation
    assert purple is not None
    assert sorted((c, cur, gone) for _, c, cur, gone in changed) == sorted(
        [("tie", False, False), (purple.value, True, False), ("skip", True, True)]
    ), "the edit is a new version (the tie kept, superseded); the deletion is marked, not dropped"
    third = _pull(tmp_path, argilla_server, name)
    assert (third["new"], third["edited"], third["deleted"], third["pairs_added"]) == (0, 0, 0, 0)
    assert _labels(engine) == after, "a third pull stores nothing twice"
    engine.dispose()
