"""OAuth2 IMAP against a real Dovecot whose oauth2 passdb asks a token introspection endpoint
this test serves, with the token endpoint the poller refreshes at (Authlib, real HTTP)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

import inbound.imap_client as imap_client
from gateway.domain.clock import FrozenClock
from gateway.domain.errors import ConfigError
from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.imap import poll_once, run_imap
from inbound.imap_client import (
    FOLDERS,
    PROCESSED,
    REJECTED,
    Backoff,
    LoginFailed,
    connect,
    parse_imap_url,
)
from inbound.imap_oauth import RefreshFailed, TokenKeeper
from store.models import InboundMail, OutboxMail
from tests.inbound.conftest import RECEIPT, World, make_mail
from tests.support.dovecot import TEST_USER, DovecotServer, start_dovecot, stop_dovecot
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.support.services import wait_until
from web.app import create_app

pytestmark = pytest.mark.imap
SECOND = "second"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture(scope="module")
def oauth_dovecot(provider: Provider) -> Iterator[DovecotServer]:
    server, proc = start_dovecot(introspection_url=f"{provider.url}/introspect",
                                 users=(TEST_USER, SECOND))
    try:
        yield server
    finally:
        stop_dovecot(server, proc)


def as_user(server: DovecotServer, user: str) -> DovecotServer:
    return dataclasses.replace(server, user=user)


@pytest.fixture
def mailboxes(oauth_dovecot: DovecotServer) -> DovecotServer:
    for user in (TEST_USER, SECOND):
        server = as_user(oauth_dovecot, user)
        with server.client() as client:
            imap_client.ensure_folders(client)
        for name in ("INBOX", *FOLDERS):
            server.clear(name)
    return oauth_dovecot


def oauth_url(server: DovecotServer, user: str, refresh_token: str,
              auth: str = "xoauth2") -> str:
    return f"imap://{user}:{refresh_token}@{server.host}:{server.port}/INBOX?auth={auth}"


@pytest.fixture
def rt(world: World, provider: Provider, tmp_path: Path) -> Runtime:
    runtime = world.runtime
    runtime.settings = dataclasses.replace(
        runtime.settings, imap_oauth_token_url=f"{provider.url}/token",
        imap_oauth_client_id=CLIENT_ID, imap_oauth_client_secret=CLIENT_SECRET,
        imap_token_dir=str(tmp_path / "imap-tokens"))
    return runtime


def mail(subject: str, sender: str | None = None) -> bytes:
    raw = make_mail(subject=subject, **({"sender": sender} if sender else {}))
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def taken(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(InboundMail)).scalar_one())


@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_a_mailbox_logs_in_with_an_access_token_got_from_its_refresh_token(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer, auth: str,
        caplog: pytest.LogCaptureFixture) -> None:
    refresh = provider.grant(TEST_USER)
    account = parse_imap_url(oauth_url(mailboxes, TEST_USER, refresh, auth))
    keeper = TokenKeeper(account, rt.settings, rt.clock)
    mailboxes.append(mail(f"Help with {RECEIPT}"))
    before = len(provider.refreshes)
    with caplog.at_level(logging.DEBUG), connect(account, token=keeper) as client:
        assert poll_once(rt, client, account=account).processed == 1
    assert len(provider.refreshes) == before + 1
    # kept for the owner only, and never written to the log
    assert stat.S_IMODE(keeper.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keeper.path.parent.stat().st_mode) == 0o700
    access = keeper.access_token()
    assert access.startswith("at-") and len(provider.refreshes) == before + 1  # reused
    assert refresh not in caplog.text and access not in caplog.text


def test_the_token_is_refreshed_before_it_expires_and_when_the_server_refuses_it(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer) -> None:
    assert isinstance(rt.clock, FrozenClock)
    account = parse_imap_url(oauth_url(mailboxes, TEST_USER, provider.grant(TEST_USER)))
    keeper = TokenKeeper(account, rt.settings, rt.clock)
    first = keeper.access_token()
    # four minutes before it expires (the margin is five): a new one, before any login fails
    rt.clock.advance(timedelta(minutes=56))
    second = keeper.access_token()
    assert second != first
    with connect(account, token=keeper) as client:
        client.noop()
    # the provider ends every access token early: the refused login takes a fresh one
    provider.expire_access_tokens()
    with connect(account, token=keeper) as client:
        client.noop()
    assert keeper.access_token() not in (first, second)


def test_a_rotated_refresh_token_is_kept_and_used_next(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer) -> None:
    provider.rotate = True
    try:
        account = parse_imap_url(oauth_url(mailboxes, TEST_USER, provider.grant(TEST_USER)))
        keeper = TokenKeeper(account, rt.settings, rt.clock)
        keeper.access_token()
        keeper.access_token(fresh=True)  # the configured token is dead now; the kept one works
        with connect(account, token=keeper) as client:
            client.noop()
    finally:
        provider.rotate = False


def test_a_revoked_refresh_token_fails_at_refresh_without_naming_it(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer) -> None:
    refresh = provider.grant(TEST_USER)
    provider.revoke(refresh)
    account = parse_imap_url(oauth_url(mailboxes, TEST_USER, refresh))
    with pytest.raises(RefreshFailed) as caught:
        connect(account, token=TokenKeeper(account, rt.settings, rt.clock))
    assert "invalid_grant" in str(caught.value) and refresh not in str(caught.value)
    # a token the server does not know is a refused login, not a broken connection
    with pytest.raises(LoginFailed):
        connect(account, token=lambda fresh: "at-forged")


def operator_mails(runtime: Runtime) -> list[tuple[str, bytes]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxMail).where(OutboxMail.event == "operator")
                               .order_by(OutboxMail.id)).all()
        return [(row.recipient, bytes(row.raw or b"")) for row in rows]


def failures_counted(mailbox: str, stage: str) -> float:
    """`ticketgw_imap_failures_total` as /metrics shows it."""
    found = re.search(rb'^ticketgw_imap_failures_total\{mailbox="' + re.escape(mailbox.encode())
                      + rb'",stage="' + stage.encode() + rb'"\} ([0-9.e+]+)$',
                      metrics.scrape(), re.M)
    return float(found[1]) if found else 0.0


@contextmanager
def polling(runtime: Runtime) -> Iterator[threading.Thread]:
    """The `imap` role running on `runtime` until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=run_imap, args=(runtime, stop),
                              kwargs={"backoff": Backoff(first=0.05, limit=0.2),
                                      "poll_seconds": 0.1, "idle_seconds": 0.5})
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def healthz(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    with TestClient(create_app(runtime)) as client:
        response = client.get("/healthz")
    return response.status_code, response.json()


def test_a_revoked_token_degrades_health_mails_the_operator_once_and_spares_the_other(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer) -> None:
    assert isinstance(rt.clock, FrozenClock)
    good = oauth_url(mailboxes, SECOND, provider.grant(SECOND))
    revoked = provider.grant(TEST_USER)
    provider.revoke(revoked)
    broken = parse_imap_url(oauth_url(mailboxes, TEST_USER, revoked)).key
    rt.settings = dataclasses.replace(
        rt.settings, imap_url=f"{oauth_url(mailboxes, TEST_USER, revoked)}, {good}",
        operator_email="ops@shop.example")
    as_user(mailboxes, SECOND).append(mail(f"Second mailbox {RECEIPT}"))
    counted = failures_counted(broken, "refresh")
    with polling(rt):
        wait_until(lambda: taken(rt) == 1, timeout=20)
        wait_until(lambda: failures_counted(broken, "refresh") >= counted + 3, timeout=20)
        # the pass that took the mail writes its heartbeat once it ends
        wait_until(lambda: "ok" in [m["state"] for m in healthz(rt)[1].get("mailboxes", [])],
                   timeout=20)
        status, body = healthz(rt)
        assert status == 503 and body["imap"] == "failing"
        states = {m["mailbox"]: m for m in body["mailboxes"]}
        assert states[broken]["state"] == "failing" and "invalid_grant" in states[broken][
            "last_error"] and revoked not in json.dumps(body)
        assert [m["state"] for k, m in states.items() if k != broken] == ["ok"]
        [(to, raw)] = operator_mails(rt)  # many failures, one mail
        assert to == "ops@shop.example" and broken.encode() in raw
        assert b"invalid_grant" in raw and revoked.encode() not in raw
        # a day later, still failing: one more
        rt.clock.advance(timedelta(days=1, minutes=1))
        wait_until(lambda: len(operator_mails(rt)) == 2, timeout=20)
    with as_user(mailboxes, SECOND).client() as client:
        client.select_folder(PROCESSED, readonly=True)
        assert len(client.search(["ALL"])) == 1


def test_500_mails_waiting_through_an_outage_are_all_taken_once(
        rt: Runtime, provider: Provider, mailboxes: DovecotServer,
        caplog: pytest.LogCaptureFixture) -> None:
    refresh = provider.grant(TEST_USER)
    provider.revoke(refresh)
    url = oauth_url(mailboxes, TEST_USER, refresh)
    rt.settings = dataclasses.replace(rt.settings, imap_url=url)
    key = parse_imap_url(url).key
    with polling(rt), caplog.at_level(logging.INFO, logger="ticketgw.imap"):
        wait_until(lambda: failures_counted(key, "refresh") > 0, timeout=20)
        with mailboxes.client() as client:  # mail piles up, some of it months old; from 25
            for number in range(500):  # senders, each under the per-sender rate limit
                client.append("INBOX", mail(f"Outage mail {number}",
                                            f"writer{number % 25}@example.net"),
                              msg_time=datetime(2026, 1, 1, tzinfo=UTC) if number < 50 else None)
        provider.refresh[refresh] = TEST_USER  # the operator fixed the grant
        wait_until(lambda: taken(rt) == 500, timeout=240)
        wait_until(lambda: healthz(rt)[1].get("imap") == "ok", timeout=20)
    assert taken(rt) == 500
    with rt.sessions() as session:
        subjects = session.scalars(select(InboundMail.raw)).all()
    assert len(set(subjects)) == 500
    with mailboxes.client() as client:
        client.select_folder(REJECTED, readonly=True)  # strangers, each told once a day
        assert len(client.search(["ALL"])) == 500
        client.select_folder("INBOX", readonly=True)
        assert client.search(["ALL"]) == []
    [back] = [r for r in caplog.records if r.getMessage().startswith("imap mailbox works again")]
    assert back.getMessage() == "imap mailbox works again; took 500 waiting mails"


def test_an_oauth2_mailbox_without_a_token_endpoint_is_refused_at_start(
        rt: Runtime, mailboxes: DovecotServer) -> None:
    settings = dataclasses.replace(rt.settings, imap_oauth_token_url="")
    account = parse_imap_url(oauth_url(mailboxes, TEST_USER, "rt-x"))
    with pytest.raises(ConfigError, match="TICKETGW_IMAP_OAUTH_TOKEN_URL"):
        TokenKeeper(account, settings, rt.clock)
