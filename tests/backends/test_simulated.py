"""The simulated backend: the shared conformance suite, plus its own simulation behaviour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefloop.backends import BackendError, BackendSettings, make_backend, presentation_swapped
from prefloop.backends.simulated import SimulatedBackend
from prefloop.types import Choice, PushedTask, TaskRequest
from tests.backends.conformance import BackendConformance


class SimulatedDriver:
    """Acts as annotators through the simulated backend's driver API."""

    def __init__(self, backend: SimulatedBackend) -> None:
        self.backend = backend
        self.annotator_ids = ["alice", "bob"]

    def annotate(
        self, task: PushedTask, who: int, shown: str, *, strength: float | None = None, rationale: str | None = None
    ) -> str:
        return self.backend.annotate_as(task.pair_key, self.annotator_ids[who], shown, strength, rationale)

    def edit(self, task: PushedTask, who: int, annotation_id: str, shown: str) -> None:
        self.backend.edit(annotation_id, shown)

    def delete(self, task: PushedTask, who: int, annotation_id: str) -> None:
        self.backend.delete(annotation_id)

    def skip(self, task: PushedTask, who: int) -> str:
        return self.backend.skip(task.pair_key, self.annotator_ids[who])


class TestSimulatedConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> SimulatedBackend:
        backend = make_backend("simulated", BackendSettings(project="conf", url=str(tmp_path / "sim")))
        assert isinstance(backend, SimulatedBackend)
        return backend

    @pytest.fixture
    def driver(self, backend: SimulatedBackend) -> SimulatedDriver:
        return SimulatedDriver(backend)


# -- simulation behaviour -------------------------------------------------------------


def _requests(n: int, tag: str = "") -> list[TaskRequest]:
    return [
        TaskRequest(pair_key=f"{tag}k{i:05d}", prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(n)
    ]


def _sim(folder: Path, **extra: Any) -> SimulatedBackend:
    settings = BackendSettings(project="sim", url=str(folder), extra=extra)
    return SimulatedBackend(settings)


def _answers(backend: SimulatedBackend, n: int) -> list[tuple[str, str, Choice]]:
    backend.push_tasks(_requests(n))
    return [(lb.pair_key, lb.annotator.external_id, lb.choice) for lb in backend.pull_labels().labels]


def test_perfect_oracle_is_reproduced_through_the_swap(tmp_path: Path) -> None:
    reqs = _requests(40)
    oracle = {r.pair_key: ("a" if i % 3 else "b") for i, r in enumerate(reqs)}
    backend = _sim(tmp_path, oracle=oracle)
    backend.push_tasks(reqs)
    labels = backend.pull_labels().labels
    assert {lb.pair_key: lb.choice.value for lb in labels} == oracle
    swapped = [lb for lb in labels if lb.raw["swapped"]]
    assert swapped and len(swapped) < len(labels)
    for lb in labels:  # what was clicked on screen is the flipped side exactly when swapped
        assert lb.raw["swapped"] == presentation_swapped(lb.pair_key)
        assert (lb.raw["shown"] != lb.choice.value) == lb.raw["swapped"]


def test_noise_and_tie_rates(tmp_path: Path) -> None:
    n = 4000
    oracle = {f"k{i:05d}": "a" for i in range(n)}
    got = _answers(_sim(tmp_path, oracle=oracle, noise_rate=0.2, tie_rate=0.1, seed=1), n)
    choices = [c for _, _, c in got]
    ties = choices.count(Choice.TIE) / n
    wrong = choices.count(Choice.B) / (n - choices.count(Choice.TIE))
    assert abs(ties - 0.1) < 0.02  # ~4.5 standard errors
    assert abs(wrong - 0.2) < 0.03


def test_annotators_have_their_own_accuracy(tmp_path: Path) -> None:
    n = 3000
    oracle = {f"k{i:05d}": "b" for i in range(n)}
    annotators = [{"id": "good", "accuracy": 0.95}, {"id": "meh", "accuracy": 0.7}, {"id": "bad", "accuracy": 0.5}]
    got = _answers(_sim(tmp_path, oracle=oracle, annotators=annotators, annotators_per_pair=2), n)
    per: dict[str, list[bool]] = {}
    for _key, who, choice in got:
        per.setdefault(who, []).append(choice is Choice.B)
    assert sum(len(v) for v in per.values()) == 2 * n
    assert len({key for key, _, _ in got}) == n
    for who, acc in (("good", 0.95), ("meh", 0.7), ("bad", 0.5)):
        assert abs(sum(per[who]) / len(per[who]) - acc) < 0.04, who
    # two different annotators per pair
    by_pair: dict[str, set[str]] = {}
    for key, who, _ in got:
        by_pair.setdefault(key, set()).add(who)
    assert all(len(v) == 2 for v in by_pair.values())


def test_answers_do_not_depend_on_call_order(tmp_path: Path) -> None:
    reqs = _requests(200)
    oracle = {r.pair_key: "a" for r in reqs}
    kw = {"oracle": oracle, "noise_rate": 0.3, "tie_rate": 0.1, "seed": 5}
    one = _sim(tmp_path / "one", **kw)
    one.push_tasks(reqs)
    first = {lb.pair_key: lb.choice for lb in one.pull_labels().labels}
    two = _sim(tmp_path / "two", **kw)  # pushed in reverse, in two batches with pulls between
    two.push_tasks(list(reversed(reqs))[:70])
    two.pull_labels()
    two.push_tasks(list(reversed(reqs))[70:])
    two.pull_labels()
    second = {lb.pair_key: lb.choice for lb in two.pull_labels(since=None).labels}
    assert first == second
    other_seed = _sim(tmp_path / "three", **{**kw, "seed": 6})
    other_seed.push_tasks(reqs)
    assert {lb.pair_key: lb.choice for lb in other_seed.pull_labels().labels} != first


def test_pairs_without_an_oracle_answer_stay_pending(tmp_path: Path) -> None:
    reqs = _requests(4)
    backend = _sim(tmp_path, oracle={reqs[0].pair_key: "tie"})
    backend.push_tasks(reqs)
    labels = backend.pull_labels().labels
    assert [(lb.pair_key, lb.choice) for lb in labels] == [(reqs[0].pair_key, Choice.TIE)]
    assert backend.withdraw_tasks([r.pair_key for r in reqs]) == 3  # the answered one stays


def test_latency_in_pulls(tmp_path: Path) -> None:
    reqs = _requests(3)
    backend = _sim(tmp_path, oracle={r.pair_key: "a" for r in reqs}, latency_pulls=2)
    backend.push_tasks(reqs)
    assert backend.pull_labels().labels == []
    assert backend.pull_labels().labels == []
    assert len(backend.pull_labels().labels) == 3


def test_latency_in_time(tmp_path: Path) -> None:
    reqs = _requests(2)
    backend = _sim(tmp_path, oracle={r.pair_key: "a" for r in reqs}, latency_s=60.0)
    now = [1000.0]
    backend.clock = lambda: now[0]
    backend.push_tasks(reqs)
    assert backend.pull_labels().labels == []
    now[0] += 61
    assert len(backend.pull_labels().labels) == 2


def test_state_survives_across_instances(tmp_path: Path) -> None:
    reqs = _requests(10)
    oracle_path = tmp_path / "oracle.jsonl"
    oracle_path.write_text("".join(json.dumps({"pair_key": r.pair_key, "choice": "b"}) + "\n" for r in reqs))
    first = _sim(tmp_path / "state", oracle_path=str(oracle_path), latency_pulls=1)
    pushed = first.push_tasks(reqs)
    r1 = first.pull_labels()
    assert r1.labels == []
    second = _sim(tmp_path / "state", oracle_path=str(oracle_path), latency_pulls=1)  # e.g. the next cron run
    assert second.push_tasks(reqs) == pushed
    assert {t.pair_key for t in second.live_tasks()} == {r.pair_key for r in reqs}
    r2 = second.pull_labels(since=r1.cursor)
    assert len(r2.labels) == 10 and all(lb.choice is Choice.B for lb in r2.labels)
    # the cursor moves on, and a pull from it re-reads only the overlap of one event
    r3 = _sim(tmp_path / "state").pull_labels(since=r2.cursor)
    assert int(r3.cursor or 0) == int(r2.cursor or 0) and len(r3.labels) == 1


def test_driver_edit_and_delete_are_visible(tmp_path: Path) -> None:
    backend = _sim(tmp_path)
    [task] = backend.push_tasks(_requests(1))
    ann = backend.annotate_as(task.pair_key, "carol", "a", strength=1.0, rationale="clear")
    first = backend.pull_labels()
    backend.edit(ann, "tie")
    edited = backend.pull_labels(since=first.cursor)
    [new] = [lb for lb in edited.labels if lb.source_id == ann]
    assert new.choice is Choice.TIE and new.version != first.labels[0].version
    assert new.rationale == "clear" and new.strength == 1.0
    backend.delete(ann)
    gone = backend.pull_labels(since=edited.cursor)
    assert gone.labels == [] and gone.alive == {task.pair_key: frozenset()}
    with pytest.raises(BackendError, match="no live annotation"):
        backend.edit(ann, "b")
    with pytest.raises(BackendError, match="on-screen choice"):
        backend.annotate_as(task.pair_key, "carol", "left")


def test_settings_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="state folder"):
        SimulatedBackend(BackendSettings())
    with pytest.raises(BackendError, match="annotators"):
        _sim(tmp_path, annotators_per_pair=2)
    assert _sim(tmp_path).health().ok
