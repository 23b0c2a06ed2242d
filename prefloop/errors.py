"""Errors that reach users: each says what was wrong, where, and what to do next."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError", "IngestError", "PrefloopError", "RowProblem"]


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


class IngestError(PrefloopError):
    """Input had bad rows and nothing was written (all-or-nothing)."""

    def __init__(self, problems: Sequence[RowProblem], total: int) -> None:
        self.problems = list(problems)
        self.total = total
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  ... and {total - 20} more" if total > 20 else ""
        super().__init__(
            f"{total} invalid row(s); nothing was written:\n{shown}{more}\n"
            "Fix the rows, map columns with --map, or pass --skip-invalid to keep the valid rows "
            "and write the rejected ones to a file."
        )
