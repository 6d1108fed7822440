"""/healthz and the SMTP listeners' intake: what each heartbeat row says, on SQLite and
PostgreSQL (a listener writes its row: tests/inbound/test_intake_faults.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.services import intake_health
from gateway.services.intake_health import Beat
from gateway.services.runtime import Runtime
from web.app import create_app


def _beat(runtime: Runtime, listener: str = "mx1:25/100", *, alive: int = 2, restarts: int = 0,
          at: datetime | None = None) -> None:
    now = at or runtime.clock.now()
    beat = Beat(listener, listener.split("/")[0], now, 2, alive, restarts,
                now if restarts else None, "SystemExit: killed" if restarts else "")
    with runtime.sessions.begin() as session:
        intake_health.record(session, beat, now)


def _health(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    with TestClient(create_app(runtime)) as client:
        response = client.get("/healthz")
    return response.status_code, response.json()


def test_without_listeners_healthz_is_as_before(runtime: Runtime) -> None:
    assert _health(runtime) == (200, {"database": "ok", "broker": "ok"})


def test_healthz_says_how_each_listeners_intake_is(runtime: Runtime) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    _beat(runtime)
    _beat(runtime, "mx2:25/200")
    status, body = _health(runtime)
    assert (status, body["intake"]) == (200, "ok")
    assert [entry["listener"] for entry in body["listeners"]] == ["mx1:25/100", "mx2:25/200"]

    _beat(runtime, restarts=1)  # a thread died and another took its place
    status, body = _health(runtime)
    assert (status, body["intake"]) == (200, "restarted")
    assert body["listeners"][0] | {"beat_at": None} == {
        "listener": "mx1:25/100", "state": "restarted", "threads": 2, "alive": 2,
        "restarts": 1, "restarted_at": "2026-11-19T09:00:00Z",
        "last_error": "SystemExit: killed", "beat_at": None}

    _beat(runtime, alive=1, restarts=1)  # one thread is gone and none took its place
    assert _health(runtime)[0] == 503 and _health(runtime)[1]["intake"] == "dead"

    _beat(runtime, restarts=1)
    clock.advance(seconds=61)
    _beat(runtime, "mx2:25/200")  # mx1 has not written for 61 s
    status, body = _health(runtime)
    assert (status, body["intake"]) == (503, "silent")
    assert [entry["state"] for entry in body["listeners"]] == ["silent", "ok"]


def test_a_listener_that_starts_again_forgets_its_silent_predecessors(runtime: Runtime) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    _beat(runtime, "mx1:25/100")  # killed: it writes no more
    _beat(runtime, "mx1:2525/300")  # another port of the same machine
    clock.advance(seconds=61)
    _beat(runtime, "mx1:25/101")  # its sibling on the same port, alive
    with runtime.sessions.begin() as session:
        intake_health.forget_predecessors(session, "mx1:25", clock.now())
    with runtime.sessions() as session:
        found = intake_health.report(session, clock.now())
    assert found is not None
    assert [(e["listener"], e["state"]) for e in found["listeners"]] == [
        ("mx1:25/101", "ok"), ("mx1:2525/300", "silent")]
    with runtime.sessions.begin() as session:
        intake_health.forget(session, "mx1:2525/300")
    assert _health(runtime)[1]["intake"] == "ok"


def test_intake_health_is_not_read_when_the_database_is_down(runtime: Runtime) -> None:
    _beat(runtime, alive=0)
    broken = dataclasses.replace(
        runtime, engine=create_engine("sqlite:////nonexistent-dir/ticketgw/none.db"))
    assert _health(broken) == (503, {"database": "unavailable", "broker": "ok"})
