"""The one contract every annotation backend honours.

A backend is the bridge between prefloop and a place where people (or the
simulator) judge pairs: Label Studio, Argilla, the simulated annotators. It never
touches prefloop's database: ``sync`` hands it tasks and stores what it returns.

The guarantees below are what the conformance suite in ``tests/backends/`` checks
for every backend:

* ``ensure_project`` is idempotent: calling it twice leaves one project.
* ``push_tasks`` is idempotent by ``pair_key``: a pair that already has a live task
  is not pushed again, whatever prefloop's own records say (a crash between the
  server accepting a task and the store recording it must not duplicate it).
* ``pull_labels(since=cursor)`` returns every annotation created, edited or deleted
  after ``cursor`` and possibly a few before it (the window overlaps on purpose);
  the store drops re-pulled annotations on ``(source_id, version)``. Choices come
  back in the pair's canonical orientation: the backend undoes the A/B
  presentation order it chose at push time.
* Deletions are reported through ``PullResult.alive``; skips / cancelled /
  discarded annotations come back as ``Choice.SKIP``.
* Credentials are never printed or logged (``__repr__`` masks them); they arrive in
  ``BackendSettings``, the ``[backend]`` record of ``prefloop.config`` (``load_config`` reads
  the environment, nothing else does).
* Network failures follow one policy (``backends/retry.py``): connection errors, timeouts,
  429 (honouring ``Retry-After``) and 502/503/504 are retried ``retries`` times with
  doubling waits; anything else fails at once, a refused key as ``BackendAuthError``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefloop.config import BackendSettings
from prefloop.errors import BackendAuthError, BackendError, BackendUnreachable
from prefloop.redact import mask_url
from prefloop.types import ProjectPull, PullResult, PushedTask, TaskRequest

__all__ = [
    "AnnotationBackend",
    "BackendAuthError",
    "BackendError",
    "BackendSettings",
    "BackendUnreachable",
    "EventLabels",
    "Health",
    "MalformedEvent",
    "UnknownEvent",
    "presentation_swapped",
]


@dataclass
class Health:
    ok: bool
    detail: str
    version: str | None = None
    refused: bool = False  # the server answered but refused the API key (not an outage)
    answered: bool = False  # the server answered, with an error (a 500, a 404): not an outage either

    def raise_unless_ok(self, backend: str) -> None:
        """Raise what a failed check means: a refused key exits 2, a server that answered with an
        error 1 (its answer is in the message), a server that did not answer 3."""
        if self.ok:
            return
        if self.refused:
            raise BackendAuthError(self.detail)
        if self.answered:
            raise BackendError(f"{backend} answered its health check with an error: {self.detail}")
        raise BackendUnreachable(f"{backend} is not reachable: {self.detail}")


class UnknownEvent(BackendError):
    """A webhook delivery of an event prefloop does not use (answered 202 and counted)."""


class MalformedEvent(BackendError):
    """A webhook delivery whose body is not what the event promises (answered 400)."""


@dataclass
class EventLabels:
    """What one webhook delivery says, in a pull's terms.

    ``result`` holds the labels the event carries (canonical orientation, the versions a poll
    would give) and, for a delete event, the deleted annotations in ``result.deleted``.
    ``project`` is the project / dataset the event is about; an event of another one is not ours.
    """

    action: str
    project: str
    result: PullResult


def presentation_swapped(pair_key: str, seed: int = 0, randomize: bool = True) -> bool:
    """Whether the annotator sees response B first; a stable coin flip per pair.

    Stable so a re-push after a crash shows the same order; random across pairs so
    position bias averages out.
    """
    if not randomize:
        return False
    digest = hashlib.sha256(f"{seed}:{pair_key}".encode()).digest()
    return bool(digest[0] & 1)


class AnnotationBackend(ABC):
    """Abstract annotation backend. Subclasses set ``name`` and implement the methods."""

    name: str = "abstract"

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project={self.settings.project!r}, url={mask_url(self.settings.url)!r})"

    @abstractmethod
    def health(self) -> Health:
        """Cheap reachability check; never raises for an unreachable server."""

    @abstractmethod
    def ensure_project(self) -> str:
        """Create the project / dataset from the template if missing; return its id.

        Idempotent: a second call finds and returns the same project.
        """

    @abstractmethod
    def push_tasks(self, tasks: Sequence[TaskRequest]) -> list[PushedTask]:
        """Put pairs in front of annotators, in batches.

        Pairs that already have a live task at the backend are NOT pushed again;
        the returned list holds one entry per requested pair that is live after the
        call (new or pre-existing), so the caller can record what exists.
        """

    @abstractmethod
    def live_tasks(self) -> list[PushedTask]:
        """Every task of the project that has not been withdrawn."""

    @abstractmethod
    def pull_labels(self, since: str | None = None) -> PullResult:
        """Annotations created, edited or deleted after ``since`` (None: all).

        Returns the labels in canonical orientation and the cursor to pass next
        time. The window overlaps the previous one; duplicates are the caller's to
        drop on ``(source_id, version)``.
        """

    @abstractmethod
    def withdraw_tasks(self, pair_keys: Sequence[str]) -> int:
        """Remove tasks that are no longer wanted and have no annotation; return how many."""

    def pull_project(self, since: str | None = None) -> ProjectPull:
        """Read an existing project that prefloop did not create (``settings.project``), never creating it.

        Returns every item changed after ``since`` (None: all) with all its current annotations,
        in the tool's own export shape; the caller reads them as it reads the tool's export files.
        Optional: a backend without projects of its own does not implement it.
        """
        raise BackendError(f"{self.name} has no projects of its own to adopt; use `prefloop ingest` on a file")

    #: the events ``register_webhook`` subscribes to (empty: the backend sends no webhooks)
    webhook_events: tuple[str, ...] = ()

    def labels_from_event(self, payload: dict[str, Any], received_at: datetime) -> EventLabels:
        """Turn one webhook delivery into the records a pull would give (no network call needed
        beyond a cached user lookup). ``UnknownEvent`` for an event prefloop does not use,
        ``MalformedEvent`` for a body that does not fit its event."""
        raise UnknownEvent(f"{self.name} sends no webhooks")

    def register_webhook(self, url: str, headers: dict[str, str]) -> str | None:
        """Create or update, idempotently, the webhook that sends this project's label events to
        ``url``; return the signing secret the server made (None when it signs nothing)."""
        raise BackendError(f"{self.name} sends no webhooks: run prefloop sync on a schedule instead")

    #: whether ``request_more_labels`` works (adaptive redundancy needs a per-task label count)
    supports_more_labels: bool = False

    def request_more_labels(self, pair_keys: Sequence[str], total: int) -> int:
        """Reopen live tasks until each has ``total`` annotations from different people; return how many.

        Idempotent: asking twice for the same total changes nothing. Optional: a backend whose
        label count is fixed per project does not implement it (``supports_more_labels``).
        """
        raise BackendError(
            f"{self.name} sets one label count per project; it cannot ask for more labels "
            'on single tasks (set [annotators] redundancy = "fixed")'
        )


def undo_presentation(choice_shown: str, swapped: bool) -> str:
    """Map a choice made on the screen ('a' = left/first shown) back to the canonical pair."""
    if not swapped or choice_shown not in ("a", "b"):
        return choice_shown
    return "b" if choice_shown == "a" else "a"
