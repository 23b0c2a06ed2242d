"""Small typed records shared by every room of prefloop.

Nothing here imports the store, torch or a backend SDK: these records are the
language the rooms speak to each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AnnotatorRef",
    "CanonicalPair",
    "Choice",
    "PairRecord",
    "ProjectPull",
    "PullResult",
    "PulledLabel",
    "PushedTask",
    "TaskRequest",
    "content_hash",
    "pair_key",
]


class Choice(StrEnum):
    """An annotator's verdict, always stated against the pair's canonical orientation."""

    A = "a"
    B = "b"
    TIE = "tie"
    SKIP = "skip"

    def flipped(self) -> Choice:
        """The same verdict seen from the other orientation (A <-> B)."""
        if self is Choice.A:
            return Choice.B
        if self is Choice.B:
            return Choice.A
        return self


def content_hash(text: str) -> str:
    """SHA-256 hex digest of a text; identical texts are stored once."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pair_key(prompt_hash: str, hash_a: str, hash_b: str) -> str:
    """Order-free identity of a pair: the same two responses to one prompt are ONE pair.

    The two response hashes are sorted so (a, b) and (b, a) give the same key.
    """
    lo, hi = sorted((hash_a, hash_b))
    return hashlib.sha256(f"{prompt_hash}|{lo}|{hi}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CanonicalPair:
    """A pair in the store's orientation: response_a is the one with the smaller content hash."""

    key: str
    prompt_hash: str
    hash_a: str
    hash_b: str
    response_a: str
    response_b: str
    label: Choice | None
    flipped: bool  # True when the record gave the responses in the other order


@dataclass(frozen=True)
class PairRecord:
    """One pair as read from a file, before it reaches the store.

    ``label`` is stated against (response_a, response_b) as given here; the store
    flips it when its canonical orientation differs.
    """

    prompt: str
    response_a: str
    response_b: str
    label: Choice | None = None
    strength: float | None = None
    dimension: str | None = None
    annotator: str | None = None
    rationale: str | None = None
    model_a: str | None = None
    model_b: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source_line: int | None = None

    def canonical(self) -> CanonicalPair:
        """This pair in canonical orientation, its label flipped to match when needed."""
        ph, ha, hb = content_hash(self.prompt), content_hash(self.response_a), content_hash(self.response_b)
        flipped = hb < ha
        if flipped:
            return CanonicalPair(
                pair_key(ph, ha, hb),
                ph,
                hb,
                ha,
                self.response_b,
                self.response_a,
                self.label.flipped() if self.label is not None else None,
                True,
            )
        return CanonicalPair(pair_key(ph, ha, hb), ph, ha, hb, self.response_a, self.response_b, self.label, False)


@dataclass(frozen=True)
class AnnotatorRef:
    """Who gave a label, as the backend knows them."""

    external_id: str
    name: str | None = None


@dataclass(frozen=True)
class TaskRequest:
    """A pair to put in front of annotators, with the reason it was chosen."""

    pair_key: str
    prompt: str
    response_a: str
    response_b: str
    strategy: str | None = None
    score: float | None = None
    model_version: str | None = None
    # Optional pre-annotation (the model's guess). Backends show it only when configured to.
    p_a: float | None = None


@dataclass(frozen=True)
class PushedTask:
    """A task that lives at a backend.

    ``swapped`` is True when the annotator sees response_b on the left / first.
    """

    pair_key: str
    external_id: str
    swapped: bool
    project: str


@dataclass(frozen=True)
class PulledLabel:
    """One annotation as pulled from a backend, already translated to canonical orientation.

    ``source_id`` names the annotation at the source (one per annotator, task and
    dimension); ``version`` changes whenever the annotation is edited, so a re-pull
    of an unchanged annotation is recognised and dropped.
    """

    pair_key: str
    annotator: AnnotatorRef
    choice: Choice
    source_id: str
    version: str
    strength: float | None = None
    rationale: str | None = None
    dimension: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class PullResult:
    """What one ``pull_labels`` call found.

    ``alive`` maps every pair the pull examined to the source ids that still exist
    there: a stored label of that pair from the same backend and project whose
    source id is missing has been deleted at the source. An event (``prefloop serve``)
    names deletions directly in ``deleted``.
    """

    labels: list[PulledLabel]
    cursor: str | None
    alive: dict[str, frozenset[str]] = field(default_factory=dict)
    #: annotations known to be deleted at the source (a webhook's delete event): source id → when.
    #: Unlike ``alive`` this needs no pair; a label of that source arriving later is dropped.
    deleted: dict[str, datetime] = field(default_factory=dict)


@dataclass
class ProjectPull:
    """A project prefloop did not create, read as its tool holds it (``AnnotationBackend.pull_project``).

    ``items`` are in the tool's own export shape, so the export readers read them: Label Studio
    tasks as in a JSON export, Argilla records in the nested (``to_disk``) layout with each
    response's ``status`` and ``updated_at``. ``settings`` is what says how to read them (the
    Label Studio label config and users; the Argilla dataset's fields and questions as in
    ``.argilla/settings.json``). Every item carries ALL its current annotations, so one whose
    annotation is gone shows the deletion. ``cursor`` is what to pass next time.
    """

    items: list[dict[str, Any]]
    settings: dict[str, Any]
    cursor: str | None
