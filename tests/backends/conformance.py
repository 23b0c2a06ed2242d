"""The conformance suite every annotation backend runs (fsspec-style shared test mixin).

A backend's test module subclasses ``BackendConformance`` and supplies two fixtures:

* ``backend`` -- a backend instance bound to a fresh, empty project;
* ``driver`` -- an ``AnnotatorDriver`` that acts as the people at that backend:
  it creates, edits, deletes and skips annotations through the backend's own API
  (for real servers: as the annotator users, over HTTP).

Everything else (the store, the pairs) comes from here, so each backend is held to
exactly the same behaviour.
"""

from __future__ import annotations

from typing import Protocol

import pytest
from sqlalchemy import Engine, func, select

from prefloop.backends.base import AnnotationBackend
from prefloop.store.db import session_scope
from prefloop.store.gold import add_gold_answers, gold_accuracy
from prefloop.store.labels import get_cursor, record_pull, set_cursor
from prefloop.store.models import Label, Task
from prefloop.store.pairs import add_pairs, pairs_by_keys
from prefloop.store.queries import iter_labeled_rows
from prefloop.store.tasks import TaskMeta, record_tasks
from prefloop.store.versions import labels_since
from prefloop.types import Choice, PairRecord, PushedTask, TaskRequest

__all__ = ["AnnotatorDriver", "BackendConformance", "make_pairs"]


class AnnotatorDriver(Protocol):
    """Acts as annotators at a backend. ``shown`` is what the person clicked on screen:
    'a' = the response shown first / left, 'b' = second / right, or 'tie'."""

    #: external ids (as the backend reports them) of at least two annotators
    annotator_ids: list[str]

    def annotate(
        self, task: PushedTask, who: int, shown: str, *, strength: float | None = None, rationale: str | None = None
    ) -> str:
        """Submit an annotation as annotator number ``who``; return the annotation id."""

    def edit(self, task: PushedTask, who: int, annotation_id: str, shown: str) -> None:
        """Change an existing annotation's choice."""

    def delete(self, task: PushedTask, who: int, annotation_id: str) -> None:
        """Delete an existing annotation."""

    def skip(self, task: PushedTask, who: int) -> str:
        """Skip / cancel / discard the task as annotator ``who``; return the annotation id."""


def make_pairs(n: int, tag: str = "") -> list[PairRecord]:
    """Small unlabeled pairs with text that includes HTML, to check it is shown as text."""
    return [
        PairRecord(
            prompt=f"Question {tag}{i}: how do I keep <b>basil</b> fresh?",
            response_a=f"Answer one {tag}{i}: keep it in water like cut flowers.",
            response_b=f"Answer two {tag}{i}: <script>alert(1)</script> put it in the fridge.",
        )
        for i in range(n)
    ]


def _requests(records: list[PairRecord]) -> list[TaskRequest]:
    out = []
    for r in records:
        c = r.canonical()
        out.append(
            TaskRequest(
                pair_key=c.key,
                prompt=r.prompt,
                response_a=c.response_a,
                response_b=c.response_b,
                strategy="conformance",
                score=0.5,
            )
        )
    return out


def _canonical(shown: str, swapped: bool) -> str:
    if shown in ("a", "b") and swapped:
        return "b" if shown == "a" else "a"
    return shown


class BackendConformance:
    """Shared tests; subclasses provide the ``backend`` and ``driver`` fixtures."""

    n_pairs = 6

    @pytest.fixture
    def pushed(self, backend: AnnotationBackend, sqlite_engine: Engine) -> list[PushedTask]:
        records = make_pairs(self.n_pairs, tag=type(self).__name__)
        with session_scope(sqlite_engine) as session:
            add_pairs(session, records, source="conformance")
        backend.ensure_project()
        pushed = backend.push_tasks(_requests(records))
        with session_scope(sqlite_engine) as session:
            record_tasks(session, backend.name, pushed)
        return pushed

    def _pull(self, backend: AnnotationBackend, engine: Engine) -> None:
        project = backend.settings.project
        with session_scope(engine) as session:
            cursor = get_cursor(session, backend.name, project)
        result = backend.pull_labels(since=cursor)
        with session_scope(engine) as session:
            record_pull(session, backend.name, project, result)
            set_cursor(session, backend.name, project, result.cursor)

    def _labels(self, engine: Engine, key: str) -> list[Label]:
        with session_scope(engine) as session:
            pair = pairs_by_keys(session, [key])[key]
            rows = session.scalars(select(Label).where(Label.pair_id == pair.id).order_by(Label.id)).unique()
            return list(rows)

    # -- the contract -------------------------------------------------------------

    def test_health(self, backend: AnnotationBackend) -> None:
        assert backend.health().ok

    def test_ensure_project_is_idempotent(self, backend: AnnotationBackend) -> None:
        assert backend.ensure_project() == backend.ensure_project()

    def test_push_twice_gives_one_task(
        self, backend: AnnotationBackend, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        records = make_pairs(self.n_pairs, tag=type(self).__name__)
        again = backend.push_tasks(_requests(records))
        assert {t.pair_key for t in again} == {t.pair_key for t in pushed}
        live = backend.live_tasks()
        assert len(live) == self.n_pairs
        assert len({t.pair_key for t in live}) == self.n_pairs
        assert {t.external_id for t in again} == {t.external_id for t in pushed}
        with session_scope(sqlite_engine) as session:
            record_tasks(session, backend.name, again)
            assert session.scalar(select(func.count(Task.id))) == self.n_pairs

    def test_pull_twice_gives_no_duplicates(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        driver.annotate(pushed[0], 0, "a")
        self._pull(backend, sqlite_engine)
        self._pull(backend, sqlite_engine)
        # a pull from the very beginning (lost cursor) must not duplicate either
        with session_scope(sqlite_engine) as session:
            record_pull(session, backend.name, backend.settings.project, backend.pull_labels(since=None))
        labels = self._labels(sqlite_engine, pushed[0].pair_key)
        assert len(labels) == 1
        assert labels[0].choice == _canonical("a", pushed[0].swapped)

    def test_edit_becomes_new_version_and_keeps_old(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        task = pushed[1]
        annotation = driver.annotate(task, 0, "a")
        self._pull(backend, sqlite_engine)
        driver.edit(task, 0, annotation, "b")
        self._pull(backend, sqlite_engine)
        labels = self._labels(sqlite_engine, task.pair_key)
        assert len(labels) == 2
        old, new = labels
        assert old.source_id == new.source_id and old.version != new.version
        assert not old.is_current and old.superseded_by_id == new.id
        assert new.is_current and new.deleted_at is None
        assert old.choice == _canonical("a", task.swapped)
        assert new.choice == _canonical("b", task.swapped)

    def test_deleted_annotation_is_marked_not_erased(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        task = pushed[2]
        annotation = driver.annotate(task, 0, "b")
        self._pull(backend, sqlite_engine)
        driver.delete(task, 0, annotation)
        self._pull(backend, sqlite_engine)
        labels = self._labels(sqlite_engine, task.pair_key)
        assert len(labels) == 1
        assert labels[0].deleted_at is not None

    def test_ties_and_skips_come_through(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        driver.annotate(pushed[3], 0, "tie", strength=2, rationale="both are fine")
        driver.skip(pushed[4], 0)
        self._pull(backend, sqlite_engine)
        tie = self._labels(sqlite_engine, pushed[3].pair_key)
        skip = self._labels(sqlite_engine, pushed[4].pair_key)
        assert [lb.choice for lb in tie] == [Choice.TIE.value]
        assert tie[0].strength == 2 and tie[0].rationale == "both are fine"
        assert [lb.choice for lb in skip] == [Choice.SKIP.value]

    def test_two_annotators_give_two_labels(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        task = pushed[5]
        driver.annotate(task, 0, "a")
        driver.annotate(task, 1, "b")
        self._pull(backend, sqlite_engine)
        labels = self._labels(sqlite_engine, task.pair_key)
        by_annotator = {lb.annotator.external_id: lb.choice for lb in labels}
        assert by_annotator == {
            driver.annotator_ids[0]: _canonical("a", task.swapped),
            driver.annotator_ids[1]: _canonical("b", task.swapped),
        }

    def test_presentation_order_is_undone(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        swapped = [t for t in pushed if t.swapped]
        straight = [t for t in pushed if not t.swapped]
        assert swapped and straight, "A/B order must be randomised across tasks"
        driver.annotate(swapped[0], 1, "a")  # the annotator picks the LEFT / first response
        driver.annotate(straight[0], 1, "a")
        self._pull(backend, sqlite_engine)
        assert [
            lb.choice
            for lb in self._labels(sqlite_engine, swapped[0].pair_key)
            if lb.annotator.external_id == driver.annotator_ids[1]
        ] == ["b"]
        assert [
            lb.choice
            for lb in self._labels(sqlite_engine, straight[0].pair_key)
            if lb.annotator.external_id == driver.annotator_ids[1]
        ] == ["a"]
        with session_scope(sqlite_engine) as session:
            tasks = {t.pair_id: t.swapped for t in session.scalars(select(Task))}
            keys = pairs_by_keys(session, [swapped[0].pair_key])
            assert tasks[keys[swapped[0].pair_key].id] is True

    def test_withdraw_removes_unlabeled_tasks(self, backend: AnnotationBackend, pushed: list[PushedTask]) -> None:
        gone = backend.withdraw_tasks([pushed[0].pair_key, pushed[1].pair_key])
        assert gone == 2
        live = {t.pair_key for t in backend.live_tasks()}
        assert pushed[0].pair_key not in live and pushed[2].pair_key in live

    def test_withdraw_keeps_annotated_tasks_and_a_withdrawn_pair_can_come_back(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask]
    ) -> None:
        driver.annotate(pushed[3], 0, "a")
        assert backend.withdraw_tasks([pushed[3].pair_key, pushed[4].pair_key]) == 1
        live = {t.pair_key for t in backend.live_tasks()}
        assert pushed[3].pair_key in live and pushed[4].pair_key not in live
        # a later model wants the withdrawn pair again: it is pushed as a task like any other
        records = make_pairs(self.n_pairs, tag=type(self).__name__)
        request = [r for r in _requests(records) if r.pair_key == pushed[4].pair_key]
        (again,) = backend.push_tasks(request)
        assert again.pair_key == pushed[4].pair_key
        live = [t for t in backend.live_tasks() if t.pair_key == pushed[4].pair_key]
        assert len(live) == 1 and live[0].external_id == again.external_id

    def test_gold_task_scores_annotators_and_never_trains(
        self, backend: AnnotationBackend, driver: AnnotatorDriver, pushed: list[PushedTask], sqlite_engine: Engine
    ) -> None:
        # a known-answer pair goes out exactly like the others: the request has no field that could say "gold"
        assert "gold" not in TaskRequest.__dataclass_fields__
        records = make_pairs(1, tag=f"gold-{type(self).__name__}")
        (request,) = _requests(records)
        answer = "a"
        with session_scope(sqlite_engine) as session:
            add_pairs(session, records, source="conformance-gold", split="gold")
            add_gold_answers(
                session, {pairs_by_keys(session, [request.pair_key])[request.pair_key].id: answer}, "conformance"
            )
        (gold,) = backend.push_tasks([request])
        with session_scope(sqlite_engine) as session:
            record_tasks(session, backend.name, [gold], {gold.pair_key: TaskMeta(strategy="conformance", gold=True)})
        driver.annotate(gold, 0, _canonical(answer, gold.swapped))  # right
        driver.annotate(gold, 1, _canonical("b", gold.swapped))  # wrong
        driver.annotate(pushed[0], 0, "a")
        self._pull(backend, sqlite_engine)
        gold_labels = self._labels(sqlite_engine, gold.pair_key)
        assert len(gold_labels) == 2 and all(lb.gold for lb in gold_labels)
        assert not any(lb.gold for lb in self._labels(sqlite_engine, pushed[0].pair_key))
        first, second = driver.annotator_ids[0], driver.annotator_ids[1]
        with session_scope(sqlite_engine) as session:
            assert gold_accuracy(session) == {(backend.name, first): (1, 1), (backend.name, second): (1, 0)}
            rows = list(iter_labeled_rows(session))
            assert [r.pair_key for r in rows] == [pushed[0].pair_key], "gold answers are never training labels"
            assert labels_since(session, None) == 1, "nor count toward the milestone"
