"""The test infrastructure itself: each real service answers and each helper does its job."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage

import pika
import psycopg
import pytest
import redis
import sqlalchemy as sa

from tests.support import services
from tests.support.dovecot import DovecotServer
from tests.support.services import postgres_url, unique_name, wait_until
from ticketgw.testing import services as shared_services
from ticketgw.testing.smtp_sink import SmtpSink


def _psycopg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _database_exists(name: str) -> bool:
    with psycopg.connect(shared_services._pg_conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


@pytest.mark.postgres
def test_throwaway_database_takes_a_table_and_is_dropped_afterwards() -> None:
    with postgres_url() as url:
        name = url.rsplit("/", 1)[1]
        assert name.startswith("ticketgw_t_")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (id integer PRIMARY KEY, body text)"))
                conn.execute(sa.text("INSERT INTO t VALUES (1, 'hello')"))
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT body FROM t")).scalar_one() == "hello"
                conn.execute(sa.text("DROP TABLE t"))
                conn.commit()
            # A connection still open at teardown must not stop the drop.
            lingering = psycopg.connect(_psycopg_conninfo(url))
        finally:
            engine.dispose()
        assert _database_exists(name)
    assert not _database_exists(name)
    lingering.close()


@pytest.mark.postgres
def test_make_pg_database_gives_separate_databases(
    make_pg_database: Callable[[], str], pg_admin_url: str
) -> None:
    first, second = make_pg_database(), make_pg_database()
    assert first != second
    for url in (first, second):
        with psycopg.connect(_psycopg_conninfo(url)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (url.rsplit("/", 1)[1],)
    assert pg_admin_url.endswith("/postgres")


@pytest.mark.redis
def test_redis_answers_ping(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.ping() is True
        key = unique_name("ticketgw_t_")
        client.set(key, b"v", ex=60)
        assert client.get(key) == b"v"
        client.delete(key)
    finally:
        client.close()


@pytest.mark.rabbitmq
def test_rabbitmq_accepts_a_connection_and_round_trips_a_message(rabbitmq_url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = conn.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.basic_publish(exchange="", routing_key=queue, body=b"ping")
        body = wait_until(
            lambda: channel.basic_get(queue, auto_ack=True)[2],
            timeout=5,
            message="published message never reached the queue",
        )
        assert body == b"ping"
    finally:
        conn.close()


def _mail(subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "support@tickets.localhost"
    msg["To"] = "ann@example.org"
    msg["Subject"] = subject
    msg.set_content("Body text\n")
    return msg


def test_smtp_sink_keeps_what_it_receives(smtp_sink: SmtpSink) -> None:
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(_mail("Ticket Opened - Refund Request [Ticket #1]"))
        client.send_message(_mail("Second"), to_addrs=["a@example.org", "b@example.org"])
    first, second = smtp_sink.wait_for(2, timeout=10)
    assert first.mail_from == "support@tickets.localhost"
    assert first.rcpt_tos == ("ann@example.org",)
    assert first.subject == "Ticket Opened - Refund Request [Ticket #1]"
    assert first.message.get_content() == "Body text\n"
    assert b"Subject: Ticket Opened" in first.raw
    assert second.rcpt_tos == ("a@example.org", "b@example.org")
    smtp_sink.clear()
    assert smtp_sink.messages == []


def test_smtp_sink_says_when_each_mail_arrived(smtp_sink: SmtpSink) -> None:
    # on the monotonic clock, which every process of the machine shares: bench/processes.py
    # compares it with the moment its load process got 250 from the gateway
    before = time.monotonic()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(_mail("first"))
        between = time.monotonic()
        client.send_message(_mail("second"))
    first, second = smtp_sink.wait_for(2, timeout=10)
    assert before <= first.received_at <= between <= second.received_at <= time.monotonic()


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_smtp_sink_refuses_with_451_while_down(smtp_sink: SmtpSink, stage: str) -> None:
    smtp_sink.go_down(stage)
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPException) as refused:
            client.send_message(_mail())
        error = refused.value
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = {code for code, _ in error.recipients.values()}
        else:
            assert isinstance(error, smtplib.SMTPResponseException)
            codes = {error.smtp_code}
        assert codes == {451}
        client.rset()
        assert smtp_sink.refused == 1
        assert smtp_sink.messages == []

        smtp_sink.go_up()
        client.send_message(_mail("after"))
    assert [m.subject for m in smtp_sink.wait_for(1)] == ["after"]


def test_smtp_sink_wait_for_fails_at_its_deadline(smtp_sink: SmtpSink) -> None:
    with pytest.raises(AssertionError, match="got 0 mail"):
        smtp_sink.wait_for(1, timeout=0.1)


@pytest.mark.imap
def test_dovecot_serves_an_appended_mail(dovecot: DovecotServer) -> None:
    dovecot.clear()
    raw = _mail("Via IMAP").as_bytes().replace(b"\n", b"\r\n")
    dovecot.append(raw)
    with dovecot.client() as client:
        client.select_folder("INBOX")
        ids = client.search("UNSEEN")
        assert len(ids) == 1
        fetched = client.fetch(ids, ["RFC822"])[ids[0]][b"RFC822"]
    assert fetched == raw
    dovecot.clear()


def test_wait_until_returns_the_value_or_fails_at_the_deadline() -> None:
    calls = iter([0, 0, 7])
    assert wait_until(lambda: next(calls), timeout=5) == 7
    with pytest.raises(AssertionError, match="never true"):
        wait_until(lambda: False, timeout=0.05, message="never true")


def test_free_port_can_be_bound() -> None:
    import socket

    port = services.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_require_service_fails_when_required_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down() -> None:
        raise ConnectionRefusedError("refused")

    monkeypatch.setitem(shared_services._PROBES, "redis", down)
    monkeypatch.setattr(shared_services, "_answered", set())
    monkeypatch.setenv(services.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="redis does not answer"):
        services.require_service("redis")
    monkeypatch.setenv(services.REQUIRE_ENV, "0")
    with pytest.raises(pytest.skip.Exception, match="redis does not answer"):
        services.require_service("redis")
