"""Outlook's winmail.dat (TNEF) is unpacked into its real attachments and body, parsed and
through SMTP and IMAP. Fixtures: tests/data/outlook_tnef*.eml, written with
tests/support/tnef.py (a hand-made TNEF stream that tnefparse reads back)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import select
from tnefparse import TNEF

import inbound.imap_client as imap_client
from gateway.services.runtime import Runtime
from inbound.imap import poll_once
from inbound.imap_client import FOLDERS
from inbound.parse import parse_mail
from store.models import Ticket
from tests.inbound.conftest import DOMAIN, SmtpServer, World, send
from tests.support.dovecot import DovecotServer
from tests.support.tnef import build_tnef

DATA = Path(__file__).resolve().parents[1] / "data"
BODY = "Hello, the licence key is refused. Screenshot and log attached."


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_the_fixture_is_a_tnef_stream_tnefparse_reads_with_good_checksums() -> None:
    blob = build_tnef("Hi\r\n", [("a.txt", b"abc")])
    tnef = TNEF(blob, do_checksum=True)
    assert all(obj.good_checksum for obj in tnef.objects)
    assert [(a.name, a.data) for a in tnef.attachments] == [("a.txt", b"abc")]


@pytest.mark.parametrize("name", ["outlook_tnef_en.eml", "outlook_tnef_only_en.eml"])
def test_winmail_dat_becomes_its_files_and_its_body(name: str) -> None:
    parsed = parse_mail(raw(name))
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("screenshot.png", "image/png", 72), ("install-log.txt", "text/plain", 32)]
    assert parsed.attachments[1].data == "Error 0x80070005: accès refusé\r\n".encode("cp1252")
    assert "winmail.dat" not in [a.filename for a in parsed.attachments]
    assert parsed.text.startswith(BODY)  # the text part; or, when there is none, TNEF's body
    assert parsed.text.count("licence key") == 1


def test_an_unreadable_winmail_dat_is_kept_as_it_is() -> None:
    mail = raw("outlook_tnef_only_en.eml").split(b"\r\n\r\n", 1)[0] + b"\r\n\r\nbm90IHRuZWY=\r\n"
    parsed = parse_mail(mail)
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert any("ms-tnef" in defect for defect in parsed.defects)


def _ticket(world: World) -> dict[str, object]:
    with world.runtime.sessions() as session:
        [number] = session.scalars(select(Ticket.number)).all()
    return world.ticket(number)


def _attachments(world: World) -> list[str]:
    messages = _ticket(world)["messages"]
    assert isinstance(messages, list)
    return [a["filename"] for a in messages[-1]["attachments"]]


def test_outlook_mail_with_winmail_dat_through_smtp(smtp: SmtpServer, world: World) -> None:
    code, _ = send(smtp, raw("outlook_tnef_only_en.eml"), rcpt=f"support@{DOMAIN}",
                   mail_from="ann@example.org")
    assert code == 250
    assert _attachments(world) == ["screenshot.png", "install-log.txt"]
    assert str(_ticket(world)["messages"][-1]["text"]).startswith(BODY)  # type: ignore[index]


@pytest.mark.imap
def test_outlook_mail_with_winmail_dat_through_imap(world: World,
                                                    dovecot: DovecotServer) -> None:
    runtime: Runtime = world.runtime
    runtime.settings = dataclasses.replace(runtime.settings, imap_url=dovecot.url)
    with dovecot.client() as client:
        imap_client.ensure_folders(client)
    for folder in ("INBOX", *FOLDERS):
        dovecot.clear(folder)
    dovecot.append(raw("outlook_tnef_en.eml"))
    with dovecot.client() as client:
        assert poll_once(runtime, client).processed == 1
    assert _attachments(world) == ["screenshot.png", "install-log.txt"]
