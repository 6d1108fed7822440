"""The clock protocol: every rule about time is handed an instant, never reads one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


class FrozenClock:
    """A clock for tests and for `--at`: stands still until told to move."""

    def __init__(self, at: datetime) -> None:
        self._at = to_utc(at)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._at = self._at + (delta if delta is not None else timedelta(**kwargs))
        return self._at

    def set(self, at: datetime) -> None:
        self._at = to_utc(at)


def to_utc(at: datetime) -> datetime:
    """An aware UTC instant with whole seconds; naive input is taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=0)


def parse_instant(text: str) -> datetime:
    """Parse ISO-8601 (a trailing `Z` allowed); raise ValueError with a readable message."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 time; write it like 2026-11-20T10:00:00Z"
        ) from None
    return to_utc(value)


def format_instant(at: datetime | None) -> str | None:
    """The contract's JSON time: `YYYY-MM-DDTHH:MM:SSZ`, UTC, whole seconds."""
    if at is None:
        return None
    return to_utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")
