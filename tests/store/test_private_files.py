"""The database keeps its secrets: owner-only SQLite files, and errors without parameters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.exc import IntegrityError

from gateway.domain.facts import Role
from gateway.domain.tokens import Tokens
from store.db import make_engine, migrate, writer_turn
from store.files import private_dir, write_private
from tests.support.files import mode, usual_umask


@pytest.fixture
def umask_022() -> Iterator[None]:
    with usual_umask():
        yield


@pytest.mark.usefixtures("umask_022")
def test_sqlite_database_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "db" / "ticketgw.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        migrate(engine)
        with writer_turn(engine), engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE touched (id INTEGER)")
        files = {p.name: mode(p) for p in database.parent.iterdir()}
    finally:
        engine.dispose()
    assert {"ticketgw.db", "ticketgw.db-wal", "ticketgw.db-shm",
            "ticketgw.db-writer.lock"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)
    assert (mode(tmp_path / "var"), mode(database.parent)) == (0o700, 0o700)


@pytest.mark.usefixtures("umask_022")
def test_existing_folders_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(0o755)
    private_dir(shared / "a" / "b")
    write_private(shared / "a" / ".f.tmp", shared / "a" / "f", b"x")
    assert [mode(p) for p in (shared, shared / "a", shared / "a" / "b", shared / "a" / "f")] == [
        0o755, 0o700, 0o700, 0o600]


def test_a_failed_write_does_not_quote_its_parameters(backend_url: str) -> None:
    """The statement's parameters carry a reply address; the error text must not (it is
    logged, and kept on a failed mail's row that `mail why` prints). A foreign key names
    only the key in PostgreSQL's own message, so whatever else appears came from us."""
    token = Tokens("test-secret").reply_token(1042, Role.CUSTOMER)
    engine = make_engine(backend_url)
    meta = MetaData()
    parent = Table("leak_parent", meta, Column("id", Integer, primary_key=True))
    child = Table("leak_child", meta, Column("id", Integer, primary_key=True),
                  Column("parent_id", ForeignKey(parent.c.id), nullable=False),
                  Column("recipient", Text))
    try:
        meta.create_all(engine)
        with pytest.raises(IntegrityError) as failed, engine.begin() as conn:
            conn.execute(child.insert().values(parent_id=99,
                                               recipient=f"reply+{token}@tickets.localhost"))
        assert token not in str(failed.value)
    finally:
        meta.drop_all(engine)
        engine.dispose()
