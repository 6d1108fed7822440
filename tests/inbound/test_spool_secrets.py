"""A mail the database refuses: logs and the spool keep no token, the spool is owner-only,
and a replay still reaches the ticket the reply address named."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.domain.facts import Role
from inbound import intake, spool
from store.db import is_postgres
from tests.inbound.conftest import CUSTOMER, World, make_mail
from tests.support.files import not_owner_only, usual_umask
from ticketgw.app import JsonFormatter

# A real fault, not a mock: the database itself refuses the write. On PostgreSQL the refusal
# quotes the recipient, as PostgreSQL's own messages quote the values of a violated key (`%%`:
# the driver reads a lone `%` as a placeholder).
_REFUSE = {
    "sqlite": ["CREATE TRIGGER refuse_mail BEFORE INSERT ON inbound_mail "
               "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"],
    "postgresql": ["CREATE FUNCTION refuse_mail() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN RAISE EXCEPTION 'refused mail to %%', NEW.recipient; END $$",
                   "CREATE TRIGGER refuse_mail BEFORE INSERT ON inbound_mail "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_mail()"],
}
_ALLOW = {"sqlite": ["DROP TRIGGER refuse_mail"],
          "postgresql": ["DROP TRIGGER refuse_mail ON inbound_mail", "DROP FUNCTION refuse_mail"]}


def _run(engine: Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the program's JSON log handler writes, for the ticketgw loggers."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ticketgw")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_refused_write_leaves_no_token_in_logs_or_spool(world: World,
                                                        json_log: io.StringIO) -> None:
    runtime = world.runtime
    dialect = runtime.engine.dialect.name
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    token = address.split("+", 1)[1].split("@")[0]
    raw = make_mail(body=f"written while the database refused mail\nreply to {address}")
    _run(runtime.engine, _REFUSE[dialect])
    try:
        with usual_umask():
            outcome = intake.receive(runtime, raw, envelope_from=CUSTOMER, recipient=address)
    finally:
        _run(runtime.engine, _ALLOW[dialect])
    assert outcome.reply.startswith("451 4.3.0")

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    errors = [line["error"] for line in lines if "error" in line]
    assert errors and all("refuse" in e or "quota" in e for e in errors), lines
    if is_postgres(runtime.engine):
        assert any(f"refused mail to reply+{token[:4]}…@" in e for e in errors)
    assert token not in json_log.getvalue()

    folder = spool.spool_dir(runtime)
    (eml,) = folder.glob("*.eml")
    assert eml.read_bytes() == raw  # byte for byte: the replay needs it as it came
    meta_text = eml.with_suffix(".json").read_text()
    assert token not in meta_text
    meta = json.loads(meta_text)
    assert meta["recipient"] == f"reply+{token[:4]}…@tickets.localhost"
    assert "refuse" in meta["error"] or "quota" in meta["error"]
    assert not_owner_only(folder) == {}

    assert [o.state for o in intake.replay(runtime)] == ["applied"]
    message = world.ticket(number)["messages"][-1]  # type: ignore[index]
    assert message["author_role"] == "customer"  # the party the reply address named
    assert message["text"].startswith("written while the database refused mail")
    assert not list(folder.iterdir())


def test_spool_written_before_redaction_still_replays(world: World) -> None:
    """Spool files from before this version name the recipient in full."""
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    folder = spool.spool_dir(world.runtime)
    folder.mkdir(parents=True)
    (folder / "1-1-old.eml").write_bytes(make_mail(body="an old spool file"))
    (folder / "1-1-old.json").write_text(json.dumps(
        {"envelope_from": CUSTOMER, "recipient": address, "error": "OperationalError: x"}))
    assert [o.state for o in intake.replay(world.runtime)] == ["applied"]
    assert world.ticket(number)["messages"][-1]["text"] == "an old spool file"  # type: ignore[index]
