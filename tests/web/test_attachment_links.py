"""Attachments through signed links, and a mail's own pictures shown in place on the ticket page.

Mail comes in through the real SMTP listener (Apple Mail's inline picture, a part of
multipart/related without Content-Disposition; files of every kind); the page and its links are
read as a browser would, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from html import unescape
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.texts import _
from gateway.services import apikeys, i18n, tickets, vendors
from gateway.services.context import Actor, MailOrigin, StoredAttachment
from gateway.services.runtime import Runtime
from store.models import Attachment, Ticket
from tests.inbound.conftest import CUSTOMER, DOMAIN, SmtpServer, World, seed, send
from tests.web.test_pages import setup_shop, token
from web.app import create_app

DATA = Path(__file__).resolve().parents[1] / "data"
APPLE = "apple_inline_image_en.eml"
APPLE_CID = "7A6B5C4D-3E2F-4A1B-9C8D-7E6F5A4B3C2D"
NOT_VALID = "Link not valid"


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def png_of(mail: bytes) -> bytes:
    from inbound.parse import parse_mail

    [part] = parse_mail(mail).attachments
    assert part.data is not None
    return part.data


@pytest.fixture
def world(runtime: Runtime) -> World:
    return seed(runtime)


@pytest.fixture
def smtp(world: World) -> Iterator[SmtpServer]:
    server = SmtpServer(world.runtime)
    yield server
    server.stop()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime)) as test_client:
        yield test_client


def mailed(smtp: SmtpServer, world: World, mail: bytes) -> int:
    """The number of the ticket the mail opened."""
    code, answer = send(smtp, mail, rcpt=f"support@{DOMAIN}")
    assert code == 250, answer
    with world.runtime.sessions() as session:
        return session.scalars(select(Ticket.number)).one()


def page_of(client: TestClient, world: World, number: int,
            party: Role = Role.CUSTOMER) -> httpx.Response:
    page: httpx.Response = client.get(f"/t/{token(world.runtime, 'ticket', number, party)}")
    assert page.status_code == 200
    return page


def links(html: str) -> dict[str, str]:
    """The attachment links of a page, by file name."""
    return {unescape(name): unescape(href)
            for href, name in re.findall(r'<a href="(/f/[^"]+)">([^<]+)</a>', html)}


def images(html: str) -> list[str]:
    return [unescape(src) for src in re.findall(r'<img[^>]* src="([^"]+)"', html)]


def with_disposition_inline(mail: bytes) -> bytes:
    """The same mail as Apple Mail writes it when the picture says it is inline."""
    return mail.replace(b"Content-Id: <", b"Content-Disposition: inline;\n\tfilename=\"shot.png\"\n"
                        b"Content-Id: <", 1)


@pytest.mark.parametrize("says_inline", [False, True],
                         ids=["no-disposition", "disposition-inline"])
def test_an_apple_mail_picture_shows_in_place_through_a_signed_link(
        says_inline: bool, smtp: SmtpServer, world: World, client: TestClient) -> None:
    mail = with_disposition_inline(raw(APPLE)) if says_inline else raw(APPLE)
    number = mailed(smtp, world, mail)
    with world.runtime.sessions() as session:
        assert session.scalars(select(Attachment.content_id)).all() == [APPLE_CID]
    page = page_of(client, world, number)
    assert "img-src 'self'" in page.headers["content-security-policy"]
    formatted = page.text[page.text.index("<details><summary"):]
    [src] = images(formatted)
    assert src.startswith("/f/") and "cid:" not in page.text
    assert 'alt="error screenshot"' in formatted
    shot = client.get(src)
    assert shot.status_code == 200
    assert shot.content == png_of(mail)
    assert shot.headers["content-type"] == "image/png"
    assert shot.headers["content-disposition"].startswith("inline; filename*=UTF-8''")
    assert shot.headers["x-content-type-options"] == "nosniff"
    assert shot.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert list(links(page.text).values()) == [src]  # listed once more, by the same link


def files_mail() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = CUSTOMER, f"support@{DOMAIN}"
    msg["Subject"] = "Files for ABCD1234"
    msg.set_content("The invoice, the page and the drawing.")
    msg.add_alternative('<p>See <img src="cid:gone@example.org" alt="a lost picture"> and '
                        '<a href="cid:also-gone">this</a>.<script>alert(1)</script>'
                        '<img src="https://tracker.example/open.gif" alt="pixel">'
                        '<img src="/w/tickets" alt="ours"></p>', subtype="html")
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf",
                       filename="invoice.pdf")
    msg.add_attachment(b"<script>alert(document.cookie)</script>", maintype="text",
                       subtype="html", filename="page.html")
    msg.add_attachment(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                       b"</svg>", maintype="image", subtype="svg+xml", filename="drawing.svg")
    return msg.as_bytes(policy=SMTP_POLICY)


def test_files_download_and_only_pictures_are_shown(smtp: SmtpServer, world: World,
                                                     client: TestClient) -> None:
    number = mailed(smtp, world, files_mail())
    page = page_of(client, world, number, Role.VENDOR)
    found = links(page.text)
    assert sorted(found) == ["drawing.svg", "invoice.pdf", "page.html"]
    pdf = client.get(found["invoice.pdf"])
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.4 invoice"
    assert pdf.headers["content-type"] == "application/octet-stream"
    assert pdf.headers["content-disposition"] == "attachment; filename*=UTF-8''invoice.pdf"
    for name in ("page.html", "drawing.svg"):  # never rendered by the browser
        served = client.get(found[name])
        assert served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"].startswith("attachment;")
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
    # a picture the mail does not carry is dropped (its words stay), no cid: link is left,
    # and no other picture is fetched: neither a tracking pixel nor one of our own pages
    formatted = page.text[page.text.index("<details><summary"):]
    assert images(formatted) == [] and "cid:" not in page.text
    assert "<script>" not in formatted and '<img alt="a lost picture">' in formatted
    assert '<img alt="pixel">' in formatted and '<img alt="ours">' in formatted


def test_a_hostile_file_name_stays_inside_its_header(runtime: Runtime) -> None:
    setup_shop(runtime)
    name = 'a"b\r\nSet-Cookie: stolen=1;\r\n\r\n<h1>x.png'
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(
            session, runtime.context(), "ABCD1234", TicketType.TECH_SUPPORT,
            Actor(Role.CUSTOMER, "ann@example.org", source="email"), comment="see file",
            origin=MailOrigin(attachments=(
                StoredAttachment(name, "image/png", 3, b"png", "s1"),))).number
    with TestClient(create_app(runtime)) as client:
        page = client.get(f"/t/{token(runtime, 'ticket', number)}").text
        [href] = links(page).values()
        served = client.get(href)
    assert served.status_code == 200 and "set-cookie" not in served.headers
    assert served.headers["content-disposition"] == (
        "inline; filename*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20stolen%3D1%3B%0D%0A%0D%0A"
        "%3Ch1%3Ex.png")
    assert "<h1>" not in page.split("Attachments", 1)[1]


def test_forged_other_and_expired_links(smtp: SmtpServer, world: World,
                                        client: TestClient) -> None:
    number = mailed(smtp, world, raw(APPLE))
    [href] = links(page_of(client, world, number).text).values()
    _, _, signed, name = href.split("/", 3)
    forged = signed[:-2] + ("aa" if not signed.endswith("aa") else "bb")
    ticket_token = token(world.runtime, "ticket", number)  # good, but for the page
    not_ours = client.get("/t/" + forged)  # the page every bad link answers
    for path in (f"/f/{forged}/{name}", f"/f/{ticket_token}/{name}", f"/f/nonsense/{name}"):
        answer = client.get(path)
        assert answer.status_code == 404 and NOT_VALID in answer.text, path
        assert answer.text == not_ours.text
    clock = world.runtime.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(days=world.runtime.settings.link_ttl_days + 1))
    expired = client.get(href)
    assert expired.status_code == 410 and "Link expired" in expired.text


def test_a_file_too_large_to_keep_says_so_in_the_viewers_language(runtime: Runtime) -> None:
    setup_shop(runtime, locale="pt")
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(
            session, runtime.context(), "ABCD1234", TicketType.TECH_SUPPORT,
            Actor(Role.CUSTOMER, "ann@example.org", source="email"), comment="o vídeo",
            origin=MailOrigin(attachments=(
                StoredAttachment("video.mp4", "video/mp4", 10**8, None, "s1"),))).number
        tickets.act(session, runtime.context(), number, Action.REPLY,
                    Actor(Role.VENDOR, "sales@acme.example", source="email"), comment="ok")
        [attachment_id] = session.scalars(select(Attachment.id)).all()
    with TestClient(create_app(runtime)) as client:
        page = client.get(f"/t/{token(runtime, 'ticket', number)}").text
        assert links(page) == {}  # listed, not linked, said in the customer's language
        too_large = i18n.gettext("%(size)s, too large to keep", locale="pt") % {"size": ""}
        assert "video.mp4 (" in page and too_large in page and too_large != ", too large to keep"
        answer = client.get(f"/f/{token(runtime, 'attachment', attachment_id)}/video.mp4")
    assert answer.status_code == 410
    assert answer.headers["content-language"] == "pt"
    assert i18n.say(_("Attachment not kept"), "pt") in answer.text


# --- the REST API: attachments by id, for a key that may see the ticket -----------------------


def api_key(runtime: Runtime, vendor: str | None) -> dict[str, str]:
    with runtime.sessions.begin() as session:
        made, _, _ = apikeys.create_key(session, runtime.context(), vendor_nick=vendor,
                                        staff=vendor is None)
    return {"Authorization": f"Bearer {made}"}


def test_the_api_serves_a_tickets_attachments_to_keys_that_see_it(
        smtp: SmtpServer, world: World, client: TestClient) -> None:
    runtime = world.runtime
    number = mailed(smtp, world, files_mail())
    with runtime.sessions.begin() as session:
        vendors.add_vendor(session, runtime.context(), Actor(Role.STAFF, source="cli"),
                           "globex", "shop@globex.example")
        other = tickets.open_ticket(session, runtime.context(), "SUBS5678",
                                    TicketType.TECH_SUPPORT, Actor(Role.STAFF, source="cli"),
                                    comment="another ticket").number
    acme, globex, staff = api_key(runtime, "acme"), api_key(runtime, "globex"), api_key(
        runtime, None)
    shown = client.get(f"/api/v1/tickets/{number}", headers=acme).json()
    files = {a["filename"]: a["id"] for m in shown["messages"] for a in m["attachments"]}
    assert sorted(files) == ["drawing.svg", "invoice.pdf", "page.html"]
    for key in (acme, staff):
        pdf = client.get(f"/api/v1/tickets/{number}/attachments/{files['invoice.pdf']}",
                         headers=key)
        assert pdf.status_code == 200 and pdf.content == b"%PDF-1.4 invoice"
        assert pdf.headers["content-disposition"] == "attachment; filename*=UTF-8''invoice.pdf"
    svg = client.get(f"/api/v1/tickets/{number}/attachments/{files['drawing.svg']}",
                     headers=acme)
    assert svg.headers["content-type"] == "application/octet-stream"
    for path, key in ((f"/api/v1/tickets/{number}/attachments/{files['invoice.pdf']}", globex),
                      (f"/api/v1/tickets/{other}/attachments/{files['invoice.pdf']}", staff),
                      (f"/api/v1/tickets/{number}/attachments/999999", acme)):
        refused = client.get(path, headers=key)
        assert refused.status_code == 404, path
        assert refused.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/tickets/{number}/attachments/{files['invoice.pdf']}"
                      ).status_code == 401


def test_the_api_says_a_file_was_too_large_to_keep(runtime: Runtime) -> None:
    setup_shop(runtime)
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(
            session, runtime.context(), "ABCD1234", TicketType.TECH_SUPPORT,
            Actor(Role.CUSTOMER, "ann@example.org", source="email"), comment="the video",
            origin=MailOrigin(attachments=(
                StoredAttachment("video.mp4", "video/mp4", 10**8, None, "s1"),))).number
        [attachment_id] = session.scalars(select(Attachment.id)).all()
    with TestClient(create_app(runtime)) as client:
        answer = client.get(f"/api/v1/tickets/{number}/attachments/{attachment_id}",
                            headers=api_key(runtime, None))
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "not_kept"
    assert "video.mp4" in answer.json()["error"]["message"]
