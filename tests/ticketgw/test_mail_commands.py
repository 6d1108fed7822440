"""`ticketgw mail why` and `ticketgw mail replay` through the command line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from gateway.domain.facts import Role
from gateway.services.runtime import Runtime
from inbound.intake import receive
from store.models import InboundMail
from tests.inbound.conftest import CUSTOMER, STRANGER, World, make_mail, seed
from ticketgw.cli import main


@pytest.fixture
def world(runtime: Runtime) -> World:
    return seed(runtime)



@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    settings = world.runtime.settings
    monkeypatch.setenv("TICKETGW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TICKETGW_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("TICKETGW_OUTBOX_MAILDIR", settings.outbox_maildir)
    return world


def test_mail_why(cli_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_mail(sender=STRANGER, subject="[Ticket #5]", message_id="<cli-why@example.org>")
    receive(cli_env.runtime, raw, envelope_from=STRANGER, recipient="support@tickets.localhost")
    assert main(["mail", "why", "<cli-why@example.org>", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["decision"] == "rejected_not_party" and rows[0]["state"] == "rejected"
    assert main(["mail", "why", "cli-why@example.org"]) == 0
    assert "rejected_not_party" in capsys.readouterr().out
    assert main(["mail", "why", "nothing@example.org", "--json"]) == 1


def test_mail_replay(cli_env: World, capsys: pytest.CaptureFixture[str],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.services import journal

    number = cli_env.open()
    with monkeypatch.context() as patch:  # a fault after the reply's message row is written
        patch.setattr(journal, "record", lambda *a, **k: 1 / 0)
        outcome = receive(cli_env.runtime, make_mail(body="replayed later"),
                          envelope_from=CUSTOMER,
                          recipient=cli_env.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "failed"
    capsys.readouterr()
    assert main(["mail", "replay", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["replayed"] == 1 and data["items"][0]["state"] == "applied"
    assert cli_env.ticket(number)["messages"][-1]["text"] == "replayed later"  # type: ignore[index]


def test_mail_why_cuts_reply_tokens(cli_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    number = cli_env.open()
    address = cli_env.reply_address(number, Role.CUSTOMER)
    token = address.split("+", 1)[1].split("@")[0]
    receive(cli_env.runtime, make_mail(message_id="<why-token@example.org>"),
            envelope_from=CUSTOMER, recipient=address)
    with cli_env.runtime.sessions.begin() as session:  # an error kept by an older version
        session.execute(update(InboundMail).values(error=f"IntegrityError: refused {address}"))
    shown = f"reply+{token[:4]}…@tickets.localhost"
    assert main(["mail", "why", "why-token@example.org"]) == 0
    text = capsys.readouterr().out
    assert f"{CUSTOMER} -> {shown}: applied" in text and token not in text
    assert main(["mail", "why", "why-token@example.org", "--json"]) == 0
    out = capsys.readouterr().out
    (row,) = json.loads(out)
    assert (row["recipient"], row["error"]) == (shown, f"IntegrityError: refused {shown}")
    assert token not in out
