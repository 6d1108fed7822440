"""Building outbound mail: structure, headers, and no way for outside text to add a header."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.locales import LOCALES
from outbound.message import LOOP_HEADER, build_message, clean_header, message_id_for
from outbound.render import Rendered, Renderer
from tests.outbound import every_mail, make_ctx

DOMAIN = "tickets.example"
WHEN = datetime(2026, 3, 5, 9, 0, 7, tzinfo=UTC)
# What an inbound subject `=?utf-8?q?hi=0D=0ABcc:_evil@x?=` decodes to.
INJECTED = "hi\r\nBcc: evil@x"
# Headers a built mail has at its top level, besides MIME's own.
TOP = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "content-language",
    "x-ticket-id",
    "x-ticket-event",
    "auto-submitted",
    "x-auto-response-suppress",
    LOOP_HEADER.lower(),
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def build(rendered: Rendered | None = None, **overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "from_addr": f"support@{DOMAIN}",
        "to_addr": "ann@example.org",
        "to_name": "Ann",
        "reply_to": f"reply+abc234@{DOMAIN}",
        "locale": "en",
        "message_id": message_id_for(7, DOMAIN),
        "ticket_number": 1042,
        "event": "reply",
        "in_reply_to": message_id_for(6, DOMAIN),
        "references": [message_id_for(5, DOMAIN), message_id_for(6, DOMAIN)],
        "attachments": [],
        "extra_headers": None,
        "date": WHEN,
    }
    args.update(overrides)
    return build_message(rendered or Rendered("Subject", "text\n", "<p>html</p>"), **args)


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        for name in part:
            assert not part[name].defects, (name, part[name].defects)
    return msg


def assert_no_smuggled_header(msg: EmailMessage) -> None:
    assert set(k.lower() for k in msg) <= TOP
    assert msg["Bcc"] is None and msg["Cc"] is None
    for part in msg.walk():
        assert part["Bcc"] is None


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("event", "audience", "kind"), every_mail())
def test_every_mail_builds_and_parses_back_clean(
    renderer: Renderer, event: str, audience: str, kind: str | None, locale: str
) -> None:
    ctx = make_ctx(event, notice_kind=kind)
    rendered = renderer.render(event, audience, locale, ctx)
    number = ctx["ticket"]["number"] if ctx["ticket"] else None
    raw = build(rendered, locale=locale, event=event, ticket_number=number)
    msg = parse(raw)
    assert msg["Subject"] == rendered.subject
    assert msg["From"] == f"support@{DOMAIN}"
    assert msg["To"].addresses[0].addr_spec == "ann@example.org"
    assert msg["Reply-To"] == f"reply+abc234@{DOMAIN}"
    assert msg["Content-Language"] == locale
    assert msg["X-Ticket-Event"] == event
    assert msg["X-Ticket-Id"] == (str(number) if number is not None else None)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg[LOOP_HEADER] == DOMAIN
    assert msg["Message-ID"] == "<outbox-7.ticketgw@tickets.example>"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    # the parts travel with CRLF line ends (policy.SMTP); their text is what was rendered
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == rendered.html.rstrip("\n")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()


def test_headers_for_threading_and_date() -> None:
    msg = parse(build())
    assert msg["In-Reply-To"] == "<outbox-6.ticketgw@tickets.example>"
    # the folder may start a long References on its own line; readers split on whitespace
    assert msg["References"].split() == [
        "<outbox-5.ticketgw@tickets.example>",
        "<outbox-6.ticketgw@tickets.example>",
    ]
    assert msg["Date"].datetime == WHEN
    lone = parse(build(in_reply_to="<in-1@mail.example>", references=[]))
    assert lone["References"].split() == ["<in-1@mail.example>"]
    first = parse(build(in_reply_to=None, references=[]))
    assert first["In-Reply-To"] is None and first["References"] is None


def test_message_id_is_stable_per_outbox_row() -> None:
    assert message_id_for(42, DOMAIN) == "<outbox-42.ticketgw@tickets.example>"
    assert message_id_for(42, DOMAIN) == message_id_for(42, DOMAIN)
    assert message_id_for(42, DOMAIN) != message_id_for(43, DOMAIN)
    # the same row rendered twice gives the same bytes
    assert build() == build()


def test_mail_of_no_ticket_has_no_ticket_id() -> None:
    msg = parse(build(ticket_number=None, event="receipt", reply_to=f"support@{DOMAIN}"))
    assert msg["X-Ticket-Id"] is None
    assert msg["Reply-To"] == f"support@{DOMAIN}"


def test_injected_subject_adds_no_header_and_does_not_raise() -> None:
    raw = build(Rendered(f"Re: {INJECTED}", "t\n", "<p>h</p>"))
    assert b"\r\nBcc:" not in raw
    msg = parse(raw)
    assert_no_smuggled_header(msg)
    assert msg["Subject"] == "Re: hi Bcc: evil@x"


def test_injected_display_name_adds_no_header_and_does_not_raise() -> None:
    msg = parse(build(to_name=f"Ann{INJECTED}", from_name="Support\nX-Evil: 1"))
    assert_no_smuggled_header(msg)
    to = msg["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == "ann@example.org"
    assert to[0].display_name == "Annhi Bcc: evil@x"
    assert msg["X-Evil"] is None


def test_injected_filename_adds_no_header_and_does_not_raise() -> None:
    raw = build(
        attachments=[
            (f"report{INJECTED}.pdf", "application/pdf", b"%PDF-1.4"),
            ("../../etc/passwd", "text/plain\r\nBcc: evil@x", b"root"),
        ]
    )
    msg = parse(raw)
    assert_no_smuggled_header(msg)
    files = list(msg.iter_attachments())
    assert [p.get_filename() for p in files] == ["reporthi Bcc: evil@x.pdf", "_.._etc_passwd"]
    assert files[1].get_content_type() == "application/octet-stream"


def test_extra_header_values_are_cleaned_and_names_checked() -> None:
    msg = parse(build(extra_headers={"X-Ticket-Party": f"vendor{INJECTED}"}))
    assert msg["X-Ticket-Party"] == "vendorhi Bcc: evil@x"
    assert msg["Bcc"] is None
    with pytest.raises(ValueError):
        build(extra_headers={"Bcc": "evil@x"})
    with pytest.raises(ValueError):
        build(extra_headers={"X-Ok\r\nBcc": "evil@x"})


def test_inbound_message_ids_are_kept_only_when_well_formed() -> None:
    msg = parse(
        build(
            in_reply_to="<good@mail.example>\r\nBcc: evil@x",
            references=["not an id", "<a@b.example>", "<x@y>\nBcc: evil@x"],
        )
    )
    assert_no_smuggled_header(msg)
    assert msg["In-Reply-To"] == "<good@mail.example>"
    assert msg["References"].split() == ["<a@b.example>", "<x@y>", "<good@mail.example>"]


def test_non_ascii_names_and_subjects_are_encoded() -> None:
    subject = "Ticket eröffnet - Rückerstattungsantrag [Ticket #1042] 日本"
    raw = build(Rendered(subject, "Grüße\n", "<p>Grüße</p>"), to_name='Zoë Müller, "JD"')
    assert raw.isascii()
    msg = parse(raw)
    assert msg["Subject"] == subject
    (to,) = msg["To"].addresses
    assert to.display_name == 'Zoë Müller, "JD"' and to.addr_spec == "ann@example.org"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Grüße"


def test_other_control_characters_never_raise() -> None:
    nasty = "a\x00b\x0bc\x0cd\x1ce\x85f\u2028g\u2029h\u202eevil\tend"
    msg = parse(build(Rendered(nasty, "t\n", "<p>h</p>"), to_name=nasty))
    assert msg["Subject"] == "a b c d e f g h evil end"
    assert_no_smuggled_header(msg)


def test_attachments_wrap_the_alternative_in_mixed() -> None:
    data = bytes(range(256)) * 10
    msg = parse(build(attachments=[("shot.png", "image/png", data)]))
    assert msg.get_content_type() == "multipart/mixed"
    first = next(msg.iter_parts())
    assert first.get_content_type() == "multipart/alternative"
    (attached,) = list(msg.iter_attachments())
    assert attached.get_content_type() == "image/png"
    assert attached.get_content() == data


def test_an_address_that_is_no_address_is_refused() -> None:
    with pytest.raises(ValueError):
        build(to_addr="ann@example.org\r\nBcc: evil@x")
    with pytest.raises(ValueError):
        build(to_addr="not-an-address")
    with pytest.raises(ValueError):
        build(message_id="outbox-7")


def test_international_domains_are_sent_as_idna() -> None:
    msg = parse(build(to_addr="ann@exämple.org"))
    assert msg["To"].addresses[0].domain == "xn--exmple-cua.org"


@settings(max_examples=150, deadline=None)
@given(subject=st.text(max_size=120), name=st.text(max_size=60), filename=st.text(max_size=60))
# the space before "¡" fell where CPython's folder split the encoded words, and was lost
@example(subject="0 00000\xa0¡\xa0¡\xa0¡\xa0¡\xa0\U00010000\U00010000\U00010000\U00010000 ¡ ¡",
         name="", filename="")
def test_no_outside_text_can_add_a_header(subject: str, name: str, filename: str) -> None:
    raw = build(
        Rendered(subject, "t\n", "<p>h</p>"),
        to_name=name,
        attachments=[(filename, "application/pdf", b"x")],
    )
    msg = message_from_bytes(raw, policy=policy.default)
    assert set(k.lower() for k in msg) <= TOP
    assert msg["Subject"] == clean_header(subject)
    assert len(msg["To"].addresses) == 1
