"""The store on both backends: migrations match the models, instants and money round-trip."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from store.db import make_engine, make_sessions, migrate
from store.models import Base, Event


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_are_idempotent_and_match_the_models(engine: Engine) -> None:
    assert migrate(engine) == migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                               timezone(timedelta(hours=13, minutes=45))])),
)
def test_instants_round_trip_in_utc_whole_seconds(engine: Engine, at: datetime) -> None:
    sessions = make_sessions(engine)
    with sessions.begin() as session:
        event = Event(at=at, recorded_at=at, actor_role="system", kind="probe")
        session.add(event)
        session.flush()
        event_id = event.id
    with sessions() as session:
        stored = session.execute(select(Event.at).where(Event.id == event_id)).scalar_one()
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == at.replace(microsecond=0)


def test_money_is_exact(engine: Engine) -> None:
    from store.models import Payment  # noqa: F401  (imported for the mapper)

    sessions = make_sessions(engine)
    with sessions.begin() as session:
        session.add(Event(at=datetime(2026, 1, 1, tzinfo=UTC),
                          recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
                          actor_role="system", kind="probe", note=str(Decimal("0.10") * 3)))
    value = Decimal("0.10") + Decimal("0.20")
    from store.types import Money

    money = Money()
    stored = money.process_bind_param(value, engine.dialect)
    assert stored == 30
    assert money.process_result_value(stored, engine.dialect) == Decimal("0.30")
