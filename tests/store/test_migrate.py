"""Migrations as machines meet them: several roles starting at once, an older binary."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from gateway.domain.errors import ConfigError
from store.db import make_engine, migrate

MIGRATE = ("import sys, time; from store.db import make_engine, migrate; "
           "engine = make_engine(sys.argv[1]); time.sleep(max(0, float(sys.argv[2]) - "
           "time.time())); print(migrate(engine))")


def test_roles_starting_at_once_on_a_new_database_all_start(backend_url: str) -> None:
    """Alembic keeps its state in module globals, so the starters are processes, as the
    roles of a machine are; they wait for one shared instant before migrating."""
    at = time.time() + 8  # after every interpreter has imported the program
    starters = [subprocess.Popen([sys.executable, "-c", MIGRATE, backend_url, str(at)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(5)]
    results = [p.communicate(timeout=120) for p in starters]
    assert [p.returncode for p in starters] == [0] * 5, [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1


def test_an_older_ticketgw_leaves_a_newer_schema_alone(backend_url: str) -> None:
    engine = make_engine(backend_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(ConfigError) as refused:
            migrate(engine)
        assert "newer ticketgw" in refused.value.message and "9999" in refused.value.message
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                "9999")
    finally:
        engine.dispose()
