"""Limits that keep one client from holding the listener: connections per client address, a
session's whole life, commands that send no mail. Real sockets on loopback (127.0.0.2 is
loopback on Linux too: a second client address)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import select
import smtplib
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from gateway.domain.errors import ConfigError
from gateway.domain.facts import Role
from gateway.domain.settings import parse_settings
from gateway.services.runtime import Runtime
from inbound.smtp_limits import client_key
from tests.inbound.conftest import CUSTOMER, DOMAIN, SmtpServer, World, crlf, make_mail
from tests.support import wait_until

FROM_YOUR_ADDRESS = b"421 4.7.0 too many connections from your address; try again later\r\n"


def _greeting(server: SmtpServer, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """A raw connection from `source` and the first line the listener sends it."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                    source_address=(source, 0))
    return sock, sock.makefile("rb").readline()


def _closed(sock: socket.socket) -> bool:
    """The listener has closed the connection: what is left to read ends, or the kernel
    resets it (a command sent after the close)."""
    sock.settimeout(10)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_one_address_gets_its_share_and_another_still_gets_in(world: World) -> None:
    world.runtime.settings = dataclasses.replace(world.runtime.settings, smtp_max_per_client=3)
    server = SmtpServer(world.runtime)
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            sock, line = _greeting(server)
            held.append(sock)
            assert line.startswith(b"220 ")
        extra, line = _greeting(server)
        assert line == FROM_YOUR_ADDRESS and _closed(extra)
        other, line = _greeting(server, source="127.0.0.2")
        held.append(other)
        assert line.startswith(b"220 ")
        held.pop(0).close()  # a slot of the first address is free again
        wait_until(lambda: server.listener.gate.per_client.get("127.0.0.1") == 2)
        again, line = _greeting(server)
        held.append(again)
        assert line.startswith(b"220 ")
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_the_default_share_is_twenty(world: World) -> None:
    assert world.runtime.settings.smtp_max_per_client == 20
    server = SmtpServer(world.runtime)
    held: list[socket.socket] = []
    try:
        for _ in range(20):
            sock, line = _greeting(server)
            held.append(sock)
            assert line.startswith(b"220 ")
        extra, line = _greeting(server)
        assert line == FROM_YOUR_ADDRESS
        extra.close()
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_commands_that_send_no_mail_are_cut_off(smtp: SmtpServer) -> None:
    """NOOP and RSET for ever kept a connection (aiosmtpd limits NOOP to 100 and RSET not
    at all): now the 21st command in a row without a mail ends it."""
    client = smtp.client()  # EHLO: the first
    answers = []
    for i in range(60):
        answers.append(client.docmd("NOOP" if i % 2 else "RSET"))
        if answers[-1][0] != 250:
            break
    assert [code for code, _ in answers[:19]] == [250] * 19
    assert answers[19:] == [(421, b"4.7.0 too many commands without sending a mail; "
                                  b"please reconnect")]
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()


def test_the_limits_are_settings(world: World) -> None:
    """TICKETGW_SMTP_IDLE_COMMANDS and TICKETGW_SMTP_SESSION_SECONDS, read as any setting."""
    settings = parse_settings({}, {"TICKETGW_SMTP_IDLE_COMMANDS": "5",
                                   "TICKETGW_SMTP_SESSION_SECONDS": "3600"})
    assert (settings.smtp_idle_commands, settings.smtp_session_seconds) == (5, 3600)
    with pytest.raises(ConfigError, match="TICKETGW_SMTP_SESSION_SECONDS"):
        parse_settings({}, {"TICKETGW_SMTP_SESSION_SECONDS": "5"})  # below 30: refused
    world.runtime.settings = dataclasses.replace(world.runtime.settings, smtp_idle_commands=5)
    server = SmtpServer(world.runtime)
    try:
        client = server.client()  # EHLO: the first of five
        codes = [client.docmd("NOOP")[0] for _ in range(5)]
        assert codes == [250, 250, 250, 250, 421]  # the sixth command without a mail
    finally:
        server.stop()


def test_a_connection_that_sends_mail_keeps_going(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    client = smtp.client()
    for i in range(12):  # 5 counted commands a mail, 60 in all: each mail starts afresh
        assert client.rset()[0] == 250 and client.noop()[0] == 250
        assert client.mail(CUSTOMER)[0] == 250 and client.rcpt(address)[0] == 250
        assert client.data(crlf(make_mail(body=f"note {i}")))[0] == 250
    client.quit()


def test_a_session_ends_when_its_life_does(world: World) -> None:
    """However busy it is: the idle timeout (120 s) is not what ends it here."""
    server = SmtpServer(world.runtime, lifetime=1.0, max_idle_commands=10_000)
    try:
        started = time.monotonic()
        sock, line = _greeting(server)
        assert line.startswith(b"220 ")
        reader = sock.makefile("rb")
        last = b""
        while time.monotonic() - started < 10:
            sock.sendall(b"NOOP\r\n")
            last = reader.readline()
            if not last.startswith(b"250"):
                break
            select.select([sock], [], [], 0.05)  # a client that is never idle for long
        assert last == b"421 4.4.2 this connection has been open too long; please reconnect\r\n"
        assert 0.9 <= time.monotonic() - started < 5  # asyncio may run a timer a tick early
        assert _closed(sock)
        sock.close()
    finally:
        server.stop()


@contextlib.contextmanager
def writes_held(runtime: Runtime) -> Iterator[None]:
    """Intake waits for the database: on SQLite the writers' turn is taken (the lock file
    beside the database), on PostgreSQL the inbound mail table is locked."""
    if runtime.engine.dialect.name == "sqlite":
        fd = os.open(f"{runtime.engine.url.database}-writer.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE inbound_mail IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def test_a_life_that_ends_during_intake_gets_its_answer_first(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    server = SmtpServer(world.runtime, lifetime=1.0)
    answers: list[tuple[int, bytes]] = []
    try:
        client = server.client()
        assert client.mail(CUSTOMER)[0] == 250 and client.rcpt(address)[0] == 250
        with caplog.at_level(logging.INFO, logger="ticketgw.inbound.smtp"):
            with writes_held(world.runtime):
                sending = threading.Thread(target=lambda: answers.append(
                    client.data(crlf(make_mail(body="slow to store")))))
                sending.start()
                wait_until(lambda: any(r.getMessage() == "SMTP session life over during "
                                       "intake" for r in caplog.records), timeout=15)
            sending.join(30)
        assert answers and answers[0][0] == 250
        assert client.getreply() == (421, b"4.4.2 this connection has been open too long; "
                                          b"please reconnect")
        assert world.ticket(number)["messages"][-1]["text"] == "slow to store"  # type: ignore[index]
    finally:
        server.stop()


def test_recipients_are_not_counted_as_commands_without_mail(smtp: SmtpServer) -> None:
    """An MTA names every recipient of a mail; all but one of ours are refused."""
    client = smtp.client()
    assert client.mail(CUSTOMER)[0] == 250
    codes = {client.rcpt(f"support@{DOMAIN}")[0] for _ in range(40)}
    assert codes == {250, 452}
    client.quit()


def test_a_client_is_its_address_or_its_ipv6_64() -> None:
    assert client_key(("192.0.2.7", 40000)) == "192.0.2.7"
    assert client_key(("2001:db8:1:2:a:b:c:d", 40000, 0, 0)) == "2001:db8:1:2::/64"
    assert client_key(("::ffff:192.0.2.7", 40000, 0, 0)) == "192.0.2.7"
    assert client_key(None) == "None"
