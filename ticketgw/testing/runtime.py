"""A wired runtime on a given database, with a frozen clock at a known Thursday."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.domain.clock import FrozenClock
from gateway.domain.settings import parse_settings
from gateway.services.runtime import Runtime
from ticketgw.app import build_runtime

START = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # a Thursday


def make_runtime(url: str, tmp_path: Path, **env: str) -> Runtime:
    environ = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
               "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox")}
    environ.update({f"TICKETGW_{k.upper()}": v for k, v in env.items()})
    settings = parse_settings({}, environ)
    return build_runtime(settings, clock=FrozenClock(START))
