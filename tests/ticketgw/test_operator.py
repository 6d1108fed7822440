"""The operator's reading tools through the command line: lists, addresses, vendors, keys."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, update

from gateway.domain.clock import format_instant
from gateway.domain.facts import Role, TicketType
from gateway.services import apikeys, inbox
from gateway.services.apikeys import InvalidKey
from inbound.intake import receive
from store.models import OutboxMail, Vendor
from tests.inbound.conftest import CUSTOMER, STRANGER, SUB_RECEIPT, World, make_mail
from tests.ticketgw import test_mail_commands
from ticketgw.cli import build_parser, main

cli_env = test_mail_commands.cli_env  # the same fixtures: a seeded world, its settings
world = test_mail_commands.world


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_ticket_list_filters_and_a_header(cli_env: World,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    support = cli_env.open(TicketType.TECH_SUPPORT)
    assert main(["ticket", "act", str(support), "close", "--as", "customer"]) == 0
    refund = cli_env.open(TicketType.REFUND)
    cancel = cli_env.open(TicketType.CANCELLATION, receipt=SUB_RECEIPT)
    assert main(["ticket", "act", str(refund), "escalate", "--as", "vendor",
                 "--comment", "no answer"]) == 0
    capsys.readouterr()

    def numbers(*filters: str) -> list[int]:
        return [t["number"] for t in as_json(capsys, "ticket", "list", *filters)]

    assert numbers() == [support, refund, cancel]
    assert numbers("--type", "refund") == [refund]
    assert numbers("--status", "closed") == [support]
    assert numbers("--escalated") == [refund]
    assert numbers("--receipt", SUB_RECEIPT.lower()) == [cancel]
    created = cli_env.runtime.clock.now()
    assert numbers("--since", format_instant(created + timedelta(hours=1)) or "") == []
    assert numbers("--until", format_instant(created + timedelta(hours=1)) or "") == [
        support, refund, cancel]
    code, out, _ = run(capsys, "ticket", "list", "--type", "refund")
    header, line = out.splitlines()
    assert header.split()[:4] == ["NUMBER", "TYPE", "STATUS", "RECEIPT"]
    assert line.startswith(f"#{refund}") and "refund" in line and "yes" in line
    code, _, err = run(capsys, "ticket", "list", "--since", "2026-12-01T00:00:00Z",
                       "--until", "2026-11-01T00:00:00Z")
    assert code == 1 and "--until must be later than --since" in err


def test_mail_list_shows_each_decision(cli_env: World,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    number = cli_env.open()
    receive(cli_env.runtime, make_mail(body="thanks, still broken"), envelope_from=CUSTOMER,
            recipient=cli_env.reply_address(number, Role.CUSTOMER))
    receive(cli_env.runtime, make_mail(sender=STRANGER, subject=f"[Ticket #{number}]"),
            envelope_from=STRANGER, recipient="support@tickets.localhost")
    rejected = as_json(capsys, "mail", "list", "--decision", "rejected")
    assert [(m["sender"], m["ticket"]) for m in rejected] == [(STRANGER, None)]
    assert rejected[0]["reason"]
    threaded = as_json(capsys, "mail", "list", "--ticket", str(number))
    assert [(m["sender"], m["decision"]) for m in threaded] == [(CUSTOMER, "applied")]
    token = cli_env.reply_address(number, Role.CUSTOMER).split("+")[1].split("@")[0]
    assert threaded[0]["recipient"].startswith("reply+") and token not in str(threaded)
    assert [m["sender"] for m in as_json(capsys, "mail", "list", "--sender",
                                         CUSTOMER.upper())] == [CUSTOMER]
    assert as_json(capsys, "mail", "list", "--since", "2099-01-01T00:00:00Z") == []
    code, out, _ = run(capsys, "mail", "list")
    assert out.splitlines()[0].split()[:3] == ["RECEIVED", "DECISION", "TICKET"]
    assert len(out.splitlines()) == 3 and f"#{number}" in out
    code, _, err = run(capsys, "mail", "list", "--ticket", "999999")
    assert code == 1 and "no ticket #999999" in err


def test_outbox_list_says_why_a_mail_failed(cli_env: World,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    number = cli_env.open()
    mails = as_json(capsys, "outbox", "list", "--ticket", str(number))
    assert {m["to"] for m in mails} >= {CUSTOMER} and all(m["state"] == "pending"
                                                          for m in mails)
    with cli_env.runtime.sessions.begin() as session:
        session.execute(update(OutboxMail).where(OutboxMail.recipient == CUSTOMER).values(
            state="failed", last_error="550 5.1.1 mailbox unknown"))
    failed = as_json(capsys, "outbox", "list", "--state", "failed")
    assert [(m["to"], m["reason"]) for m in failed] == [(CUSTOMER,
                                                         "550 5.1.1 mailbox unknown")]
    assert all(m["reason"] is None for m in as_json(capsys, "outbox", "list", "--state",
                                                      "pending"))
    code, out, _ = run(capsys, "outbox", "list", "--to", CUSTOMER)
    assert out.splitlines()[0].split()[:3] == ["ID", "CREATED", "STATE"]
    assert "550 5.1.1 mailbox unknown" in out


def test_address_show_and_unsuppress(cli_env: World,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    runtime = cli_env.runtime
    with runtime.sessions.begin() as session:
        inbox.mark_bouncing(session, [CUSTOMER], runtime.clock.now(), hard=[CUSTOMER])
    shown = as_json(capsys, "address", "show", CUSTOMER.upper())
    assert shown["suppressed"] is True and shown["known"] is True
    cleared = as_json(capsys, "address", "unsuppress", CUSTOMER)
    assert cleared["suppressed"] is False and cleared["bouncing_since"] is None
    code, _, err = run(capsys, "address", "unsuppress", CUSTOMER)
    assert code == 1 and "not suppressed" in err


def test_vendor_list_show_and_key_revocation(cli_env: World,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.open()
    [vendor] = as_json(capsys, "vendor", "list")
    assert (vendor["nickname"], vendor["open_tickets"], vendor["may_respond"],
            vendor["dispute_count"]) == ("acme", 1, True, 0)
    assert as_json(capsys, "vendor", "show", "acme")["timezone"] == "Europe/Berlin"
    code, _, err = run(capsys, "vendor", "show", "nobody")
    assert code == 1 and "nobody" in err
    key = as_json(capsys, "apikey", "create", "--vendor", "acme")["key"]
    [listed] = as_json(capsys, "apikey", "list")
    assert listed["revoked_at"] is None and key.startswith(listed["prefix"])
    assert key not in json.dumps(listed)
    assert as_json(capsys, "apikey", "revoke", str(listed["id"]))["revoked_at"]
    with cli_env.runtime.sessions() as session, pytest.raises(InvalidKey):
        apikeys.authenticate(session, key)
    code, _, err = run(capsys, "apikey", "revoke", "42")
    assert code == 1 and "apikey list" in err


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    return env


def ticketgw(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_reading_never_creates_a_database(bare_env: dict[str, str], tmp_path: Path) -> None:
    for args in (("ticket", "list"), ("status", "--json"), ("mail", "list"),
                 ("vendor", "list"), ("ticket", "show", "1")):
        done = ticketgw(bare_env, tmp_path, *args)
        assert done.returncode == 1 and "ticketgw init" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no var/, no database, no key


def test_database_errors_name_the_database(bare_env: dict[str, str], tmp_path: Path,
                                           free_tcp_port: int) -> None:
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{free_tcp_port}/nowhere"
    done = ticketgw({**bare_env, "TICKETGW_DATABASE_URL": url}, tmp_path, "ticket", "list")
    assert done.returncode == 1
    assert f"postgres:***@127.0.0.1:{free_tcp_port}/nowhere" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr


def _options(parser: argparse.ArgumentParser, path: str = "ticketgw") -> Iterator[
        tuple[str, argparse.Action]]:
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}")
        else:
            yield path, action


def test_every_option_says_what_it_does() -> None:
    bare = [f"{path} {'/'.join(a.option_strings) or a.dest}"
            for path, a in _options(build_parser()) if not a.help]
    assert bare == []


def test_version_and_a_closed_pipe(bare_env: dict[str, str], tmp_path: Path) -> None:
    version = ticketgw(bare_env, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("ticketgw ")
    assert ticketgw(bare_env, tmp_path, "init").returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'ticketgw.db'}")
    with engine.begin() as conn:  # more lines than a pipe's buffer holds
        conn.execute(insert(Vendor), [{
            "nickname": f"v{n:05d}", "account_email": f"v{n}@example.org", "timezone": "UTC",
            "locale": "en", "partial_refunds_enabled": False, "may_respond": True,
            "dispute_count": 0, "created_at": datetime(2026, 12, 1, tzinfo=UTC)}
            for n in range(3000)])
    engine.dispose()
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"{sys.executable} -m ticketgw.cli vendor list | head -1"],
        cwd=tmp_path, env=bare_env, capture_output=True, text=True, timeout=120)
    assert piped.stdout.startswith("NICKNAME") and piped.stderr == "", piped.stderr
    assert piped.returncode == 141  # as a program stopped by SIGPIPE: the shell's convention


@pytest.mark.parametrize(("role", "setting"), [("smtp", "TICKETGW_SMTP_LISTEN"),
                                               ("web", "TICKETGW_HTTP_LISTEN"),
                                               ("serve", "TICKETGW_HTTP_LISTEN")])
def test_a_port_in_use_is_one_line_naming_the_setting(
        bare_env: dict[str, str], tmp_path: Path, role: str, setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**bare_env, "TICKETGW_SMTP_LISTEN": "127.0.0.1:0",
               "TICKETGW_HTTP_LISTEN": "127.0.0.1:0", setting: f"127.0.0.1:{port}"}
        done = ticketgw(env, tmp_path, role)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert errors == [f"ticketgw: error: cannot listen on 127.0.0.1:{port} (already in use); "
                      f"stop what uses it or set {setting} to another host:port"]
