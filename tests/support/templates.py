"""Migrated empty databases to copy from.

Migrating a new database is most of a store test's setup (about 0.2 s on SQLite and 0.5 s on
PostgreSQL, with ~1,700 tests); copying a database migrated once per test process costs a
file copy on SQLite and a `CREATE DATABASE ... TEMPLATE` (about 0.1 s) on PostgreSQL. The
copies are the schema at the newest revision and nothing else: no key fingerprint, no rows.
Tests about migrating itself, or about a new database, take `backend_url` (empty) instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.db import make_engine, migrate
from tests.support.services import postgres_url, require_service


def _migrated(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()  # a template may have nobody connected when it is copied


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a migrated database in the shared server, dropped when the session ends."""
    require_service("postgres")
    with postgres_url("ticketgw_tpl_") as url:
        _migrated(url)
        yield url.rpartition("/")[2]


def copy_sqlite(template: Path, dest: Path) -> str:
    shutil.copyfile(template, dest)
    dest.chmod(0o600)
    return f"sqlite:///{dest}"
