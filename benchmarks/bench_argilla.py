"""Push 10,000 pairs to a real argilla-server and pull their labels: the backend vs per-record SDK calls.

    python benchmarks/bench_argilla.py [--n 10000] [--sample 300]

Starts its own server with the test harness (own venv, SQLite, Redis db index 7).
The per-record side (one SDK call per record) is timed on ``--sample`` records and
extrapolated linearly to ``--n``; the output says so.

* push, backend: ``ArgillaBackend.push_tasks`` (one listing + bulk creates of 500).
* push, per record: ``dataset.records.log([record])`` once per record (argilla SDK 2.8).
* responses: one per record, created as the two annotators in turn through
  ``POST /api/v1/me/responses/bulk`` (100 per call, the server's maximum);
  ``POST /api/v1/records/{id}/responses`` is the one-per-record alternative, timed on the sample.
* pull, backend: ``ArgillaBackend.pull_labels()`` (pages of 1,000 records with responses).
* pull, per record: ``client.api.records.get(record_id)`` once per record (SDK API layer;
  it returns the responses but drops their ``updated_at``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefloop.backends.argilla import ArgillaBackend
from prefloop.backends.base import BackendSettings
from prefloop.types import TaskRequest, content_hash, pair_key
from tests.backends.harness_argilla import ArgillaServer, start_argilla_server, stop_argilla_server


def make_tasks(n: int, tag: str) -> list[TaskRequest]:
    out = []
    for i in range(n):
        prompt, a, b = (
            f"[{tag}] prompt {i}: explain X",
            f"answer one to {i}",
            f"answer two to {i} with more words",
        )
        out.append(
            TaskRequest(
                pair_key=pair_key(content_hash(prompt), content_hash(a), content_hash(b)),
                prompt=prompt,
                response_a=a,
                response_b=b,
                strategy="bench",
                score=i / n,
                model_version="rm-bench",
            )
        )
    return out


def backend_for(server: ArgillaServer, project: str) -> ArgillaBackend:
    return ArgillaBackend(
        BackendSettings(
            project=project,
            url=server.url,
            api_key=server.api_key,
            extra={"workspace": server.workspace},
            batch_size=500,
        )
    )


def bulk_responses(server: ArgillaServer, record_ids: list[str]) -> float:
    """One response per record, from the two annotators in turn (mostly submitted, every 10th discarded)."""
    started = time.perf_counter()
    for who, annotator in enumerate(server.annotators):
        mine = record_ids[who :: len(server.annotators)]
        with httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": annotator.api_key}, timeout=300) as client:
            for start in range(0, len(mine), 100):
                items: list[dict[str, Any]] = []
                for i, rid in enumerate(mine[start : start + 100], start=start):
                    if i % 10 == 0:
                        items.append({"record_id": rid, "status": "discarded"})
                    else:
                        items.append(
                            {
                                "record_id": rid,
                                "status": "submitted",
                                "values": {
                                    "preference": {"value": ("a", "b", "tie")[i % 3]},
                                    "strength": {"value": 1 + i % 3},
                                },
                            }
                        )
                body = client.post("/api/v1/me/responses/bulk", json={"items": items}).raise_for_status().json()
                errors = [item for item in body["items"] if item.get("error")]
                if errors:
                    raise RuntimeError(f"bulk responses failed: {errors[:2]}")
    return time.perf_counter() - started


def per_record_responses(server: ArgillaServer, record_ids: list[str]) -> float:
    started = time.perf_counter()
    with httpx.Client(
        base_url=server.url, headers={"X-Argilla-Api-Key": server.annotators[0].api_key}, timeout=60
    ) as client:
        for rid in record_ids:
            client.post(
                f"/api/v1/records/{rid}/responses",
                json={"status": "submitted", "values": {"preference": {"value": "a"}}},
            ).raise_for_status()
    return time.perf_counter() - started


def sdk_push_per_record(server: ArgillaServer, tasks: list[TaskRequest]) -> tuple[float, Any, list[str]]:
    import argilla as rg

    backend = backend_for(server, f"bench-sdk-{uuid.uuid4().hex[:6]}")
    backend.ensure_project()  # same settings as the backend's dataset; creation is not timed
    client = rg.Argilla(api_url=server.url, api_key=server.api_key)
    dataset = client.datasets(name=backend.settings.project, workspace=server.workspace)
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # the SDK draws a progress bar per call
        for t in tasks:
            dataset.records.log(
                [
                    rg.Record(
                        id=t.pair_key,
                        fields={"prompt": t.prompt, "response_a": t.response_a, "response_b": t.response_b},
                        metadata={"pair_key": t.pair_key, "strategy": t.strategy, "score": t.score},
                    )
                ]
            )
    elapsed = time.perf_counter() - started
    ids = [t.external_id for t in backend.live_tasks()]
    backend.close()
    return elapsed, client, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("argilla.sdk").setLevel(logging.ERROR)
    rows: list[tuple[str, float, str]] = []

    with tempfile.TemporaryDirectory(prefix="bench-argilla-") as home:
        t0 = time.perf_counter()
        server = start_argilla_server(Path(home))
        print(f"server started in {time.perf_counter() - t0:.1f} s (ready after {server.start_s:.1f} s)")
        try:
            backend = backend_for(server, f"bench-{uuid.uuid4().hex[:6]}")
            backend.ensure_project()
            tasks = make_tasks(args.n, "backend")

            started = time.perf_counter()
            pushed = backend.push_tasks(tasks)
            push_s = time.perf_counter() - started
            assert len(pushed) == args.n
            rows.append((f"push {args.n}, backend (bulk 500)", push_s, "measured"))

            started = time.perf_counter()
            again = backend.push_tasks(tasks)
            rows.append((f"re-push {args.n}, backend (all exist)", time.perf_counter() - started, "measured"))
            assert len(again) == args.n

            sdk_s, client, sample_ids = sdk_push_per_record(server, make_tasks(args.sample, "sdk"))
            sdk_push_full = sdk_s * args.n / args.sample
            rows.append(
                (
                    f"push {args.n}, SDK log() per record",
                    sdk_push_full,
                    f"extrapolated from {args.sample} ({sdk_s:.1f} s)",
                )
            )

            resp_s = bulk_responses(server, [t.external_id for t in pushed])
            rows.append((f"{args.n} responses, /me/responses/bulk", resp_s, "measured"))
            one_s = per_record_responses(server, sample_ids)
            rows.append(
                (
                    f"{args.n} responses, one POST each",
                    one_s * args.n / args.sample,
                    f"extrapolated from {args.sample} ({one_s:.1f} s)",
                )
            )

            started = time.perf_counter()
            result = backend.pull_labels()
            pull_s = time.perf_counter() - started
            assert len(result.labels) == args.n and len(result.alive) == args.n
            rows.append((f"pull {len(result.labels)} labels of {args.n} pairs, backend", pull_s, "measured"))

            started = time.perf_counter()
            backend.pull_labels(since=result.cursor)
            rows.append(("incremental pull, nothing new, backend", time.perf_counter() - started, "measured"))

            started = time.perf_counter()
            for rid in [t.external_id for t in pushed[: args.sample]]:
                client.api.records.get(uuid.UUID(rid))
            per_s = time.perf_counter() - started
            sdk_pull_full = per_s * args.n / args.sample
            rows.append(
                (
                    f"pull {args.n} records, SDK records.get per record",
                    sdk_pull_full,
                    f"extrapolated from {args.sample} ({per_s:.1f} s)",
                )
            )
            backend.close()
        finally:
            stop_argilla_server(server)

    width = max(len(r[0]) for r in rows)
    print(f"\n{'operation':<{width}}  {'seconds':>8}  note")
    for label, seconds, note in rows:
        print(f"{label:<{width}}  {seconds:8.1f}  {note}")
    print(f"\npush: backend is {sdk_push_full / push_s:.0f}x faster than one SDK call per record")
    print(f"pull: backend is {sdk_pull_full / pull_s:.0f}x faster than one SDK call per record")


if __name__ == "__main__":
    main()
