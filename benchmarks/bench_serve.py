"""``prefloop serve`` (#27): click-to-stored latency against the real servers, sustained events/s into the store.

Two parts, one JSON line per measurement:

* ``latency`` -- a real Label Studio 1.23 and a real argilla-server 2.8 (+ its rq worker), started by
  the test harness; the receiver runs under uvicorn on 127.0.0.1 with the webhook registered by
  ``register_webhooks``. A "click" is the annotator's own API call (what the UI sends on Submit); the
  clock runs from just before that call until the label is committed in the store (read back from
  the store every 5 ms). p50 / p99 over ``--clicks`` annotations per server.
* ``throughput`` -- the receiver in its own process (uvicorn, the writer thread, no follow-up worker),
  fed Argilla-format ``response.created`` deliveries, each signed (Standard Webhooks) with the
  configured secret, by ``--concurrency`` senders at once; events/s from the first send to the last
  200, on SQLite and on PostgreSQL. Afterwards the store is counted: every answered delivery must be
  one stored label (0 lost, 0 duplicated; each event is also sent a second time and must change nothing).

    python benchmarks/bench_serve.py latency --clicks 100
    python benchmarks/bench_serve.py throughput --events 3000 --db sqlite
    python benchmarks/bench_serve.py throughput --events 3000 --db postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefloop.store.db import init_db, make_engine, session_scope  # noqa: E402
from prefloop.store.models import Label, Pair  # noqa: E402
from prefloop.store.pairs import add_pairs  # noqa: E402
from prefloop.types import PairRecord  # noqa: E402

PG_ADMIN = os.environ.get("PREFLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def emit(entry: dict[str, Any]) -> None:
    print(json.dumps(entry), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- latency against the real servers ---------------------------------------------------------


def _wait_stored(engine: Any, source_id: str, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            if session.scalar(select(func.count()).select_from(Label).where(Label.source_id == source_id)):
                return True
        time.sleep(0.005)
    return False


def _latency_run(name: str, world: Any, annotate: Any, clicks: int) -> None:
    from prefloop.loop.serve import build_serve_app
    from tests.loop.serve_kit import ServeThread

    app = build_serve_app(world.engine, world.config, world.backend, follow_up=False, log=lambda entry: None)
    seconds, api, lost = [], [], 0
    with ServeThread(app, port=world.port) as serve:
        for i in range(clicks):
            task = world.tasks[i % len(world.tasks)]
            started = time.perf_counter()
            source = annotate(task, i)
            api.append(time.perf_counter() - started)
            if _wait_stored(world.engine, source):
                seconds.append(time.perf_counter() - started)
            else:
                lost += 1
        metrics = httpx.get(f"{serve.url}/metrics").text
    emit(
        {
            "part": "latency",
            "server": name,
            "clicks": clicks,
            "stored": len(seconds),
            "lost": lost,
            "p50_s": round(statistics.median(seconds), 3),
            "p99_s": round(percentile(seconds, 0.99), 3),
            "max_s": round(max(seconds), 3),
            "annotation_api_call_p50_s": round(statistics.median(api), 3),
            "annotation_api_call_p99_s": round(percentile(api, 0.99), 3),
            "receiver_arrival_to_commit_p50_bucket_s": _hist_median(metrics),
            "load_average_1m": round(os.getloadavg()[0], 1),
        }
    )


def latency(clicks: int, which: list[str]) -> None:
    import pytest  # noqa: F401  (the harness modules import it)

    from tests.backends.conformance import _requests, make_pairs
    from tests.loop.serve_kit import free_port, seeded_store

    workdir = Path(tempfile.mkdtemp(prefix="bench-serve."))
    if "label_studio" in which:
        from tests.backends.harness_label_studio import start_server
        from tests.backends.test_label_studio import LabelStudioDriver
        from tests.loop.test_serve_label_studio import World as LsWorld

        server = start_server(workdir / "ls")
        try:
            port = free_port()
            world = LsWorld(server, workdir / "ls", f"http://127.0.0.1:{port}")
            world.port = port  # type: ignore[attr-defined]
            people = LabelStudioDriver(server)
            # one annotation per (task, annotator): more tasks than clicks
            world.records = make_pairs(clicks, tag=uuid.uuid4().hex[:6])
            world.tasks = world.backend.push_tasks(_requests(world.records))
            world.engine = seeded_store(workdir / "ls" / "bench.db", world.backend, world.records, world.tasks)
            _latency_run("label_studio", world, lambda task, i: people.annotate(task, 0, "a", strength=2), clicks)
        finally:
            server.stop()
    if "argilla" in which:
        from tests.backends.harness_argilla import start_argilla_server, stop_argilla_server
        from tests.backends.test_argilla import ArgillaDriver
        from tests.loop.test_serve_argilla import World as ArgillaWorld

        home = workdir / "argilla"
        home.mkdir()
        server = start_argilla_server(home)
        try:
            world = ArgillaWorld(server, home, free_port())
            people = ArgillaDriver(server)
            world.records = make_pairs(clicks, tag=uuid.uuid4().hex[:6])
            world.tasks = world.backend.push_tasks(_requests(world.records))
            world.engine = seeded_store(home / "bench.db", world.backend, world.records, world.tasks)
            _latency_run("argilla", world, lambda task, i: people.annotate(task, 0, "a", strength=2), clicks)
            world.unregister()
        finally:
            stop_argilla_server(server)


# -- throughput into SQLite / PostgreSQL ---------------------------------------------------------

_RECEIVER = """
import sys, uvicorn
from prefloop.config import BackendSettings, LoopConfig, ServeSettings
from prefloop.backends.argilla import ArgillaBackend
from prefloop.loop.serve import build_serve_app
from prefloop.store.db import make_engine
url, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = LoopConfig(db=url, backend=BackendSettings(name="argilla", project="bench", url="http://127.0.0.1:9",
                    extra={"workspace": "prefloop"}), serve=ServeSettings(argilla_secrets=secret))
app = build_serve_app(make_engine(url), config, ArgillaBackend(config.backend), follow_up=False, log=lambda e: None)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_keep_alive=75)
"""


def _store(kind: str, workdir: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench.db", None
    name = f"prefloop_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", (admin, name)


def _event(key: str, n: int, stamp: str) -> bytes:
    data = {
        "id": str(uuid.UUID(int=n + 1)),
        "values": {"preference": {"value": "a" if n % 3 else "tie"}, "strength": {"value": 2}},
        "status": "submitted",
        "record": {
            "id": str(uuid.UUID(int=10**9 + n)),
            "external_id": key,
            "metadata": {"swapped": "false"},
            "dataset": {"name": "bench", "workspace": {"name": "prefloop"}},
        },
        "user": {"id": str(uuid.UUID(int=7 + n % 5)), "username": f"annotator{n % 5}"},
        "inserted_at": stamp,
        "updated_at": stamp,
    }
    return json.dumps({"type": "response.created", "version": 1, "timestamp": stamp, "data": data}).encode()


async def _send(url: str, bodies: list[bytes], secret: Webhook, concurrency: int) -> tuple[list[int], float, int]:
    statuses: list[int] = []
    retried = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal retried
        while not queue.empty():
            body = queue.get_nowait()
            for attempt in range(5):  # as Argilla's worker does: an unanswered delivery is sent again
                now = datetime.now(UTC)
                msg = f"msg_{uuid.uuid4().hex}"
                headers = {
                    "webhook-id": msg,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": secret.sign(msg, now, body),
                    "content-type": "application/json",
                }
                try:
                    statuses.append((await client.post(url, content=body, headers=headers)).status_code)
                    break
                except httpx.TransportError:
                    retried += 1
                    if attempt == 4:
                        raise

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
        return statuses, time.perf_counter() - started, retried


def throughput(events: int, kind: str, concurrency: int) -> None:
    from tests.loop.serve_kit import free_port

    workdir = Path(tempfile.mkdtemp(prefix="bench-serve."))
    url, cleanup = _store(kind, workdir)
    init_db(url)
    engine = make_engine(url)
    pairs = [PairRecord(f"prompt {i}", f"answer one {i}", f"answer two {i}") for i in range(events)]
    with session_scope(engine) as session:
        add_pairs(session, pairs, source="bench")
    with session_scope(engine) as session:
        keys = list(session.scalars(select(Pair.key).order_by(Pair.id)))
    secret_text = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    receiver = subprocess.Popen([sys.executable, "-c", _RECEIVER, url, str(port), secret_text], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat()
        bodies = [_event(keys[i], i, stamp) for i in range(events)]
        endpoint = f"http://127.0.0.1:{port}/webhooks/argilla"
        statuses, seconds, retried = asyncio.run(_send(endpoint, bodies, Webhook(secret_text), concurrency))
        again, again_s, _ = asyncio.run(_send(endpoint, bodies, Webhook(secret_text), concurrency))
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    with session_scope(engine) as session:
        stored = session.scalar(select(func.count()).select_from(Label))
        distinct = session.scalar(select(func.count(func.distinct(Label.source_id))))
    ok = statuses.count(200)
    emit(
        {
            "part": "throughput",
            "db": kind,
            "events": events,
            "concurrency": concurrency,
            "answered_200": ok,
            "resent_after_transport_error": retried,
            "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds, 1),
            "redelivery_events_per_s": round(events / again_s, 1),
            "redelivery_answered_200": again.count(200),
            "labels_stored": stored,
            "lost": ok - int(distinct or 0),
            "duplicated": int(stored or 0) - int(distinct or 0),
            "store_latency_p50_bucket": _hist_median(metrics),
            "load_average_1m": round(os.getloadavg()[0], 1),
        }
    )
    engine.dispose()
    if cleanup is not None:
        admin, name = cleanup
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def _hist_median(metrics: str) -> str | None:
    """The smallest latency bucket holding half the stored deliveries (from /metrics)."""
    buckets, total = [], None
    for line in metrics.splitlines():
        if line.startswith("prefloop_serve_store_latency_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((le, float(line.rsplit(" ", 1)[1])))
        if line.startswith("prefloop_serve_store_latency_seconds_count"):
            total = float(line.rsplit(" ", 1)[1])
    if not total:
        return None
    return next((le for le, n in buckets if n >= total / 2), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--clicks", type=int, default=100)
    lat.add_argument("--server", action="append", choices=["label_studio", "argilla"], default=None)
    thr = sub.add_parser("throughput")
    thr.add_argument("--events", type=int, default=3000)
    thr.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    thr.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.part == "latency":
        latency(args.clicks, args.server or ["label_studio", "argilla"])
    else:
        throughput(args.events, args.db, args.concurrency)


if __name__ == "__main__":
    main()
