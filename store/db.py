"""Engines and sessions for SQLite and PostgreSQL, and schema creation through Alembic."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.errors import ConfigError
from store.files import ensure_private_file

if TYPE_CHECKING:
    from alembic.config import Config


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine with the settings our durability promises need on each backend.

    Its errors never quote a statement's parameters (`hide_parameters`): they carry reply
    addresses and whole mails, and error texts end up in logs and in `mail why`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            # made owner-only before SQLite opens it: its -wal and -shm files take its mode
            ensure_private_file(Path(database))
        # a file database keeps a small pool of connections (the pragmas run once per
        # connection); processes that fork dispose the engine first
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=pool_size,
                               hide_parameters=True)
        _sqlite_pragmas(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         hide_parameters=True)


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite begins transactions lazily and not before SELECT; take the write lock up front
    # (BEGIN IMMEDIATE) so a read-then-write transaction never fails half way with
    # "database is locked", and SAVEPOINTs behave (SQLAlchemy's documented pysqlite recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # a commit acknowledges mail: it must survive a power cut
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class _WriterLock:
    """A file beside a SQLite database that writers in every process take turns on."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = -1
        self.fd = -1
        self.threads = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.threads:  # flock is per open file: threads of one process queue here
            if self.pid != os.getpid():  # opened after a fork: never share the parent's file
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self.pid = os.getpid()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


_WRITER_LOCKS: dict[str, _WriterLock] = {}


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Wait for this process's turn to write a SQLite file database, asleep in the kernel.

    SQLite's own wait for its write lock polls, sleeping up to 100 ms between tries: with
    several processes writing all the time, turns are wasted and the slowest mails wait
    far longer than the work takes (measured with two SMTP listeners in bench/inbound.py).
    Writers that take this turn first are woken the moment the one before them is done.
    Other databases lock rows, not the whole file: nothing to wait for here."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        yield
        return
    lock = _WRITER_LOCKS.get(database)
    if lock is None:
        lock = _WRITER_LOCKS.setdefault(database, _WriterLock(f"{database}-writer.lock"))
    with lock.held():
        yield


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else (
        session_or_engine
    )
    return bind.dialect.name == "postgresql"


def alembic_config(engine: Engine) -> Config:
    # Alembic is imported when a schema is read or changed, not by every command that
    # starts (about 0.15 s of a one-shot command's start)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("store") / "migrations"))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> str:
    """Create or upgrade the schema to the newest revision; idempotent. Returns the revision.

    A database already at a revision this version does not know (a newer ticketgw migrated
    it) is left alone, with what to do."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = alembic_config(engine)
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        if "Can't locate revision" not in str(exc):
            raise
        known = ScriptDirectory.from_config(config).get_current_head()
        raise ConfigError(
            f"the database {engine.url.render_as_string(hide_password=True)} was migrated by "
            f"a newer ticketgw ({exc}); this one knows revisions up to {known}: install the "
            "newer version on this machine too") from None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row else ""
