"""Migration 0009 (messages.forwarded_by, attachments.content_id) on old rows, both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, Table, inspect, select

from store.db import alembic_config, make_engine
from tests.store.test_migration_0007 import _filler

_TABLES = ("vendors", "products", "orders", "tickets", "messages", "attachments")


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def _seed_old_rows(engine: Engine) -> None:
    metadata = MetaData()
    with engine.begin() as conn:
        for name in _TABLES:
            table = Table(name, metadata, autoload_with=conn)
            values = {c.name: _filler(c.type) for c in table.columns
                      if not c.nullable and c.name != "id" and c.name != "data"}
            values["id"] = 1
            conn.execute(table.insert().values(values))


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_0009_adds_empty_columns_to_old_rows_and_removes_them_again(engine: Engine) -> None:
    config = alembic_config(engine)
    command.upgrade(config, "0008")
    _seed_old_rows(engine)
    command.upgrade(config, "0009")
    assert "forwarded_by" in _columns(engine, "messages")
    assert "content_id" in _columns(engine, "attachments")
    metadata = MetaData()
    messages = Table("messages", metadata, autoload_with=engine)
    attachments = Table("attachments", metadata, autoload_with=engine)
    with engine.begin() as conn:
        assert conn.execute(select(messages.c.forwarded_by)).scalar_one() is None
        assert conn.execute(select(attachments.c.content_id)).scalar_one() is None
        conn.execute(attachments.update().values(content_id="logo@mail"))
    command.downgrade(config, "0008")
    assert "forwarded_by" not in _columns(engine, "messages")
    assert "content_id" not in _columns(engine, "attachments")
    with engine.connect() as conn:  # the rows themselves are kept
        old = Table("attachments", MetaData(), autoload_with=conn)
        assert conn.execute(select(old.c.id)).scalar_one() == 1
