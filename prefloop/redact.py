"""The one place secrets are masked: in URLs, DSNs, headers, and wherever a known secret appears.

``redact(text)`` masks the password of any ``scheme://user:password@host`` (a backend URL, a
database DSN), the value of an ``Authorization`` / API-key header or ``api_key=`` pair, and
every value registered with ``register_secret`` (the configured API keys: a server may echo
one back in an error). ``mask_url`` is the same for one URL, for messages that name a server.

The CLI routes stdout and stderr through ``redacting_streams`` for the whole command, so every
printed or logged line passes here — Rich's console, click, warnings, a ``--debug`` traceback.
Nothing here imports the rest of prefloop (it sits beside ``errors`` on the ground floor).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["MASK", "mask_url", "redact", "redacting_streams", "register_secret"]

MASK = "***"
#: secrets shorter than this are not masked by value (a 2-character "key" would mask half the output)
_MIN_SECRET = 6

_secrets: set[str] = set()

_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*):(?P<password>[^\s@/'\"]+)@")
_HEADER = re.compile(
    r"(?P<head>\b(?:authorization|proxy-authorization|x-argilla-api-key|x-api-key|api[_-]?key|access[_-]?token"
    r"|refresh[_-]?token|password)['\"]?\s*[:=]\s*['\"]?(?:(?:token|bearer|basic)\s+)?)"
    r"(?!(?:None|null)\b)(?P<value>[^\s'\",}]+)",
    re.IGNORECASE,
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (an API key, a database password)."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every password in a URL, header value and registered secret replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@" if m["password"] != MASK else m[0], text)
    return _HEADER.sub(lambda m: f"{m['head']}{MASK}" if m["value"] != MASK else m[0], text)


def mask_url(url: str | None) -> str:
    """A URL fit to print: its password (``http://admin:***@host``) masked; None as ``''``."""
    return redact(url or "")


class _RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in what it writes, line by line, then passes it on."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self.inner.write(redact(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:  # a partial line (a prompt, a progress bar) goes out as it is, masked
            self.inner.write(redact(self._pending))
            self._pending = ""
        self.inner.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # errors, name, mode: whatever the inner stream says
        return getattr(self.inner, name)


@contextmanager
def redacting_streams() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through ``redact`` until the block ends."""
    before = sys.stdout, sys.stderr
    wrapped = [_RedactingStream(stream) for stream in before]
    sys.stdout, sys.stderr = wrapped
    try:
        yield
    finally:
        for stream in wrapped:
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be written
                stream.flush()
        sys.stdout, sys.stderr = before
