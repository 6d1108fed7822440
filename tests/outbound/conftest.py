"""Fixtures for outbound tests: a runtime whose relay is the real SMTP sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.services.runtime import Runtime
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink


@pytest.fixture
def make_relay_runtime(migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
                       ) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on the parametrised backend, relaying to `smtp_sink`; extra settings as kwargs."""
    made: list[Runtime] = []

    def make(**env: str) -> Runtime:
        env.setdefault("smtp_relay", smtp_sink.address)
        runtime = make_runtime(migrated_url, tmp_path, **env)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def relay_runtime(make_relay_runtime: Callable[..., Runtime]) -> Runtime:
    return make_relay_runtime()
