"""Errors that reach users: each says what was wrong, where, and what to do next."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError", "DegenerateRow", "IngestError", "PrefloopError", "RowProblem", "SourceError"]


class PrefloopError(Exception):
    """Base class of errors meant for the person running prefloop."""


class ConfigError(PrefloopError):
    """The configuration (prefloop.toml, flags, environment) is invalid or incomplete."""


class RowProblem(PrefloopError):
    """One bad input row: the file, the 1-based line (or row), the field and what is wrong."""

    def __init__(self, source: str, line: int | None, field: str | None, message: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.field is not None:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "field": self.field, "message": self.message}


class DegenerateRow(RowProblem):
    """A well-formed row that cannot be a comparison (identical responses, an empty text).

    Public datasets ship a few of these; ingest and ``read_records`` skip and count them
    unless told to be strict, because one such row must not cost the whole file.
    """


def _grouped(problems: Sequence[RowProblem], limit: int = 20) -> list[str]:
    """One line per distinct (field, message); repeated problems name their first lines and a count."""
    groups: dict[tuple[str | None, str], list[RowProblem]] = {}
    for problem in problems:
        groups.setdefault((problem.field, problem.message), []).append(problem)
    lines = []
    for same in list(groups.values())[:limit]:
        first = same[0]
        if len(same) == 1:
            lines.append(f"  {first}")
            continue
        where = ", ".join(str(p.line) for p in same[:5] if p.line is not None)
        more = " ..." if len(same) > 5 else ""
        field = f", field {first.field!r}" if first.field is not None else ""
        lines.append(f"  {first.source}{field}: {first.message} ({len(same)} rows: lines {where}{more})")
    return lines


class IngestError(PrefloopError):
    """Input had bad rows and nothing was written (all-or-nothing)."""

    def __init__(self, problems: Sequence[RowProblem], total: int) -> None:
        self.problems = list(problems)
        self.total = total
        shown = "\n".join(_grouped(self.problems))
        listed = len(self.problems)
        more = f"\n  ... and {total - listed} more" if total > listed else ""
        super().__init__(
            f"{total} invalid row(s); nothing was written:\n{shown}{more}\n"
            "Fix the rows, map columns with --map, or pass --skip-invalid to keep the valid rows "
            "and write the rejected ones to a file."
        )


class SourceError(IngestError):
    """The source as a whole cannot be read (missing, empty, not the format it claims); nothing was written.

    A subclass of ``IngestError`` so callers that catch that keep working, but its message
    speaks of the file, never of an "invalid row" count.
    """

    def __init__(self, source: str, message: str, hint: str = "", line: int | None = None) -> None:
        problem = RowProblem(source, line, None, message)
        self.problems = [problem]
        self.total = 0
        self.hint = hint
        PrefloopError.__init__(self, f"{problem}; nothing was written." + (f"\n{hint}" if hint else ""))
