"""``[dashboard]``: ``prefloop dashboard``, the read-only page of the loop. Its token: environment only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prefloop.config.fields import Section, setting

__all__ = ["DashboardSettings"]


@dataclass
class DashboardSettings(Section):
    """``[dashboard]``: where the page listens, who may read it, how often it reloads."""

    SECTION: ClassVar[str] = "dashboard"

    host: str = setting(
        "127.0.0.1",
        "Address to listen on (127.0.0.1: this machine only; any other address needs a token)",
        flag="--host",
    )
    port: int = setting(8766, "TCP port to listen on (0: any free port)", ge=0, le=65535, flag="--port")
    refresh_s: int = setting(30, "The page reloads itself this often (seconds; 0: never)", ge=0)
    token: str | None = setting(
        None,
        "A token a reader must give (Authorization: Bearer, or ?token= once, then a cookie); needed to listen "
        "on anything but 127.0.0.1. Environment only (PREFLOOP_DASHBOARD_TOKEN), never in the file",
        secret=True,
        env_only=True,
    )

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"DashboardSettings(host={self.host!r}, port={self.port!r}, refresh_s={self.refresh_s!r})"
