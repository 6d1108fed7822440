"""Building outbound mail: structure, headers, and no way for outside text to add a header."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.locales import LOCALES
from outbound.message import LOOP_HEADER, build_message, clean_header, display_name
from outbound.render import Rendered, Renderer
from tests.outbound import every_mail, make_ctx

DOMAIN = "tickets.example"
# Message-IDs as the outbox rows carry them (gateway.services.journal.new_message_id)
OWN_ID = "<q3kzv7xw2m5cbn4ahr6tydj2ue@tickets.example>"
PARENT_ID = "<b7m2x4c9k5d3fw6hq8rzt2nyjp@tickets.example>"
FIRST_ID = "<h6f3t8w2q9z5kx4mcb7rvd2jne@tickets.example>"
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
        "message_id": OWN_ID,
        "ticket_number": 1042,
        "event": "reply",
        "in_reply_to": PARENT_ID,
        "references": [FIRST_ID, PARENT_ID],
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
    assert msg["Message-ID"] == OWN_ID
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
    assert msg["In-Reply-To"] == PARENT_ID
    # the folder may start a long References on its own line; readers split on whitespace
    assert msg["References"].split() == [FIRST_ID, PARENT_ID]
    assert msg["Date"].datetime == WHEN
    lone = parse(build(in_reply_to="<in-1@mail.example>", references=[]))
    assert lone["References"].split() == ["<in-1@mail.example>"]
    first = parse(build(in_reply_to=None, references=[]))
    assert first["In-Reply-To"] is None and first["References"] is None


def test_the_same_row_built_twice_gives_the_same_bytes() -> None:
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


# What a customer may be called: RFC 5322 specials, quotes and backslashes, non-ASCII, line
# breaks and other controls, and long runs of one character.
NAME_PARTS = st.one_of(
    st.sampled_from([",", ";", ":", "@", '"', "<", ">", "(", ")", "\\", "[", "]", ".", " ",
                     "\r\n", "\n", "\t", "=?", "?=", "=?utf-8?q?x?=", "Bcc: evil@x",
                     "évil@attacker.test", "Ünïcødé", "日本語", "\U0001f600", "\u202e"]),
    st.text(min_size=1, max_size=4),
    st.integers(1, 120).map(lambda n: "x" * n),
)
HOSTILE = "Eve, evil@attacker.test " + "x" * 60


def header_lines(raw: bytes, name: str) -> list[bytes]:
    """The physical lines of header `name`: its first line and the folded ones after it."""
    lines: list[bytes] = []
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if lines and line[:1] in (b" ", b"\t"):
            lines.append(line)
        elif lines:
            break
        elif line.lower().startswith(name.lower().encode() + b":"):
            lines.append(line)
    assert lines, f"no {name} header"
    return lines


def squeezed(text: str) -> str:
    return "".join(text.split())


def assert_one_address(raw: bytes, header: str, address: str, name: str) -> None:
    """Both of CPython's readers find exactly `address`, named `name` (whitespace aside)."""
    intended = display_name(name)
    msg = message_from_bytes(raw, policy=policy.default)
    assert set(k.lower() for k in msg) <= TOP  # nothing of the name became a header
    (parsed,) = msg[header].addresses
    assert parsed.addr_spec == address
    # policy.default reads the fold between two encoded words as a space (RFC 2047 section
    # 6.2 says to drop it), so only the characters are compared here
    assert squeezed(parsed.display_name) == squeezed(intended)
    old = message_from_bytes(raw, policy=policy.compat32)
    pairs = getaddresses([str(v) for v in old.get_all(header, [])])
    assert [spec for _, spec in pairs] == [address]
    decoded = str(make_header(decode_header(pairs[0][0])))  # what an RFC 2047 reader shows
    assert " ".join(decoded.split()) == intended


def test_a_name_with_a_comma_and_an_address_is_one_recipient() -> None:
    raw = build(to_name=HOSTILE, from_name=HOSTILE)
    assert_one_address(raw, "To", "ann@example.org", HOSTILE)
    assert_one_address(raw, "From", f"support@{DOMAIN}", HOSTILE)
    assert display_name(HOSTILE) == HOSTILE.strip()


@settings(max_examples=400, deadline=None)
@given(name=st.lists(NAME_PARTS, max_size=12).map("".join))
@example(name=HOSTILE)
@example(name='"Eve" <evil@attacker.test>, mallory@evil.example')
@example(name="Ann\r\nBcc: evil@attacker.test")
@example(name="x" * 400)
@example(name="\\" * 30 + '"' * 30)
def test_any_display_name_reads_back_as_exactly_one_address(name: str) -> None:
    raw = build(to_name=name, from_name=name)
    assert all(len(line) <= 78 for line in header_lines(raw, "From") + header_lines(raw, "To"))
    assert_one_address(raw, "To", "ann@example.org", name)
    assert_one_address(raw, "From", f"support@{DOMAIN}", name)


@given(name=st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=200))
def test_a_display_name_keeps_every_visible_character(name: str) -> None:
    assert display_name(name) == " ".join(name.split())
