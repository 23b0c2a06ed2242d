"""Argilla 2.x backend: one dataset per project, one record per pair, one response per annotator.

What goes where:

* The dataset is created with the argilla SDK from ``templates/argilla.json`` (fields
  prompt / response_a / response_b, LabelQuestion ``preference`` a / b / tie, optional
  strength and rationale, optional per-dimension questions, metadata for leads).
* Records, responses and deletions go through the raw REST API (httpx): the SDK's
  ``records.log`` upserts (it would overwrite a live record), drops the server ids and
  draws progress bars; its ``records(with_responses=True)`` raises on a discarded
  response without values and drops each response's ``updated_at``.
* Record ``external_id`` = pair key, so a pair has at most one record per dataset (the
  server enforces it with a unique constraint); ``PushedTask.external_id`` = record UUID.

Pull cost: adding a response does not move the record's ``updated_at``, and a deleted
response leaves no trace, so every pull pages through ALL records of the dataset with
their responses (``GET /api/v1/datasets/{id}/records?include=responses``, 1,000 per
page: one request per 1,000 pairs) and filters responses on their own ``updated_at``.
That is what makes ``PullResult.alive`` sound for every pair.

Webhooks (``prefloop serve``): Argilla signs them (Standard Webhooks) and its rq worker retries
a failed delivery with a new message id. A ``response.*`` event carries the response with its
record (external id, metadata) and user, read by the same ``_labels_of`` as a pull; the
version is the response's ``updated_at``, so a redelivery is a duplicate the store drops.
Argilla's webhooks are server-wide: events of other datasets are not ours.

The cursor is exact, not a clock reading (see ``_Cursor``): a watermark plus the versions
of the responses already returned inside the overlap window before it, so a pull returns
each response version once however the server's and the client's clocks drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from prefloop.backends.argilla_dataset import dataset_settings, dimension_question, load_template
from prefloop.backends.base import (
    AnnotationBackend,
    BackendAuthError,
    BackendError,
    BackendSettings,
    BackendUnreachable,
    EventLabels,
    Health,
    MalformedEvent,
    UnknownEvent,
    presentation_swapped,
    undo_presentation,
)
from prefloop.backends.paging import Deadline, PageGuard
from prefloop.backends.retry import RetryPolicy, Transient, transport
from prefloop.redact import mask_url
from prefloop.types import AnnotatorRef, Choice, ProjectPull, PulledLabel, PullResult, PushedTask, TaskRequest

__all__ = ["ArgillaBackend", "load_template"]

DEFAULT_URL = "http://localhost:6900"
DEFAULT_WORKSPACE = "prefloop"
PAGE_SIZE = 1000  # the server's maximum for the records listing
MAX_BULK = 500  # the server's maximum for a bulk record create


def _when(value: str) -> datetime:
    """Argilla's timestamps are naive UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Cursor:
    """Where a pull got to: a watermark and the response versions already returned near it.

    A pull re-reads responses updated after ``at − overlap`` (a write stamped before the
    watermark may commit after the pull read its page) and drops the versions in ``seen``:
    every ``response id → updated_at`` returned earlier with a stamp inside that window.
    Nothing depends on when the pull ran, so the same writes give the same answer
    under any load (the old cursor, a clock reading, let a label come back twice).
    """

    at: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        if not text.startswith("{"):  # a cursor written before the seen-set: a bare watermark
            return cls(_when(text))
        data = json.loads(text)
        return cls(_when(data["at"]) if data.get("at") else None, dict(data.get("seen") or {}))

    def dump(self) -> str | None:
        if self.at is None:
            return None
        return json.dumps({"at": self.at.isoformat(), "seen": dict(sorted(self.seen.items()))}, separators=(",", ":"))

    def is_new(self, response_id: str, updated_at: datetime, overlap: timedelta) -> bool:
        """Whether this response version is one an earlier pull did not return."""
        inside = self.at is None or updated_at > self.at - overlap
        return inside and self.seen.get(response_id) != updated_at.isoformat()


class ArgillaBackend(AnnotationBackend):
    """Pairs as Argilla records; labels from the annotators' submitted / discarded responses."""

    name = "argilla"

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        # the URL and key come from the settings only: config.load_config reads the environment
        self.url = (settings.url or DEFAULT_URL).rstrip("/")
        self.shown_url = mask_url(self.url)  # for messages: a password in the URL never shows
        self.workspace: str = settings.extra.get("workspace") or DEFAULT_WORKSPACE
        self.template = load_template(settings.template)
        self.__api_key = settings.api_key or ""
        self._retry = RetryPolicy.from_settings(settings)
        self._http = httpx.Client(
            base_url=self.url, timeout=settings.timeout_s, headers={"X-Argilla-Api-Key": self.__api_key}
        )
        self._dataset_id: str | None = None
        self._question_ids: dict[str, str] = {}
        self._usernames: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"ArgillaBackend(project={self.settings.project!r}, url={self.shown_url!r}, api_key=***)"

    def close(self) -> None:
        self._http.close()

    # -- HTTP ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        allow: tuple[int, ...] = (),
        deadline: Deadline | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One REST call under the backends' retry policy (``retry.py``): transient failures are
        retried until ``deadline`` (default ``[backend] deadline_s`` from now), a refused key is
        ``BackendAuthError``, any other 4xx/5xx a ``BackendError``."""
        attempts = self._retry.attempts
        try:
            response = self._retry.call(
                lambda: transport(lambda: self._http.request(method, path, **kwargs)),
                deadline=deadline or Deadline(self.settings.deadline_s),
            )
        except Transient as exc:
            raise BackendUnreachable(
                f"Argilla at {self.shown_url} did not answer {method} {path} after {attempts} attempt(s) "
                f"({exc.problem}); "
                "check that the server runs and that ARGILLA_API_URL / the backend url points at it"
            ) from None
        if response.status_code in (401, 403) and response.status_code not in allow:
            raise BackendAuthError(
                f"Argilla at {self.shown_url} refused the API key (HTTP {response.status_code}) for {method} {path}; "
                "set ARGILLA_API_KEY (or api_key under [backend]) to a key of a user of that server"
            )
        if response.status_code >= 400 and response.status_code not in allow:
            raise BackendError(f"Argilla {method} {path} answered {response.status_code}: {response.text[:300]}")
        return response

    def _sdk(self) -> Any:
        import argilla as rg

        try:
            return rg.Argilla(
                api_url=self.url,
                api_key=self.__api_key,
                timeout=int(self.settings.timeout_s),
                retries=self.settings.retries,  # the SDK's own: connection errors only, as in retry.py
            )
        except Exception as exc:
            raise BackendUnreachable(
                f"argilla SDK could not connect to {self.shown_url}: {type(exc).__name__}"
            ) from exc

    # -- contract --------------------------------------------------------------------

    def health(self) -> Health:
        try:
            version = self._request("GET", "/api/v1/version").json().get("version")
            self._request("GET", "/api/v1/me")
        except BackendAuthError as exc:
            return Health(ok=False, detail=str(exc), refused=True)
        except BackendUnreachable as exc:
            return Health(ok=False, detail=str(exc))
        except BackendError as exc:
            return Health(ok=False, detail=str(exc), answered=True)
        except Exception as exc:  # health never raises
            return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")
        return Health(ok=True, detail=f"Argilla {version} at {self.shown_url}", version=version)

    def ensure_project(self) -> str:
        if self._dataset_id:
            return self._dataset_id
        found = self._find_dataset()
        if found is None:
            self._create_dataset()
            found = self._find_dataset()
            if found is None:
                raise BackendError(f"dataset {self.settings.project!r} was created but cannot be found")
        self._dataset_id = found
        return found

    def push_tasks(self, tasks: Sequence[TaskRequest]) -> list[PushedTask]:
        dataset_id = self.ensure_project()
        wanted: dict[str, TaskRequest] = {}
        for task in tasks:  # the first request for a pair wins; order kept
            wanted.setdefault(task.pair_key, task)
        live = {t.pair_key: t for t in self.live_tasks()}
        missing = [t for t in wanted.values() if t.pair_key not in live]
        size = max(1, min(self.settings.batch_size, MAX_BULK))

        def create(batch: list[TaskRequest]) -> list[dict[str, Any]]:
            path = f"/api/v1/datasets/{dataset_id}/records/bulk"
            return self._request("POST", path, json={"items": [self._record_payload(t) for t in batch]}).json()["items"]

        for start in range(0, len(missing), size):
            batch = [t for t in missing[start : start + size] if t.pair_key not in live]
            try:
                created = create(batch)
            except BackendError:
                # A retried or concurrent create may have landed: the unique (external_id, dataset)
                # constraint rejects the batch. Re-read what exists and create only what is missing.
                live = {t.pair_key: t for t in self.live_tasks()}
                batch = [t for t in batch if t.pair_key not in live]
                if not batch:
                    continue
                created = create(batch)
            live.update((t.pair_key, t) for t in map(self._pushed, created))
        return [live[key] for key in wanted if key in live]

    def live_tasks(self) -> list[PushedTask]:
        return [self._pushed(r) for r in self._records(with_responses=False) if r.get("external_id")]

    def pull_labels(self, since: str | None = None) -> PullResult:
        previous = _Cursor.parse(since)
        overlap = timedelta(seconds=self.settings.overlap_s)
        labels: list[PulledLabel] = []
        alive: dict[str, frozenset[str]] = {}
        versions: dict[str, datetime] = {}  # every labelled response: id -> updated_at
        newest: datetime | None = None
        started_at: datetime | None = None
        totals: set[int] = set()
        for page, server_now, total in self._pages(with_responses=True):
            started_at = started_at or server_now
            totals.add(total)
            for record in page:
                key = record.get("external_id")
                if not key:
                    continue
                ids: set[str] = set()
                for response in record.get("responses") or []:
                    found = self._labels_of(key, self._swapped(record), response)
                    ids.update(label.source_id for label in found)
                    if found:
                        rid, updated = str(response["id"]), _when(response["updated_at"])
                        versions[rid] = updated
                        newest = updated if newest is None or updated > newest else newest
                        if previous.is_new(rid, updated, overlap):
                            labels.extend(found)
                alive[key] = frozenset(ids)
        at = newest
        if at is not None and started_at is not None:
            # A write stamped before the first page was read may commit after it: keep the
            # watermark at or before the server's clock then (the seen-set drops the re-reads).
            at = min(at, started_at)
        if previous.at is not None:
            at = previous.at if at is None else max(at, previous.at)  # never backwards
        if len(totals) > 1:  # records were added / deleted while paging: offsets shifted, hold the watermark
            at = previous.at
        # Everything returned so far with a stamp inside the next window: every such version
        # was either returned now or was in the previous seen-set (the window only moves forward).
        seen = {rid: u.isoformat() for rid, u in versions.items() if at is not None and u > at - overlap}
        return PullResult(labels=labels, cursor=_Cursor(at, seen).dump() or since, alive=alive)

    def pull_project(self, since: str | None = None) -> ProjectPull:
        """Every record of an existing dataset (found by name, never created), in the ``to_disk`` layout.

        A new response does not move a record's ``updated_at``, so every record is read each time
        (as ``pull_labels`` does); each response keeps its status and ``updated_at``, the version.
        """
        found = self._find_dataset()
        if found is None:
            raise BackendError(
                f"Argilla at {self.url} has no dataset {self.settings.project!r} in workspace {self.workspace!r}; "
                "check the name (--project) and the workspace (extra.workspace under [backend])"
            )
        self._dataset_id = found
        settings = {
            part: [
                {"name": item["name"], "settings": item.get("settings") or {}}
                for item in self._request("GET", f"/api/v1/datasets/{found}/{part}").json()["items"]
            ]
            for part in ("fields", "questions")
        }
        items = []
        for record in self._records(with_responses=True):
            responses: dict[str, list[dict[str, Any]]] = {}
            for response in record.get("responses") or []:
                for question, answer in (response.get("values") or {"": {}}).items():
                    responses.setdefault(question, []).append(
                        {
                            "value": (answer or {}).get("value"),
                            "user_id": str(response["user_id"]),
                            "status": response.get("status"),
                            "inserted_at": response.get("inserted_at"),
                            "updated_at": response.get("updated_at"),
                        }
                    )
            items.append({"id": str(record["id"]), "fields": record.get("fields") or {}, "responses": responses})
        stamp = datetime.now(UTC).isoformat()
        return ProjectPull(items=items, settings=settings, cursor=stamp)

    def withdraw_tasks(self, pair_keys: Sequence[str]) -> int:
        dataset_id = self.ensure_project()
        wanted = set(pair_keys)
        ids = [
            r["id"]
            for r in self._records(with_responses=True)
            if r.get("external_id") in wanted and not r.get("responses")
        ]
        for start in range(0, len(ids), 100):  # the server deletes at most 100 per call
            self._request(
                "DELETE",
                f"/api/v1/datasets/{dataset_id}/records",
                params={"ids": ",".join(ids[start : start + 100])},
            )
        return len(ids)

    # -- webhooks ----------------------------------------------------------------------

    webhook_events = ("response.created", "response.updated", "response.deleted")

    def labels_from_event(self, payload: dict[str, Any], received_at: datetime) -> EventLabels:
        kind = payload.get("type")
        if kind not in self.webhook_events:
            raise UnknownEvent(f"Argilla event {kind!r} carries no labels")
        data: Any = payload.get("data")
        try:
            record, user = data["record"], data["user"]
            dataset = record["dataset"]
            project = str(dataset["name"])
            if (dataset.get("workspace") or {}).get("name", self.workspace) != self.workspace:
                project = f"{dataset['workspace']['name']}/{project}"  # same name, another workspace: not ours
            response = {
                "id": data["id"],
                "values": data.get("values"),
                "status": data["status"],
                "user_id": user["id"],
                "record_id": record["id"],
                "inserted_at": data["inserted_at"],
                "updated_at": data["updated_at"],
            }
            self._usernames.setdefault(str(user["id"]), user.get("username"))
            key = record.get("external_id")
            if kind == "response.deleted":
                result = PullResult(labels=[], cursor=None, deleted={str(response["id"]): received_at})
            else:
                labels = self._labels_of(key, self._swapped(record), response) if key else []
                result = PullResult(labels=labels, cursor=None)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedEvent(f"{kind}: the event's data lacks {exc}") from None
        return EventLabels(str(kind), project, result)

    def register_webhook(self, url: str, headers: dict[str, str]) -> str | None:
        """Argilla's webhooks are server-wide (owner only): one per URL, created or re-enabled for the
        response events. Argilla signs with a secret it makes; it is returned for the caller to keep."""
        found = self._request("GET", "/api/v1/webhooks").json()["items"]
        same = [w for w in found if w.get("url") == url]
        if same:
            answer = self._request(
                "PATCH",
                f"/api/v1/webhooks/{same[0]['id']}",
                json={"events": list(self.webhook_events), "enabled": True},
            )
        else:
            answer = self._request(
                "POST",
                "/api/v1/webhooks",
                json={"url": url, "events": list(self.webhook_events), "description": "prefloop serve"},
            )
        return str(answer.json()["secret"])

    # -- dataset -----------------------------------------------------------------------

    def _workspace_id(self, create: bool = False) -> str | None:
        for ws in self._request("GET", "/api/v1/me/workspaces").json()["items"]:
            if ws["name"] == self.workspace:
                return str(ws["id"])
        if not create:
            return None
        answer = self._request("POST", "/api/v1/workspaces", json={"name": self.workspace})
        return str(answer.json()["id"])

    def _find_dataset(self) -> str | None:
        workspace_id = self._workspace_id()
        if workspace_id is None:
            return None
        for ds in self._request("GET", "/api/v1/me/datasets").json()["items"]:
            if ds["name"] == self.settings.project and str(ds["workspace_id"]) == workspace_id:
                return str(ds["id"])
        return None

    def _create_dataset(self) -> None:
        import argilla as rg

        self._workspace_id(create=True)
        client = self._sdk()
        try:
            rg.Dataset(
                name=self.settings.project,
                workspace=self.workspace,
                settings=dataset_settings(self.template, self.settings),
                client=client,
            ).create()
        except Exception as exc:
            if self._find_dataset() is None:  # not a lost race with another ensure_project
                raise BackendError(f"could not create Argilla dataset {self.settings.project!r}: {exc}") from exc

    def _questions(self) -> dict[str, str]:
        if not self._question_ids:
            answer = self._request("GET", f"/api/v1/datasets/{self.ensure_project()}/questions").json()
            self._question_ids = {q["name"]: str(q["id"]) for q in answer["items"]}
        return self._question_ids

    # -- records ---------------------------------------------------------------------

    def _record_payload(self, task: TaskRequest) -> dict[str, Any]:
        s = self.settings
        swapped = presentation_swapped(task.pair_key, seed=s.order_seed, randomize=s.randomize_order)
        first, second = (task.response_b, task.response_a) if swapped else (task.response_a, task.response_b)
        names = [f["name"] for f in self.template["fields"]]
        metadata = {
            "pair_key": task.pair_key,
            "strategy": task.strategy,
            "score": task.score,
            "model_version": task.model_version,
            "len_a": len(first),
            "len_b": len(second),
            "swapped": "true" if swapped else "false",
        }
        declared = {m["name"] for m in self.template["metadata"]}
        payload: dict[str, Any] = {
            "external_id": task.pair_key,
            "fields": dict(zip(names, (task.prompt, first, second), strict=True)),
            "metadata": {k: v for k, v in metadata.items() if v is not None and k in declared},
        }
        if s.show_predictions and task.p_a is not None:
            canonical = "a" if task.p_a > 0.5 else "b" if task.p_a < 0.5 else "tie"
            agent = re.sub(r"[^a-zA-Z0-9_:./ -]", "-", task.model_version or "prefloop")[:200]
            payload["suggestions"] = [
                {
                    "question_id": self._questions()[self.template["preference"]["name"]],
                    "value": undo_presentation(canonical, swapped),  # canonical -> shown: the same flip
                    "score": round(max(task.p_a, 1 - task.p_a), 6),
                    "agent": agent,
                    "type": "model",
                }
            ]
        return payload

    def _swapped(self, record: dict[str, Any]) -> bool:
        return (record.get("metadata") or {}).get("swapped") == "true"

    def _pushed(self, record: dict[str, Any]) -> PushedTask:
        return PushedTask(
            pair_key=record["external_id"],
            external_id=str(record["id"]),
            swapped=self._swapped(record),
            project=self.settings.project,
        )

    def _pages(self, with_responses: bool) -> Iterator[tuple[list[dict[str, Any]], datetime | None, int]]:
        """Pages of the raw record listing, with the server's clock when each page was served."""
        dataset_id = self.ensure_project()
        params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": 0}
        if with_responses:
            params["include"] = "responses"
        what = f"GET /api/v1/datasets/{dataset_id}/records"
        guard = PageGuard(f"Argilla at {self.shown_url}", what, self.settings.deadline_s, PAGE_SIZE)
        while True:
            answer = self._request(
                "GET", f"/api/v1/datasets/{dataset_id}/records", params=params, deadline=guard.deadline
            )
            body = answer.json()
            guard.check([item.get("id") for item in body["items"]], int(body.get("total", 0)))
            date = answer.headers.get("date")
            # The Date header has 1 s resolution: step back a second so the cursor never runs ahead.
            served = parsedate_to_datetime(date) - timedelta(seconds=1) if date else None
            yield body["items"], served, int(body.get("total", 0))
            params["offset"] += len(body["items"])
            if not body["items"] or params["offset"] >= body.get("total", 0):
                return

    def _records(self, with_responses: bool) -> list[dict[str, Any]]:
        return [r for page, _, _ in self._pages(with_responses) for r in page]

    # -- labels ----------------------------------------------------------------------

    def _annotator(self, user_id: str) -> AnnotatorRef:
        if user_id not in self._usernames:
            answer = self._request("GET", f"/api/v1/users/{user_id}", allow=(403, 404))
            self._usernames[user_id] = answer.json().get("username") if answer.status_code == 200 else None
        return AnnotatorRef(external_id=user_id, name=self._usernames[user_id])

    def _labels_of(self, key: str, swapped: bool, response: dict[str, Any]) -> list[PulledLabel]:
        """The labels one response carries: drafts none; discarded one SKIP; submitted one + dimensions."""
        status = response.get("status")
        if status not in ("submitted", "discarded"):
            return []
        values = response.get("values") or {}

        def value(question: str) -> Any:
            return (values.get(question) or {}).get("value")

        tpl = self.template
        common: dict[str, Any] = {
            "pair_key": key,
            "annotator": self._annotator(str(response["user_id"])),
            "version": _when(response["updated_at"]).isoformat(),
            "created_at": _when(response["inserted_at"]),
            "updated_at": _when(response["updated_at"]),
            "raw": {"record_id": str(response["record_id"]), "status": status, "values": values},
        }
        rid = str(response["id"])
        if status == "discarded":
            return [PulledLabel(choice=Choice.SKIP, source_id=rid, **common)]
        shown = value(tpl["preference"]["name"])
        if shown not in ("a", "b", "tie"):
            return []
        strength = value(tpl["strength"]["name"])
        out = [
            PulledLabel(
                choice=Choice(undo_presentation(shown, swapped)),
                source_id=rid,
                strength=float(strength) if strength is not None else None,
                rationale=value(tpl["rationale"]["name"]) or None,
                **common,
            )
        ]
        for dimension in self.settings.dimensions:
            dim_shown = value(dimension_question(self.template, dimension))
            if dim_shown in ("a", "b", "tie"):
                out.append(
                    PulledLabel(
                        choice=Choice(undo_presentation(dim_shown, swapped)),
                        source_id=f"{rid}:{dimension}",
                        dimension=dimension,
                        **common,
                    )
                )
        return out
