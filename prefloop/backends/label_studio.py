"""Label Studio backend: pairs become tasks of one project, annotations come back as labels.

Talks to Label Studio (1.2x open source) through label-studio-sdk 2.x's public client
wherever it covers a call (version, users, projects, import, single tasks). Two calls stay
plain REST on prefloop's own httpx client: task pages with Data Manager filters (the
generated task models reshape the raw annotation JSON the pull reads) and the Data Manager
bulk delete (the SDK drops the count of deleted tasks). ``_KeyAuth`` authenticates those
the way the SDK does: a legacy token as it is, a personal access token exchanged at the
documented ``/api/token/refresh/`` for short-lived access tokens.

Every call, SDK or REST, goes through the one retry policy of ``retry.py`` (the SDK's own
retries are off: they would also retry a 500 or a 409).

How the contract maps onto Label Studio:

* a task's data carries ``pair_key``, the ``swapped`` flag and the two responses in
  the order shown (``left`` / ``right``); push lists those keys first, so it is
  idempotent whatever prefloop's store says;
* one annotation gives one label (``source_id`` = annotation id) plus one per
  configured dimension (``<annotation id>:<dimension>``); its ``updated_at`` is the
  version, so an edit is a new version of the same source;
* creating, editing and deleting an annotation all move the task's ``updated_at``:
  the pull filters tasks on it (minus ``overlap_s``) and reports every annotation
  id still on each task it read, which is how deletions are seen;
* webhooks (``prefloop serve``): ``ANNOTATION_CREATED`` / ``ANNOTATIONS_CREATED`` /
  ``ANNOTATION_UPDATED`` carry the annotation and its task, read by the same ``_labels``
  as a pull; ``ANNOTATIONS_DELETED`` carries only annotation ids, reported in
  ``PullResult.deleted``. Label Studio neither signs nor retries them: the webhook is
  registered with a header carrying a shared secret, and the next poll picks up a lost one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import quoteattr

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

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
from prefloop.backends.retry import RetryPolicy, Transient, transient_answer
from prefloop.redact import mask_url
from prefloop.resources import shipped_folder
from prefloop.types import AnnotatorRef, Choice, ProjectPull, PulledLabel, PullResult, PushedTask, TaskRequest

__all__ = ["DEFAULT_TEMPLATE", "LabelStudioBackend", "label_config"]

DEFAULT_URL = "http://localhost:8080"
DEFAULT_TEMPLATE = shipped_folder("templates") / "label_studio.xml"
_T = TypeVar("_T")

_QUESTIONS = {
    "helpful": "Which response is more helpful?",
    "harmless": "Which response is less harmful?",
    "honest": "Which response is more honest?",
}
_CHOICES = {"a": Choice.A, "b": Choice.B, "tie": Choice.TIE, "a is better": Choice.A, "b is better": Choice.B}
_STRENGTH = (
    '<Header value="How strong is the preference? (1 slight, 3 strong)"/>\n'
    '  <Rating name="strength" toName="prompt" maxRating="3"/>'
)
_RATIONALE = (
    '<Header value="Why? (optional)"/>\n'
    '  <TextArea name="rationale" toName="prompt" maxSubmissions="1" editable="true" rows="2"/>'
)
_DIMENSION = (
    "<Header value={question}/>\n"
    '  <Choices name="dim_{name}" toName="prompt" choice="single-radio" showInline="true">\n'
    '    <Choice value="A" alias="a"/><Choice value="B" alias="b"/><Choice value="Tie" alias="tie"/>\n'
    "  </Choices>"
)


def label_config(settings: BackendSettings) -> str:
    """The project's label config: the template with the optional questions filled in."""
    path = Path(settings.template) if settings.template else DEFAULT_TEMPLATE
    try:
        xml = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendError(
            f"cannot read the Label Studio template {path}: {exc}; set BackendSettings.template to a label config file"
        ) from exc
    dims = []
    for name in settings.dimensions:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise BackendError(f"dimension name {name!r} must be lowercase letters, digits and _")
        question = _QUESTIONS.get(name, f"Which response is better on {name.replace('_', ' ')}?")
        dims.append(_DIMENSION.format(name=name, question=quoteattr(question)))
    return (
        xml.replace("<!--prefloop:strength-->", _STRENGTH if settings.with_strength else "")
        .replace("<!--prefloop:rationale-->", _RATIONALE if settings.with_rationale else "")
        .replace("<!--prefloop:dimensions-->", "\n  ".join(dims))
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class _MaybeApplied(Exception):
    """A non-idempotent request failed in a way that may have reached the server."""


class _HttpFailure(Exception):
    """A plain REST call answered with an error status (classified like the SDK's ApiError)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], body: str) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code, self.headers, self.body = status_code, headers, body


class _KeyAuth(httpx.Auth):
    """Label Studio's two kinds of API key on plain REST calls.

    A legacy token is sent as ``Token <key>``. A personal access token (a JWT refresh token)
    is exchanged at ``POST /api/token/refresh/`` for a short-lived access token, sent as
    ``Bearer``, and exchanged again when the server says it expired (401).
    """

    requires_response_body = True

    def __init__(self, key: str) -> None:
        self.key = key
        self.personal = key.count(".") == 2  # header.payload.signature
        self.access: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.personal:
            request.headers["Authorization"] = f"Token {self.key}"
            yield request
            return
        fresh = self.access is None
        if fresh:
            self.access = yield from self._exchange(request)
        request.headers["Authorization"] = f"Bearer {self.access}"
        response = yield request
        if response.status_code == 401 and not fresh:  # the access token expired meanwhile
            self.access = yield from self._exchange(request)
            request.headers["Authorization"] = f"Bearer {self.access}"
            yield request

    def _exchange(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, str]:
        answer = yield httpx.Request("POST", request.url.join("/api/token/refresh/"), json={"refresh": self.key})
        failure = transient_answer(answer.status_code, answer.headers)
        if failure is not None:
            raise failure
        return str(answer.json().get("access", "")) if answer.status_code == 200 else "refused"


class LabelStudioBackend(AnnotationBackend):
    """Pairs as tasks of one Label Studio project (found or created by title)."""

    name = "label_studio"

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        # the URL and key come from the settings only: config.load_config reads the environment
        self.url = (settings.url or DEFAULT_URL).rstrip("/")
        self.shown_url = mask_url(self.url)  # for messages: a password in the URL never shows
        self._api_key = settings.api_key
        self._retry = RetryPolicy.from_settings(settings)
        self._client: LabelStudio | None = None
        self._http: httpx.Client | None = None
        self._project_id: int | None = None
        self._user_cache: dict[int, AnnotatorRef] = {}  # webhooks: user id → who, read when one is new

    def __repr__(self) -> str:  # the key never appears, not even its length
        key = "***" if self._api_key else None
        return f"LabelStudioBackend(project={self.settings.project!r}, url={self.shown_url!r}, api_key={key})"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- transport ------------------------------------------------------------------

    def _key(self) -> str:
        if not self._api_key:
            raise BackendAuthError(
                "no Label Studio API key: set LABEL_STUDIO_API_KEY (or api_key under [backend]) to a legacy "
                "token or a personal access token from Account & Settings"
            )
        return self._api_key

    @property
    def client(self) -> LabelStudio:
        """The SDK client (built on first use); its own retries are off, ``_call`` retries."""
        if self._client is None:
            try:
                self._client = LabelStudio(
                    base_url=self.url, api_key=self._key(), timeout=self.settings.timeout_s, max_retries=0
                )
            except ApiError:  # the SDK checks a personal access token's expiry here
                raise self._refused("the SDK", 401) from None
        return self._client

    def _refused(self, what: str, status: int) -> BackendAuthError:
        return BackendAuthError(
            f"Label Studio at {self.shown_url} refused the API key (HTTP {status}) for {what}; set "
            "LABEL_STUDIO_API_KEY (or api_key under [backend]) to a valid token: Account & Settings creates a new one"
        )

    def _call(
        self,
        what: str,
        send: Callable[[], _T],
        *,
        idempotent: bool = True,
        attempts: int | None = None,
        deadline: Deadline | None = None,
    ) -> _T:
        """One call (SDK or REST) under the retry policy, its tries ending by ``deadline``
        (default: ``[backend] deadline_s`` from now).

        Transient failures (``retry.py``) are retried; a non-idempotent call is retried only
        when the request surely never left (connection refused), any other failure raises
        ``_MaybeApplied`` so the caller can look at the server before trying again.
        """

        def attempt() -> _T:
            try:
                return send()
            except httpx.TransportError as exc:  # refused, reset, timed out
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise _MaybeApplied(type(exc).__name__) from None
                raise Transient(type(exc).__name__) from None
            except (ApiError, _HttpFailure) as exc:
                status = int(exc.status_code or 0)
                failure = transient_answer(status, exc.headers)
                if failure is not None:
                    if not idempotent:
                        raise _MaybeApplied(failure.problem) from None
                    raise failure from None
                if status in (401, 403):
                    raise self._refused(what, status) from None
                raise BackendError(f"Label Studio {what} answered HTTP {status}: {str(exc.body)[:500]}") from None

        tries = attempts or self._retry.attempts
        try:
            return self._retry.call(attempt, attempts=tries, deadline=deadline or Deadline(self.settings.deadline_s))
        except Transient as exc:
            raise BackendUnreachable(
                f"Label Studio at {self.shown_url} did not answer {what} after {tries} tries ({exc.problem}); "
                "check that the server is running and the URL (LABEL_STUDIO_URL or url under [backend]) is right"
            ) from None

    def _rest(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        deadline: Deadline | None = None,
    ) -> Any:
        """A plain REST call (for what the SDK does not cover), under ``_call``."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=self.settings.timeout_s, auth=_KeyAuth(self._key()))
        http = self._http

        def send() -> Any:
            response = http.request(method, path, params=params, json=body)
            if response.status_code >= 400:
                raise _HttpFailure(response.status_code, response.headers, response.text)
            return response.json() if response.content else None

        return self._call(f"{method} {path}", send, deadline=deadline)

    def _settle(self, what: str, attempt_fn: Callable[[], _T]) -> _T:
        """Run ``attempt_fn`` (which re-reads the server each time) until it is not ambiguous."""

        def attempt() -> _T:
            try:
                return attempt_fn()
            except _MaybeApplied as exc:
                raise Transient(str(exc)) from None

        try:
            return self._retry.call(attempt, deadline=Deadline(self.settings.deadline_s))
        except Transient as exc:
            raise BackendUnreachable(
                f"Label Studio at {self.shown_url} did not confirm {what} after "
                f"{self._retry.attempts} tries ({exc.problem}); check the server"
            ) from None

    # -- the contract ---------------------------------------------------------------

    def health(self) -> Health:
        try:
            version = self._call("GET /api/version", lambda: self.client.versions.get()).release
            who = self._call("GET /api/current-user/whoami", lambda: self.client.users.whoami())
        except BackendAuthError as exc:
            return Health(ok=False, detail=str(exc), refused=True)
        except BackendUnreachable as exc:
            return Health(ok=False, detail=str(exc))
        except BackendError as exc:
            return Health(ok=False, detail=str(exc), answered=True)
        return Health(ok=True, detail=f"Label Studio at {self.shown_url} as user {who.id}", version=version)

    def ensure_project(self) -> str:
        if self._project_id is None:
            self._project_id = self._settle(f"project {self.settings.project!r}", self._find_or_create)
        return str(self._project_id)

    def _find_or_create(self) -> int:
        title = self.settings.project
        rows = self._projects_titled(title)
        same = sorted(int(row.id) for row in rows if row.title == title and row.id is not None)
        if same:
            return same[0]
        config = label_config(self.settings)
        created = self._call(
            "POST /api/projects",
            lambda: self.client.projects.create(
                title=title,
                description="Pairwise preference tasks pushed by prefloop.",
                label_config=config,
                maximum_annotations=max(1, self.settings.annotators_per_pair),
                show_collab_predictions=self.settings.show_predictions,
                show_skip_button=True,
            ),
            idempotent=False,
        )
        if created.id is None:
            raise BackendError(f"Label Studio created project {title!r} but did not say its id; rerun sync")
        return int(created.id)

    def _projects_titled(self, title: str, page_size: int = 1000) -> list[Any]:
        """Projects whose title contains ``title``, page by page under a ``PageGuard`` (the SDK's own
        pager asks for the next page until one is empty: forever, when a server ignores ``page``)."""
        guard = PageGuard(f"Label Studio at {self.shown_url}", "GET /api/projects", self.settings.deadline_s, page_size)
        rows: list[Any] = []
        page = 1
        while True:

            def one_page(n: int = page) -> Any:
                return self.client.projects.list(title=title, page=n, page_size=page_size)

            answer = self._call("GET /api/projects", one_page, deadline=guard.deadline)
            items = list(answer.items or [])
            count = getattr(answer.response, "count", None)
            guard.check([row.id for row in items], count)
            rows.extend(items)
            if not items or getattr(answer.response, "next", None) is None:
                return rows
            if count is not None and len(rows) >= count:
                return rows
            page += 1

    def push_tasks(self, tasks: Sequence[TaskRequest]) -> list[PushedTask]:
        project_id = int(self.ensure_project())
        wanted: dict[str, TaskRequest] = {}
        for task in tasks:  # the first request for a key wins
            wanted.setdefault(task.pair_key, task)

        def attempt() -> dict[str, PushedTask]:
            live = {t.pair_key: t for t in self._live(project_id)}
            todo = [t for key, t in wanted.items() if key not in live]
            for start in range(0, len(todo), max(1, self.settings.batch_size)):
                batch = todo[start : start + max(1, self.settings.batch_size)]
                live.update(self._import(project_id, batch))
            return live

        live = self._settle("the task import", attempt)
        return [live[key] for key in wanted if key in live]

    def _import(self, project_id: int, batch: Sequence[TaskRequest]) -> dict[str, PushedTask]:
        payload = [self._task_payload(t) for t in batch]
        answer = self._call(
            f"POST /api/projects/{project_id}/import",
            lambda: self.client.projects.import_tasks(project_id, request=payload, return_task_ids=True),  # type: ignore[arg-type]  # plain dicts serialise like the typed requests
            idempotent=False,
        )
        ids = list(getattr(answer, "task_ids", None) or [])
        if len(ids) != len(batch):  # an older server without task ids: read them back
            keys = {b.pair_key for b in batch}
            return {t.pair_key: t for t in self._live(project_id) if t.pair_key in keys}
        return {
            item["data"]["pair_key"]: PushedTask(
                item["data"]["pair_key"], str(task_id), item["data"]["swapped"], self.settings.project
            )
            for item, task_id in zip(payload, ids, strict=True)
        }

    def _task_payload(self, task: TaskRequest) -> dict[str, Any]:
        swapped = presentation_swapped(task.pair_key, self.settings.order_seed, self.settings.randomize_order)
        left, right = (task.response_b, task.response_a) if swapped else (task.response_a, task.response_b)
        item: dict[str, Any] = {
            "data": {
                "prompt": task.prompt,
                "left": left,
                "right": right,
                "pair_key": task.pair_key,
                "swapped": swapped,
                "strategy": task.strategy,
                "score": task.score,
            }
        }
        if self.settings.show_predictions and task.p_a is not None:
            p_left = 1.0 - task.p_a if swapped else task.p_a
            item["predictions"] = [
                {
                    "model_version": task.model_version or "prefloop",
                    "score": max(p_left, 1.0 - p_left),
                    "result": [
                        {
                            "from_name": "preference",
                            "to_name": "prompt",
                            "type": "choices",
                            "value": {"choices": ["a" if p_left >= 0.5 else "b"]},
                        }
                    ],
                }
            ]
        return item

    def live_tasks(self) -> list[PushedTask]:
        return self._live(int(self.ensure_project()))

    def _live(self, project_id: int) -> list[PushedTask]:
        return [
            PushedTask(
                task["data"]["pair_key"], str(task["id"]), bool(task["data"].get("swapped")), self.settings.project
            )
            for task in self._pages(project_id, {"fields": "task_only", "include": "id,data"}, None)
            if "pair_key" in task.get("data", {})
        ]

    def _pages(
        self, project_id: int, params: dict[str, Any], filters: list[dict[str, Any]] | None, page_size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every task of the project matching ``filters``, page by page in id order."""
        query = {"filters": {"conjunction": "and", "items": filters or []}, "ordering": ["tasks:id"]}
        guard = PageGuard(f"Label Studio at {self.shown_url}", "GET /api/tasks", self.settings.deadline_s, page_size)
        page, seen = 1, 0
        while True:
            answer = self._rest(
                "GET",
                "/api/tasks",
                params={
                    **params,
                    "project": project_id,
                    "page": page,
                    "page_size": page_size,
                    "query": json.dumps(query),
                },
                deadline=guard.deadline,
            )
            tasks = answer.get("tasks", []) if isinstance(answer, dict) else answer
            # a page past the end is a 404 ("Invalid page."), so stop on the total
            total = answer.get("total") if isinstance(answer, dict) else None
            guard.check([task.get("id") for task in tasks], total if isinstance(total, int) else None)
            yield from tasks
            seen += len(tasks)
            if len(tasks) < page_size or (total is not None and seen >= total):
                return
            page += 1

    def pull_labels(self, since: str | None = None) -> PullResult:
        project_id = int(self.ensure_project())
        users = self._users()
        filters = None
        since_at = _parse_time(since)
        if since_at is not None:
            window = since_at - timedelta(seconds=self.settings.overlap_s)
            filters = [
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": _iso(window)}
            ]
        labels: list[PulledLabel] = []
        alive: dict[str, frozenset[str]] = {}
        newest = since_at
        page_size = max(1, min(self.settings.batch_size, 1000))
        for task in self._pages(project_id, {"fields": "all"}, filters, page_size=page_size):
            key = task.get("data", {}).get("pair_key")
            if not key:
                continue
            swapped = bool(task["data"].get("swapped"))
            found = [label for ann in task.get("annotations", []) for label in self._labels(ann, key, swapped, users)]
            labels.extend(found)
            alive[key] = frozenset(lb.source_id for lb in found)
            updated = _parse_time(task.get("updated_at"))
            if updated is not None and (newest is None or updated > newest):
                newest = updated
        return PullResult(labels=labels, cursor=_iso(newest) if newest else since, alive=alive)

    def pull_project(self, since: str | None = None) -> ProjectPull:
        """Tasks of an existing project (found by title, never created) changed after ``since``.

        The same task pages as ``pull_labels``, filtered on the task's ``updated_at`` (which
        creating, editing and deleting an annotation all move), each with all its annotations.
        """
        title = self.settings.project
        rows: list[Any] = self._call(
            "GET /api/projects", lambda: list(self.client.projects.list(title=title, page_size=1000))
        )
        found = sorted((row for row in rows if row.title == title and row.id is not None), key=lambda r: int(r.id))
        if not found:
            raise BackendError(
                f"Label Studio at {self.url} has no project titled {title!r}; check the title "
                "(--project) and that the API key's user can see it"
            )
        project_id, config = int(found[0].id), str(found[0].label_config or "")
        filters = None
        since_at = _parse_time(since)
        if since_at is not None:
            window = since_at - timedelta(seconds=self.settings.overlap_s)
            filters = [
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": _iso(window)}
            ]
        tasks, newest = [], since_at
        page_size = max(1, min(self.settings.batch_size, 1000))
        for task in self._pages(project_id, {"fields": "all"}, filters, page_size=page_size):
            tasks.append(task)
            updated = _parse_time(task.get("updated_at"))
            if updated is not None and (newest is None or updated > newest):
                newest = updated
        users = {str(k): v.name for k, v in self._users().items() if v.name}
        return ProjectPull(
            items=tasks, settings={"label_config": config, "users": users}, cursor=_iso(newest) if newest else since
        )

    def _users(self) -> dict[int, AnnotatorRef]:
        rows = self._call("GET /api/users/", lambda: self.client.users.list())
        return {int(row.id): AnnotatorRef(str(row.id), row.email or None) for row in rows if row.id is not None}

    def _labels(
        self, ann: dict[str, Any], key: str, swapped: bool, users: dict[int, AnnotatorRef]
    ) -> list[PulledLabel]:
        """The labels one annotation gives: the overall choice plus one per dimension."""
        who = ann.get("completed_by")
        user_id = who.get("id") if isinstance(who, dict) else who
        common: dict[str, Any] = {
            "pair_key": key,
            "annotator": users.get(user_id, AnnotatorRef(str(user_id)))
            if isinstance(user_id, int)
            else AnnotatorRef(str(user_id)),
            "version": ann.get("updated_at") or ann.get("created_at") or "",
            "created_at": _parse_time(ann.get("created_at")),
            "updated_at": _parse_time(ann.get("updated_at")),
        }
        source = str(ann["id"])
        raw = {
            "task_id": ann.get("task"),
            "annotation_id": ann["id"],
            "result": ann.get("result", []),
            "lead_time": ann.get("lead_time"),
        }
        if ann.get("was_cancelled"):
            return [PulledLabel(choice=Choice.SKIP, source_id=source, raw=raw, **common)]
        values = {r.get("from_name"): r.get("value", {}) for r in ann.get("result") or []}
        out = []
        overall = self._choice(values.get("preference"), swapped)
        if overall is not None:
            rating = values.get("strength", {}).get("rating")
            text = "\n".join(values.get("rationale", {}).get("text", [])).strip()
            out.append(
                PulledLabel(
                    choice=overall,
                    source_id=source,
                    raw=raw,
                    strength=float(rating) if rating is not None else None,
                    rationale=text or None,
                    **common,
                )
            )
        for name in self.settings.dimensions:
            choice = self._choice(values.get(f"dim_{name}"), swapped)
            if choice is not None:
                out.append(PulledLabel(choice=choice, source_id=f"{source}:{name}", dimension=name, raw=raw, **common))
        return out

    @staticmethod
    def _choice(value: dict[str, Any] | None, swapped: bool) -> Choice | None:
        picked = (value or {}).get("choices") or []
        choice = _CHOICES.get(str(picked[0]).strip().lower()) if picked else None
        return Choice(undo_presentation(choice.value, swapped)) if choice else None

    # -- webhooks -------------------------------------------------------------------

    webhook_events = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")

    def labels_from_event(self, payload: dict[str, Any], received_at: datetime) -> EventLabels:
        action = payload.get("action")
        if action not in self.webhook_events:
            raise UnknownEvent(f"Label Studio action {action!r} carries no labels")
        project = payload.get("project")
        title = project.get("title") if isinstance(project, dict) else None
        if not isinstance(title, str):
            raise MalformedEvent(f"{action} without project.title: is send_payload on for the webhook?")
        if action == "ANNOTATIONS_DELETED":
            items = payload.get("annotations")
            if not isinstance(items, list) or not all(isinstance(a, dict) and "id" in a for a in items):
                raise MalformedEvent("ANNOTATIONS_DELETED without a list of annotations with ids")
            deleted = {str(a["id"]): received_at for a in items}
            return EventLabels(action, title, PullResult(labels=[], cursor=None, deleted=deleted))
        annotations, tasks = payload.get("annotation"), payload.get("task")
        if isinstance(annotations, dict):
            annotations, tasks = [annotations], [tasks]
        if not isinstance(annotations, list) or not isinstance(tasks, list):
            raise MalformedEvent(f"{action} without annotation and task: is send_payload on for the webhook?")
        by_id = {t.get("id"): t for t in tasks if isinstance(t, dict)}
        labels: list[PulledLabel] = []
        try:
            users = self._known_users({ann.get("completed_by") for ann in annotations})
            for ann in annotations:
                data = (by_id.get(ann.get("task")) or {}).get("data") or {}
                key = data.get("pair_key")
                if key:  # a task prefloop did not push: not ours
                    labels.extend(self._labels(ann, key, bool(data.get("swapped")), users))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedEvent(f"{action}: an annotation lacks {exc}") from None
        return EventLabels(action, title, PullResult(labels=labels, cursor=None))

    def _known_users(self, ids: set[Any]) -> dict[int, AnnotatorRef]:
        """The users a pull would name, read once and again only when an unknown one shows up."""
        if any(isinstance(i, int) and i not in self._user_cache for i in ids):
            self._user_cache = self._users()
        return self._user_cache

    def register_webhook(self, url: str, headers: dict[str, str]) -> str | None:
        """One webhook per project and URL: created, or updated to these actions and headers."""
        project_id = int(self.ensure_project())
        body = {
            "project": project_id,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "is_active": True,
            "headers": headers,
            "actions": list(self.webhook_events),
        }
        existing = self._rest("GET", "/api/webhooks", params={"project": project_id}) or []
        same = [w for w in existing if w.get("url") == url and w.get("project") == project_id]
        if same:
            self._rest("PATCH", f"/api/webhooks/{same[0]['id']}", body=body)
        else:
            self._rest("POST", "/api/webhooks", body=body)
        return None

    supports_more_labels = True

    def request_more_labels(self, pair_keys: Sequence[str], total: int) -> int:
        """Raise the task's own ``overlap`` (Label Studio counts a task as done at that many
        annotations; the project's ``maximum_annotations`` is only the default)."""
        project_id = int(self.ensure_project())
        keys = set(pair_keys)
        reopened = 0
        for task in self._live(project_id):
            if task.pair_key in keys and self._reopen(task.external_id, total):
                reopened += 1
        return reopened

    def _reopen(self, task_id: str, total: int) -> bool:
        """Raise one task's overlap to ``total``; False when it already asks for that many."""
        current: Any = self._call(f"GET /api/tasks/{task_id}", lambda: self.client.tasks.get(task_id))
        if int(current.overlap or 1) >= total:
            return False
        change: dict[str, Any] = {"overlap": total}
        if int(current.total_annotations or 0) < total:  # not recomputed on its own: back to the stream
            change["is_labeled"] = False
        self._call(f"PATCH /api/tasks/{task_id}", lambda: self.client.tasks.update(task_id, **change))
        return True

    def withdraw_tasks(self, pair_keys: Sequence[str]) -> int:
        project_id = int(self.ensure_project())
        keys = set(pair_keys)
        ids = [int(t.external_id) for t in self._live(project_id) if t.pair_key in keys]
        if not ids:
            return 0
        # The server applies the filters in the same query as the delete, so a task that
        # gets its first annotation meanwhile is kept.
        unlabeled = {
            "conjunction": "and",
            "items": [
                {"filter": f"filter:tasks:{field}", "operator": "equal", "type": "Number", "value": 0}
                for field in ("total_annotations", "cancelled_annotations")
            ],
        }
        answer = self._rest(
            "POST",
            "/api/dm/actions",
            params={"id": "delete_tasks", "project": project_id},
            body={"selectedItems": {"all": False, "included": ids}, "filters": unlabeled},
        )
        return int(answer.get("processed_items", 0))
