"""Errors that reach users: each says what was wrong, where, and what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

__all__ = [
    "AllRowsRejected",
    "BackendAuthError",
    "BackendError",
    "BackendStalled",
    "BackendUnreachable",
    "ConfigError",
    "DegenerateRow",
    "ExitCode",
    "IngestError",
    "Interrupted",
    "InvalidRequest",
    "LockHeld",
    "ModelError",
    "NoLabelRead",
    "NotAStore",
    "PrefloopError",
    "RowProblem",
    "SourceError",
    "StoreError",
    "StoreMissing",
    "StoreUnreachable",
    "StrategyError",
    "exit_code_for",
    "underlying_error",
]


class ExitCode(IntEnum):
    """Exit codes of every command (``prefloop sync``'s are documented in the README)."""

    OK = 0
    ERROR = 1
    CONFIG_ERROR = 2
    BACKEND_UNREACHABLE = 3
    LOCK_HELD = 4
    NOTHING_TO_DO = 5
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


class PrefloopError(Exception):
    """Base class of errors meant for the person running prefloop; ``exit_code`` is what the CLI exits with."""

    exit_code: ExitCode = ExitCode.ERROR


class ConfigError(PrefloopError):
    """The configuration (prefloop.toml, flags, environment) is invalid or incomplete."""

    exit_code = ExitCode.CONFIG_ERROR


class InvalidRequest(PrefloopError):
    """A command was asked for something that cannot be done as asked (a wrong name, a folder in the way)."""

    exit_code = ExitCode.CONFIG_ERROR


class StrategyError(ConfigError, ValueError):
    """An acquisition strategy name or parameter that does not exist (a ``ValueError`` for older callers)."""


class ModelError(PrefloopError, ValueError):
    """A reward-model request the model cannot honour (a ``ValueError`` for older callers)."""


class StoreError(PrefloopError):
    """The store cannot be used as asked."""

    exit_code = ExitCode.CONFIG_ERROR


class StoreMissing(StoreError):
    """No store at the configured place; only ``init`` and ``ingest`` create one."""


class NotAStore(StoreError):
    """The database exists but is not a prefloop store: prefloop never writes into it."""


class StoreUnreachable(StoreError):
    """The database server did not answer."""

    exit_code = ExitCode.BACKEND_UNREACHABLE


class LockHeld(PrefloopError):
    """Another sync holds the lock on this store."""

    exit_code = ExitCode.LOCK_HELD


class BackendError(PrefloopError, RuntimeError):
    """A backend answered, but not the way the contract needs."""


class BackendUnreachable(BackendError):
    """The backend could not be reached after the configured retries."""

    exit_code = ExitCode.BACKEND_UNREACHABLE


class BackendStalled(BackendUnreachable):
    """A backend call did not end: a page that repeats, more pages than announced, or past its deadline.

    Exit 3 like an unreachable server: the server is not serving what it should, and the next
    run tries again."""


class BackendAuthError(BackendError):
    """The backend refused the API key (HTTP 401/403): a configuration problem, never retried."""

    exit_code = ExitCode.CONFIG_ERROR


class Interrupted(PrefloopError):
    """The run was stopped by SIGINT (ctrl-C) or SIGTERM; everything committed so far is consistent."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        self.exit_code = ExitCode.TERMINATED if signal_name == "SIGTERM" else ExitCode.INTERRUPTED
        super().__init__(f"stopped by {signal_name}; committed work is kept, rerun to continue")


def underlying_error(exc: BaseException) -> BaseException:
    """The error a user should hear about: ``exc`` itself, or a PrefloopError / KeyboardInterrupt that a
    library wrapped. A SIGTERM handler raises ``Interrupted`` wherever the process is; inside a
    SQLAlchemy call it comes back as a ``StatementError`` whose ``orig`` is the ``Interrupted``, and
    it must still exit 143, not 1 "unexpected"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PrefloopError | KeyboardInterrupt):
            return current
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return exc


def exit_code_for(exc: BaseException) -> int:
    """The one map from an exception to the process exit code."""
    exc = underlying_error(exc)
    if isinstance(exc, PrefloopError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.ERROR)


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
    """Input had bad rows and nothing was written (all-or-nothing). Exit 2: like a bad setting,
    the input the user gave is wrong, and the message says how to fix it."""

    exit_code = ExitCode.CONFIG_ERROR

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


class NoLabelRead(SourceError):
    """A source whose rows carry annotations, responses or a label-like column gave no label (#26).

    Exit 2, as a setting that is wrong: the file is fine, how to read it must be said
    (``--map`` / ``--label-map``). Never a silent exit 0 with zero labels.
    """

    exit_code = ExitCode.CONFIG_ERROR


class AllRowsRejected(IngestError):
    """``--skip-invalid`` rejected every row: nothing was written, and that is not "nothing new"."""

    def __init__(self, problems: Sequence[RowProblem], total: int, rejects: str | None) -> None:
        self.problems = list(problems)
        self.total = total
        shown = "\n".join(_grouped(self.problems, limit=5))
        where = f"; every row with its reason is in {rejects}" if rejects else ""
        PrefloopError.__init__(
            self,
            f"all {total} row(s) were rejected, nothing was written{where}:\n{shown}\n"
            "Fix the rows, map columns with --map, or name the format with --format.",
        )
