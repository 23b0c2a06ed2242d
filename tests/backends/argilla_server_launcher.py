"""Start a real argilla-server 2.8 for tests, with a search engine that answers from its own database.

Run with the SERVER's venv python (never imported by the test process):

    ARGILLA_HOME_PATH=... ARGILLA_DATABASE_URL=sqlite+aiosqlite:///.../argilla.db \\
    ARGILLA_REDIS_URL=redis://127.0.0.1:6379/7 ARGILLA_SEARCH_ENGINE=prefloop-sql \\
    PREFLOOP_ARGILLA_OWNER_KEY=... PREFLOOP_ARGILLA_OWNER_PASSWORD=... \\
        python argilla_server_launcher.py --port 6900 --workspace prefloop

Elasticsearch / OpenSearch cannot be installed on the test machines, so this registers
``SqlSearchEngine`` through argilla-server's own extension point
(``SearchEngine.register(engine_name=...)``). Every write hook is a no-op, because the
records, responses and suggestions already live in the server's SQL database; every read
(search, progress, metadata metrics) is answered from that database. Filtering happens in
Python over one dataset's records: fine for test-sized datasets (10k records in ~1 s).

Then it runs the server's Alembic migrations, creates the owner (+ API key) and the
workspace through the server's own models (the ``database users create`` CLI breaks with
click >= 8.2), and serves the real FastAPI app with uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

ENGINE_NAME = "prefloop-sql"


def _register_engine() -> None:
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter
    from argilla_server.models import (
        Dataset,
        MetadataProperty,
        Record,
        Response,
        Suggestion,
        User,
        VectorSettings,
    )
    from argilla_server.search_engine.base import (
        AndFilter,
        FloatMetadataMetrics,
        IntegerMetadataMetrics,
        MetadataFilterScope,
        MetadataMetrics,
        Order,
        RangeFilter,
        RecordFilterScope,
        ResponseFilterScope,
        SearchEngine,
        SearchResponseItem,
        SearchResponses,
        SuggestionFilterScope,
        TermsFilter,
        TermsMetrics,
        TextQuery,
    )
    from sqlalchemy import func, select
    from sqlalchemy.orm import selectinload

    def _str(value: Any) -> str:
        return str(getattr(value, "value", value))

    def _terms_match(value: Any, values: list[str]) -> bool:
        items = value if isinstance(value, list) else [value]
        return any(item is not None and _str(item) in values for item in items)

    def _range_match(value: Any, ge: float | None, le: float | None) -> bool:
        if value is None:
            return False
        if isinstance(value, datetime):
            value = value.timestamp()
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        return (ge is None or number >= ge) and (le is None or number <= le)

    def _value_match(flt: Any, value: Any) -> bool:
        if isinstance(flt, TermsFilter):
            return _terms_match(value, flt.values)
        if isinstance(flt, RangeFilter):
            return _range_match(value, flt.ge, flt.le)
        raise ValueError(f"unsupported filter {flt!r}")

    def _user_responses(record: Record, scope: ResponseFilterScope) -> list[Response]:
        if scope.user is None:
            return list(record.responses)
        return [r for r in record.responses if r.user_id == scope.user.id]

    def _response_value(response: Response, question: str) -> Any:
        return ((response.values or {}).get(question) or {}).get("value")

    def _suggestion_value(record: Record, question: str, prop: str) -> Any:
        for suggestion in record.suggestions:
            if suggestion.question.name == question:
                return getattr(suggestion, prop, None)
        return None

    def _matches(record: Record, flt: Any) -> bool:
        if isinstance(flt, AndFilter):
            return all(_matches(record, f) for f in flt.filters)
        scope = flt.scope
        if isinstance(scope, RecordFilterScope):
            return _value_match(flt, getattr(record, scope.property, None))
        if isinstance(scope, MetadataFilterScope):
            return _value_match(flt, (record.metadata_ or {}).get(scope.metadata_property))
        if isinstance(scope, SuggestionFilterScope):
            return _value_match(flt, _suggestion_value(record, scope.question, scope.property))
        if isinstance(scope, ResponseFilterScope):
            responses = _user_responses(record, scope)
            if scope.question:
                return any(_value_match(flt, _response_value(r, scope.question)) for r in responses)
            if scope.property == "status" and isinstance(flt, TermsFilter):
                wanted = set(flt.values)
                if ResponseStatusFilter.pending.value in wanted and not responses:
                    return True
                return any(_str(r.status) in wanted for r in responses)
        raise ValueError(f"unsupported filter scope {scope!r}")

    def _text_match(record: Record, query: TextQuery | str | None) -> bool:
        if query is None:
            return True
        text_query = query if isinstance(query, TextQuery) else TextQuery(q=query)
        if not text_query.q or text_query.q.strip() in ("", "*"):
            return True
        fields = record.fields or {}
        values = [fields.get(text_query.field)] if text_query.field else list(fields.values())
        haystack = " ".join(str(v) for v in values if v is not None).lower()
        return all(word in haystack for word in text_query.q.lower().split())

    def _sort_value(record: Record, order: Order) -> Any:
        scope = order.scope
        if isinstance(scope, RecordFilterScope):
            value = getattr(record, scope.property, None)
        elif isinstance(scope, MetadataFilterScope):
            value = (record.metadata_ or {}).get(scope.metadata_property)
        elif isinstance(scope, SuggestionFilterScope):
            value = _suggestion_value(record, scope.question, scope.property)
        elif isinstance(scope, ResponseFilterScope):
            responses = _user_responses(record, scope)
            key = scope.question or scope.property
            vals = [_response_value(r, key) if scope.question else getattr(r, key, None) for r in responses]
            value = next((v for v in vals if v is not None), None)
        else:
            value = None
        if isinstance(value, datetime):
            value = value.timestamp()
        return value

    def _sorted(records: list[Record], sort: list[Order] | None) -> list[Record]:
        for order in reversed(sort or []):
            present = [r for r in records if _sort_value(r, order) is not None]
            missing = [r for r in records if _sort_value(r, order) is None]
            present.sort(
                key=lambda r, o=order: (type(_sort_value(r, o)).__name__, _sort_value(r, o)),
                reverse=_str(order.order) == "desc",
            )
            records = present + missing
        return records

    async def _dataset_records(dataset_id: Any) -> list[Record]:
        async with AsyncSessionLocal() as db:
            result = await db.execute(
                select(Record)
                .where(Record.dataset_id == dataset_id)
                .options(
                    selectinload(Record.responses),
                    selectinload(Record.suggestions).selectinload(Suggestion.question),
                )
                .order_by(Record.inserted_at.asc(), Record.id.asc())
            )
            return list(result.scalars().all())

    @SearchEngine.register(engine_name=ENGINE_NAME)
    class SqlSearchEngine(SearchEngine):
        """Answers argilla-server's search calls from its own SQL database (tests only)."""

        @classmethod
        async def new_instance(cls) -> SqlSearchEngine:
            return cls()

        async def close(self) -> None:
            return None

        async def ping(self) -> bool:
            return True

        async def info(self) -> dict:
            return {"version": "0", "distribution": ENGINE_NAME}

        # Write hooks: the database already holds the truth.
        async def create_index(self, dataset: Dataset) -> None:
            return None

        async def delete_index(self, dataset: Dataset) -> None:
            return None

        async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty) -> None:
            return None

        async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
            return None

        async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
            return None

        async def partial_record_update(self, record: Record, **update: Any) -> None:
            return None

        async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
            return None

        async def update_record_response(self, response: Response) -> None:
            return None

        async def delete_record_response(self, response: Response) -> None:
            return None

        async def update_record_suggestion(self, suggestion: Suggestion) -> None:
            return None

        async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
            return None

        # Reads.
        async def get_dataset_progress(self, dataset: Dataset) -> dict:
            async with AsyncSessionLocal() as db:
                rows = (
                    await db.execute(
                        select(Record.status, func.count())
                        .where(Record.dataset_id == dataset.id)
                        .group_by(Record.status)
                    )
                ).all()
            counts = {_str(status): n for status, n in rows}
            return {"total": sum(counts.values()), **counts}

        async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
            async with AsyncSessionLocal() as db:
                rows = (
                    await db.execute(
                        select(Response.status, func.count())
                        .join(Record, Record.id == Response.record_id)
                        .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                        .group_by(Response.status)
                    )
                ).all()
            counts = {_str(status): n for status, n in rows}
            return {"total": sum(counts.values()), **counts}

        async def search(
            self,
            dataset: Dataset,
            query: TextQuery | str | None = None,
            filter: Any = None,
            sort: list[Order] | None = None,
            offset: int = 0,
            limit: int = 100,
            user_id: str | None = None,
        ) -> SearchResponses:
            records = [
                r
                for r in await _dataset_records(dataset.id)
                if _text_match(r, query) and (filter is None or _matches(r, filter))
            ]
            records = _sorted(records, sort)
            items = [SearchResponseItem(record_id=r.id, score=1.0) for r in records[offset : offset + limit]]
            return SearchResponses(items=items, total=len(records))

        async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
            values = [
                (r.metadata_ or {}).get(metadata_property.name)
                for r in await _dataset_records(metadata_property.dataset_id)
            ]
            values = [v for v in values if v is not None]
            if metadata_property.type == MetadataPropertyType.terms:
                counts: dict[str, int] = {}
                for value in values:
                    for item in value if isinstance(value, list) else [value]:
                        counts[str(item)] = counts.get(str(item), 0) + 1
                return TermsMetrics(
                    total=sum(counts.values()),
                    values=[
                        TermsMetrics.TermCount(term=t, count=c) for t, c in sorted(counts.items(), key=lambda x: -x[1])
                    ],
                )
            cls = (
                IntegerMetadataMetrics
                if metadata_property.type == MetadataPropertyType.integer
                else FloatMetadataMetrics
            )
            return cls(min=min(values) if values else None, max=max(values) if values else None)

        async def similarity_search(self, *args: Any, **kwargs: Any) -> SearchResponses:
            # No vectors in prefloop datasets; an empty answer keeps the UI usable.
            return SearchResponses(items=[], total=0)


def _fast_sqlite() -> None:
    """WAL + synchronous=NORMAL: no fsync per commit (25 ms each on the CI disk; a response costs ~4)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _migrate() -> None:
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-q", "-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])


async def _create_owner(username: str, password: str, api_key: str, workspaces: list[str]) -> None:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    async with AsyncSessionLocal() as db:
        user = await User.get_by(db, username=username)
        if user is None:
            user = User(
                first_name=username,
                username=username,
                role=UserRole.owner,
                api_key=api_key,
                password_hash=accounts.hash_password(password),
            )
            db.add(user)
            await db.flush()
        for name in workspaces:
            workspace = await Workspace.get_by(db, name=name)
            if workspace is None:
                workspace = Workspace(name=name)
                db.add(workspace)
                await db.flush()
            if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=user.id) is None:
                db.add(WorkspaceUser(workspace_id=workspace.id, user_id=user.id))
        await db.commit()


def _webhook_worker() -> None:
    """The server's rq worker on its webhook queue ("high"), as ``argilla_server worker`` runs it:
    it delivers webhooks (Standard Webhooks signed) and retries failed ones (10, 60, 180 s), with its
    scheduler on so the retries run. The dataset jobs' queue is left alone, as before."""
    from argilla_server.jobs.queues import HIGH_QUEUE, REDIS_CONNECTION
    from rq import Worker

    _fast_sqlite()
    Worker([HIGH_QUEUE], connection=REDIS_CONNECTION).work(with_scheduler=True, logging_level="WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--username", default="owner")
    parser.add_argument("--workspace", action="append", default=[])
    parser.add_argument("--worker", action="store_true", help="run the webhook worker instead of the server")
    args = parser.parse_args()
    if args.worker:
        _webhook_worker()
        return
    # Secrets come through the environment so they never show in `ps`.
    api_key = os.environ.pop("PREFLOOP_ARGILLA_OWNER_KEY")
    password = os.environ.pop("PREFLOOP_ARGILLA_OWNER_PASSWORD")

    _fast_sqlite()
    _register_engine()
    _migrate()
    asyncio.run(_create_owner(args.username, password, api_key, args.workspace or ["prefloop"]))

    import uvicorn
    from argilla_server._app import app

    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
