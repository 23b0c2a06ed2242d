"""SQLAlchemy 2 typed ORM models: the whole of prefloop's persistent state.

Every table that receives data from outside carries a natural-key uniqueness
constraint, so a re-ingested pair, a re-pulled annotation or a re-pushed task is
recognised instead of duplicated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "Annotator",
    "Base",
    "GoldAnswer",
    "Label",
    "LabelTombstone",
    "ModelVersion",
    "Pair",
    "Prediction",
    "Prompt",
    "Response",
    "SyncCursor",
    "Task",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # Every model here is mapped to a plain Table (no joins, no subqueries), which the
    # bulk helpers in store/ rely on; say so to the type checker (the base says FromClause).
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    # Conversational prompts keep their message list; ``text`` is its plain rendering.
    messages: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(200), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Pair(Base):
    """A prompt and two distinct responses in canonical order (response_a has the smaller hash)."""

    __tablename__ = "pairs"
    __table_args__ = (
        CheckConstraint("response_a_id <> response_b_id", name="distinct_responses"),
        UniqueConstraint("prompt_id", "response_a_id", "response_b_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    response_a_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    response_b_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    source: Mapped[str | None] = mapped_column(String(500), default=None)
    # Held-out pairs are never sent to annotators nor trained on: evaluation only.
    split: Mapped[str] = mapped_column(String(20), default="pool")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prompt: Mapped[Prompt] = relationship(lazy="joined")
    response_a: Mapped[Response] = relationship(foreign_keys=[response_a_id], lazy="joined")
    response_b: Mapped[Response] = relationship(foreign_keys=[response_b_id], lazy="joined")


class Annotator(Base):
    __tablename__ = "annotators"
    __table_args__ = (UniqueConstraint("backend", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Label(Base):
    """One version of one annotation.

    An edit at the source adds a new row and marks the previous one superseded
    (``is_current`` False, ``superseded_by_id`` set); a deletion sets
    ``deleted_at`` on the current row. Nothing is erased.
    """

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("backend", "project", "source_id", "version"),
        CheckConstraint("choice IN ('a', 'b', 'tie', 'skip')", name="choice"),
        Index("ix_labels_current", "pair_id", "is_current"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"), index=True)
    choice: Mapped[str] = mapped_column(String(8))
    strength: Mapped[float | None] = mapped_column(Float, default=None)
    dimension: Mapped[str] = mapped_column(String(50), default="overall")
    rationale: Mapped[str | None] = mapped_column(Text, default=None)
    backend: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    source_created_at: Mapped[datetime | None] = mapped_column(default=None)
    source_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    pulled_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Given on a gold task (a known-answer check): scores the annotator, never trains the model.
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    annotator: Mapped[Annotator] = relationship(lazy="joined")

    @classmethod
    def live(cls) -> ColumnElement[bool]:
        """SQL condition: the current version of an annotation that was not deleted at the source."""
        return and_(cls.is_current.is_(True), cls.deleted_at.is_(None))


class LabelTombstone(Base):
    """An annotation deleted at the source, as a delete event said (``prefloop serve``).

    Events can arrive out of order: a delete may come before the create or update it follows.
    The tombstone makes a label of that source arriving later be dropped, so the store ends as a
    poll after the deletion would leave it. ``source_id`` is the annotation's own id (a
    dimension's label ``<id>:<dimension>`` goes with it).
    """

    __tablename__ = "label_tombstones"
    __table_args__ = (UniqueConstraint("backend", "project", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    base_model: Mapped[str] = mapped_column(String(500))
    mode: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    # Which labels it was trained on: {"max_label_id": .., "n_labels": .., "label_ids_sha": ..}
    label_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[ModelVersion | None] = relationship(remote_side=[id])


class Task(Base):
    """A pair put in front of annotators at one backend project (at most one per pair)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("backend", "project", "pair_id"),
        CheckConstraint("status IN ('pending', 'labeled', 'withdrawn')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    backend: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    swapped: Mapped[bool] = mapped_column(Boolean, default=False)
    # A known-answer check mixed into the queue; the backend is not told (annotators cannot tell).
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Adaptive redundancy asked for this many labels (None: the project's annotators_per_pair).
    labels_wanted: Mapped[int | None] = mapped_column(Integer, default=None)
    strategy: Mapped[str | None] = mapped_column(String(200), default=None)
    strategy_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GoldAnswer(Base):
    """The known answer of a pair used as a gold check (canonical orientation)."""

    __tablename__ = "gold_answers"
    __table_args__ = (CheckConstraint("answer IN ('a', 'b', 'tie')", name="answer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), unique=True)
    answer: Mapped[str] = mapped_column(String(8))
    # Where the answer comes from: a gold file's name, or "unanimous" (reliable annotators agreed).
    source: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """A model's P(a≻b) on a pair for one dimension (a multi-objective model stores one per head,
    plus ``combined`` when ``[objectives]`` combines them; single-objective models: their dimension)."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("model_version_id", "pair_id", "dimension"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    dimension: Mapped[str] = mapped_column(String(50), default="overall", server_default="overall")
    p_a: Mapped[float] = mapped_column(Float)
    p_tie: Mapped[float] = mapped_column(Float, default=0.0)
    spread: Mapped[float] = mapped_column(Float, default=0.0)
    members: Mapped[list[float]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursor(Base):
    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("backend", "project"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(200))
    cursor: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
