"""Migration 0007 (tickets.title, messages.verified) on rows written before it, both ways."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
)

from store.db import alembic_config, make_engine

# parents first: each row names the row of the table before it with id 1
_TABLES = ("vendors", "products", "orders", "tickets", "messages")


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def _filler(column_type: object) -> object:
    """A value of a column's type for a column that must have one."""
    if isinstance(column_type, Boolean):
        return False
    if isinstance(column_type, DateTime):
        return datetime(2026, 11, 19, 9, 0)
    if isinstance(column_type, (Integer, Numeric)):
        return 1
    if isinstance(column_type, (String, Text)):
        return "x"
    raise AssertionError(f"no filler for {column_type!r}")


def _seed_old_rows(engine: Engine) -> None:
    """One row in each table as the schema before 0007 has it, every required column filled."""
    metadata = MetaData()
    with engine.begin() as conn:
        for name in _TABLES:
            table = Table(name, metadata, autoload_with=conn)
            values = {c.name: _filler(c.type) for c in table.columns
                      if not c.nullable and c.name != "id"}
            values["id"] = 1
            if name == "messages":
                values["text"] = "written before 0007"
            conn.execute(insert(table).values(values))


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_0007_adds_empty_columns_to_old_rows_and_removes_them_again(engine: Engine) -> None:
    config = alembic_config(engine)
    command.upgrade(config, "0006")
    _seed_old_rows(engine)
    command.upgrade(config, "0007")
    assert {"title"} <= _columns(engine, "tickets") and {"verified"} <= _columns(engine,
                                                                                 "messages")
    metadata = MetaData()
    tickets = Table("tickets", metadata, autoload_with=engine)
    messages = Table("messages", metadata, autoload_with=engine)
    with engine.begin() as conn:
        assert conn.execute(select(tickets.c.title)).scalar_one() is None
        assert conn.execute(select(messages.c.verified, messages.c.text)).one() == (
            None, "written before 0007")
        conn.execute(tickets.update().values(title="Download link broken"))
    command.downgrade(config, "0006")
    assert "title" not in _columns(engine, "tickets")
    assert "verified" not in _columns(engine, "messages")
    with engine.connect() as conn:  # the rows themselves are kept
        old = Table("messages", MetaData(), autoload_with=conn)
        assert conn.execute(select(old.c.text)).scalar_one() == "written before 0007"
