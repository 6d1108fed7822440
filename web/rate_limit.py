"""The REST API's per-key rate limit: a token bucket a key, in this process's memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """`requests` per `per_seconds` for each key, refilled continuously (a token bucket)."""

    requests: int = 600
    per_seconds: float = 60.0
    now: Callable[[], float] = time.monotonic


class TokenBuckets:
    """One bucket per API key, in this process's memory."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._state: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """0 when the request may go ahead; otherwise the seconds until one token is back."""
        capacity = float(self.limit.requests)
        rate = capacity / self.limit.per_seconds
        with self._lock:
            now = self.limit.now()
            tokens, last = self._state.get(key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1:
                self._state[key_id] = (tokens - 1, now)
                return 0.0
            self._state[key_id] = (tokens, now)
            return (1 - tokens) / rate
