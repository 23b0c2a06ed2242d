"""Label Studio backend: pairs become tasks of one project, annotations come back as labels.

Talks to Label Studio (1.2x open source) through label-studio-sdk 2.x: the SDK's
``LabelStudio`` client owns authentication (a legacy token, or a personal access
token that it exchanges for short-lived bearer tokens) and its httpx client; the
calls themselves are plain REST requests because the bulk paths this backend needs
(import with task ids, task pages with Data Manager filters, bulk delete) are
awkward or slow through the generated models.

How the contract maps onto Label Studio:

* a task's data carries ``pair_key``, the ``swapped`` flag and the two responses in
  the order shown (``left`` / ``right``); push lists those keys first, so it is
  idempotent whatever prefloop's store says;
* one annotation gives one label (``source_id`` = annotation id) plus one per
  configured dimension (``<annotation id>:<dimension>``); its ``updated_at`` is the
  version, so an edit is a new version of the same source;
* creating, editing and deleting an annotation all move the task's ``updated_at``:
  the pull filters tasks on it (minus ``overlap_s``) and reports every annotation
  id still on each task it read, which is how deletions are seen.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import quoteattr

import httpx
from label_studio_sdk import LabelStudio

from prefloop.backends.base import (
    AnnotationBackend,
    BackendError,
    BackendSettings,
    BackendUnreachable,
    Health,
    presentation_swapped,
    undo_presentation,
)
from prefloop.resources import shipped_folder
from prefloop.types import AnnotatorRef, Choice, PulledLabel, PullResult, PushedTask, TaskRequest

__all__ = ["DEFAULT_TEMPLATE", "LabelStudioBackend", "label_config"]

DEFAULT_URL = "http://localhost:8080"
DEFAULT_TEMPLATE = shipped_folder("templates") / "label_studio.xml"
API_KEY_ENV = ("PREFLOOP_LABEL_STUDIO_API_KEY", "LABEL_STUDIO_API_KEY")
URL_ENV = "LABEL_STUDIO_URL"
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


class LabelStudioBackend(AnnotationBackend):
    """Pairs as tasks of one Label Studio project (found or created by title)."""

    name = "label_studio"

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        self.url = (settings.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self._api_key = settings.api_key or next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
        self._client: LabelStudio | None = None
        self._project_id: int | None = None

    def __repr__(self) -> str:  # the key never appears, not even its length
        key = "***" if self._api_key else None
        return f"LabelStudioBackend(project={self.settings.project!r}, url={self.url!r}, api_key={key})"

    # -- transport ------------------------------------------------------------------

    @property
    def client(self) -> LabelStudio:
        """The SDK client (built on first use; a personal access token is exchanged lazily)."""
        if self._client is None:
            if not self._api_key:
                raise BackendError(
                    "no Label Studio API key: set BackendSettings.api_key or the "
                    f"{' / '.join(API_KEY_ENV)} environment variable"
                )
            try:
                self._client = LabelStudio(
                    base_url=self.url, api_key=self._api_key, timeout=self.settings.timeout_s, max_retries=0
                )
            except Exception as exc:  # the SDK rejects an expired personal access token here
                raise BackendError(
                    f"the Label Studio API key was rejected: {type(exc).__name__}; "
                    "create a new access token in Account & Settings"
                ) from None
        return self._client

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        attempts: int | None = None,
    ) -> Any:
        """One REST call with bounded retries on connection errors, timeouts, 429 and 5xx.

        A non-idempotent call is retried only when the request surely never left
        (connection refused); any other failure raises ``_MaybeApplied`` so the caller
        can look at the server before trying again.
        """
        tries = attempts or self.settings.retries + 1
        wrapper = self.client._client_wrapper
        problem = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                headers = wrapper.get_headers()  # exchanges a personal access token when due
            except httpx.TransportError as exc:
                problem = type(exc).__name__
                continue
            except Exception as exc:
                raise BackendError(
                    f"Label Studio at {self.url} refused the API key "
                    f"({type(exc).__name__}); check it or create a new one"
                ) from None
            try:
                response = wrapper.httpx_client.httpx_client.request(
                    method,
                    f"{self.url}{path}",
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self.settings.timeout_s,
                )
            except httpx.TransportError as exc:  # connection refused / reset, timeouts
                problem = type(exc).__name__
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise _MaybeApplied(problem) from None
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                if not idempotent:
                    raise _MaybeApplied(problem)
                continue
            if response.status_code in (401, 403):
                raise BackendError(
                    f"Label Studio at {self.url} refused the API key (HTTP "
                    f"{response.status_code}) for {method} {path}; check the token"
                )
            if response.status_code >= 400:
                raise BackendError(
                    f"Label Studio {method} {path} answered HTTP {response.status_code}: {response.text[:500]}"
                )
            return response.json() if response.content else None
        raise BackendUnreachable(
            f"Label Studio at {self.url} did not answer {method} {path} after {tries} tries ({problem}); "
            "check that the server is running and the URL is right"
        )

    def _settle(self, what: str, attempt_fn: Callable[[], _T]) -> _T:
        """Run ``attempt_fn`` (which re-reads the server each time) until it is not ambiguous."""
        problem = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                return attempt_fn()
            except _MaybeApplied as exc:
                problem = str(exc)
        raise BackendUnreachable(
            f"Label Studio at {self.url} did not confirm {what} after "
            f"{self.settings.retries + 1} tries ({problem}); check the server"
        )

    # -- the contract ---------------------------------------------------------------

    def health(self) -> Health:
        try:
            self._request("GET", "/health", attempts=1)
            version = self._request("GET", "/api/version", attempts=1).get("release")
            who = self._request("GET", "/api/current-user/whoami", attempts=1)
        except BackendError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail=f"Label Studio at {self.url} as user {who.get('id')}", version=version)

    def ensure_project(self) -> str:
        if self._project_id is None:
            self._project_id = self._settle(f"project {self.settings.project!r}", self._find_or_create)
        return str(self._project_id)

    def _find_or_create(self) -> int:
        title = self.settings.project
        found = self._request("GET", "/api/projects", params={"title": title, "page_size": 1000})
        rows = found.get("results", []) if isinstance(found, dict) else found
        same = sorted(row["id"] for row in rows if row.get("title") == title)
        if same:
            return same[0]
        created = self._request(
            "POST",
            "/api/projects",
            idempotent=False,
            body={
                "title": title,
                "description": "Pairwise preference tasks pushed by prefloop.",
                "label_config": label_config(self.settings),
                "maximum_annotations": max(1, self.settings.annotators_per_pair),
                "show_collab_predictions": self.settings.show_predictions,
                "show_skip_button": True,
            },
        )
        return int(created["id"])

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
        answer = self._request(
            "POST",
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            body=payload,
            idempotent=False,
        )
        ids = answer.get("task_ids") or []
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
        page, seen = 1, 0
        while True:
            answer = self._request(
                "GET",
                "/api/tasks",
                params={
                    **params,
                    "project": project_id,
                    "page": page,
                    "page_size": page_size,
                    "query": json.dumps(query),
                },
            )
            tasks = answer.get("tasks", []) if isinstance(answer, dict) else answer
            yield from tasks
            seen += len(tasks)
            # a page past the end is a 404 ("Invalid page."), so stop on the total
            total = answer.get("total") if isinstance(answer, dict) else None
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

    def _users(self) -> dict[int, AnnotatorRef]:
        answer = self._request("GET", "/api/users/")
        rows = answer.get("results", []) if isinstance(answer, dict) else answer
        return {row["id"]: AnnotatorRef(str(row["id"]), row.get("email") or None) for row in rows}

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

    supports_more_labels = True

    def request_more_labels(self, pair_keys: Sequence[str], total: int) -> int:
        """Raise the task's own ``overlap`` (Label Studio counts a task as done at that many
        annotations; the project's ``maximum_annotations`` is only the default)."""
        project_id = int(self.ensure_project())
        keys = set(pair_keys)
        reopened = 0
        for task in self._live(project_id):
            if task.pair_key not in keys:
                continue
            current = self._request("GET", f"/api/tasks/{task.external_id}")
            if int(current.get("overlap") or 1) >= total:
                continue
            body: dict[str, Any] = {"overlap": total}
            if int(current.get("total_annotations") or 0) < total:  # not recomputed on its own: back to the stream
                body["is_labeled"] = False
            self._request("PATCH", f"/api/tasks/{task.external_id}", body=body)
            reopened += 1
        return reopened

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
        answer = self._request(
            "POST",
            "/api/dm/actions",
            params={"id": "delete_tasks", "project": project_id},
            body={"selectedItems": {"all": False, "included": ids}, "filters": unlabeled},
        )
        return int(answer.get("processed_items", 0))
