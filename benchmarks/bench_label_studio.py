"""Label Studio backend: bulk push vs one request per task, and full vs incremental pull.

Starts its own Label Studio 1.23 with the test harness (``tests/backends/harness_label_studio.py``),
so run it from the repository root:

    python benchmarks/bench_label_studio.py                      # everything (~8 min; annotating is slow)
    python benchmarks/bench_label_studio.py --skip-pull           # push only (~1 min)

* push: ``LabelStudioBackend.push_tasks`` of ``--tasks`` pairs into an empty project, then the
  same call again (everything already live: the idempotency check alone); against a loop of
  ``client.tasks.create`` (one SDK request per task) over ``--slow-tasks`` pairs, extrapolated
  linearly to ``--tasks``.
* pull: ``--pairs`` tasks, each annotated by both annotators through the REST API as
  themselves (the open-source server has no bulk annotation endpoint: ~5 annotations/s), then
  a full pull, ``--edits`` edits (PATCH), and an incremental pull from the full pull's cursor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefloop.backends import BackendSettings
from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.types import PushedTask, TaskRequest
from tests.backends.harness_label_studio import LabelStudioServer, start_server


def _requests(n: int, tag: str) -> list[TaskRequest]:
    return [
        TaskRequest(
            pair_key=f"{tag}-{i:06d}",
            prompt=f"Prompt {i}: how do I keep basil fresh?",
            response_a=f"Answer {i}: keep it in water like cut flowers, out of the sun.",
            response_b=f"Answer {i}: wrap it in a damp towel and put it in the fridge.",
            strategy="bench",
            score=0.5,
        )
        for i in range(n)
    ]


def _backend(server: LabelStudioServer, project: str) -> LabelStudioBackend:
    return LabelStudioBackend(
        BackendSettings(project=project, url=server.url, api_key=server.admin.token, timeout_s=300)
    )


def bench_push(server: LabelStudioServer, n: int, n_slow: int) -> None:
    backend = _backend(server, "bench-push-bulk")
    backend.ensure_project()
    requests = _requests(n, "bulk")
    started = time.perf_counter()
    pushed = backend.push_tasks(requests)
    bulk = time.perf_counter() - started
    assert len(pushed) == n
    started = time.perf_counter()
    again = backend.push_tasks(requests)
    repush = time.perf_counter() - started
    assert len(again) == n and len(backend.live_tasks()) == n

    slow_backend = _backend(server, "bench-push-one-by-one")
    project_id = int(slow_backend.ensure_project())
    client = slow_backend.client
    started = time.perf_counter()
    for request in _requests(n_slow, "slow"):
        client.tasks.create(project=project_id, data=slow_backend._task_payload(request)["data"])
    slow = time.perf_counter() - started
    slow_n = slow / n_slow * n
    print(
        f"push {n:,} tasks, bulk push_tasks (batch {backend.settings.batch_size}): {bulk:7.2f} s"
        f"  ({n / bulk:,.0f} tasks/s)"
    )
    print(f"push {n:,} tasks again (all live, nothing sent):        {repush:7.2f} s")
    print(
        f"one SDK request per task: {n_slow} tasks in {slow:.2f} s ({n_slow / slow:.1f} tasks/s)"
        f" -> {n:,} tasks ~{slow_n:,.0f} s (extrapolated)"
    )
    print(f"bulk speed-up: {slow_n / bulk:,.0f}x")


def _annotate_all(server: LabelStudioServer, pushed: list[PushedTask]) -> dict[tuple[int, str], str]:
    people = [server.client(account) for account in server.annotators]
    ids: dict[tuple[int, str], str] = {}
    started = time.perf_counter()
    for i, task in enumerate(pushed):
        for who, person in enumerate(people):
            shown = ("a", "b", "tie")[(i + who) % 3]
            answer = person.post(
                f"/api/tasks/{task.external_id}/annotations/",
                json={
                    "result": [
                        {
                            "from_name": "preference",
                            "to_name": "prompt",
                            "type": "choices",
                            "value": {"choices": [shown]},
                        },
                        {
                            "from_name": "strength",
                            "to_name": "prompt",
                            "type": "rating",
                            "value": {"rating": 1 + i % 3},
                        },
                    ]
                },
            )
            answer.raise_for_status()
            ids[(who, task.external_id)] = str(answer.json()["id"])
        if (i + 1) % 100 == 0:
            done = 2 * (i + 1)
            rate = done / (time.perf_counter() - started)
            print(f"  annotated {done:,} / {2 * len(pushed):,} ({rate:.1f}/s)", flush=True)
    return ids


def bench_pull(server: LabelStudioServer, n_pairs: int, n_edits: int) -> None:
    backend = _backend(server, "bench-pull")
    backend.ensure_project()
    pushed = backend.push_tasks(_requests(n_pairs, "pull"))
    started = time.perf_counter()
    ids = _annotate_all(server, pushed)
    print(f"created {len(ids):,} annotations as 2 users in {time.perf_counter() - started:.0f} s (setup, not timed)")

    started = time.perf_counter()
    full = backend.pull_labels()
    t_full = time.perf_counter() - started
    assert len(full.labels) == len(ids), (len(full.labels), len(ids))

    people = [server.client(account) for account in server.annotators]
    for i, task in enumerate(pushed[:n_edits]):
        who = i % 2
        people[who].patch(
            f"/api/annotations/{ids[(who, task.external_id)]}/",
            json={
                "result": [
                    {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": ["tie"]}},
                ]
            },
        ).raise_for_status()
    started = time.perf_counter()
    incremental = backend.pull_labels(since=full.cursor)
    t_inc = time.perf_counter() - started
    known = {(lb.source_id, lb.version) for lb in full.labels}
    new_versions = [lb for lb in incremental.labels if (lb.source_id, lb.version) not in known]
    assert len(new_versions) == n_edits, len(new_versions)
    print(f"full pull: {len(full.labels):,} labels from {len(full.alive):,} tasks in {t_full:.2f} s")
    print(
        f"incremental pull after {n_edits} edits: {len(incremental.labels)} labels from "
        f"{len(incremental.alive)} tasks ({len(new_versions)} new versions) in {t_inc:.2f} s"
        f" ({t_full / t_inc:.0f}x faster than the full pull)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--slow-tasks", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=1_000, help="tasks for the pull; 2 annotations each")
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--skip-push", action="store_true")
    parser.add_argument("--skip-pull", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-label-studio-") as workdir:
        server = start_server(Path(workdir))
        try:
            if not args.skip_push:
                bench_push(server, args.tasks, args.slow_tasks)
            if not args.skip_pull:
                bench_pull(server, args.pairs, args.edits)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
