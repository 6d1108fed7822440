"""Build the bytes of one outbound mail from a rendered mail and its headers.

Every header value that can carry text from outside (a subject, a display name, a file name, a
Message-ID from an inbound mail) is cleaned first: a CR or LF would start a new header
(RFC 5322 section 2.2), and `email.policy.default` raises ValueError on them, which would
fail the same job on every retry. An address header is written here, not by CPython's folder:
folding a long quoted display name, the folder of 3.11 drops the quotes, and a name such as
`Eve, evil@attacker.test xxx…` then reads as three addresses.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, getaddresses
from typing import Final, Protocol

LOOP_HEADER: Final = "X-Ticketgw-Loop"

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators break a header
# line or can be read as one; bidirectional overrides let a name display as something else.
_UNSAFE: Final = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]
    + [*range(0x2066, 0x206A)],
    " ",
)
_SPACES: Final = re.compile(r"\s{2,}")
_MSG_ID: Final = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_HEADER_NAME: Final = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII but ':'
_TOKEN: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]+")
_MAX_REFERENCES: Final = 20
# A display name of plain atoms (RFC 5322 atext) separated by single spaces is written as it
# is; any other is written as RFC 2047 encoded words, which carry every character.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,60}"
_ATOM_NAME: Final = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")
_MAX_LINE: Final = 78  # RFC 5322 section 2.1.1
# 42 bytes are 56 base64 characters: `=?utf-8?b?…?=` is then 68, and `Reply-To: ` + 68 = 78.
_WORD_BYTES: Final = 42
_NAME_LIMIT: Final = 200

# Headers this module sets itself; extra_headers may not replace them.
_OWN: Final = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Language",
        "X-Ticket-Id",
        "X-Ticket-Event",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        LOOP_HEADER,
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)
_EXTRA_NAMES: Final = frozenset(
    {"list-id", "list-unsubscribe", "list-unsubscribe-post", "precedence"}
)


class RenderedMail(Protocol):
    """What `outbound.render.Rendered` offers; kept structural so this module stands alone."""

    @property
    def subject(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str: ...


def clean_header(value: object, *, limit: int = 900) -> str:
    """A header value that cannot add a header: control characters become spaces, runs of
    whitespace collapse, and the result is cut to `limit` characters."""
    text = str(value) if value is not None else ""
    if not text.isprintable():
        text = _SPACES.sub(" ", text.translate(_UNSAFE))
    return text.strip()[:limit]


def build_message(
    rendered: RenderedMail,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str | None,
    reply_to: str,
    locale: str,
    message_id: str,
    ticket_number: int | None,
    event: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    attachments: Iterable[tuple[str, str, bytes]] = (),
    extra_headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
    from_name: str | None = None,
) -> bytes:
    """The mail as bytes ready for SMTP (CRLF line ends).

    `multipart/alternative` (text, then HTML); wrapped in `multipart/mixed` when there are
    attachments. `date` should come from the injected clock; without it, the current time.
    Raises ValueError only for what our own code supplies wrongly: an address that is not an
    address, a malformed `message_id`, or an extra header that would replace one set here.
    """
    msg = EmailMessage(policy=policy.SMTP)
    domain = _domain_of(from_addr)
    _set_address(msg, "From", from_addr, from_name)
    _set_address(msg, "To", to_addr, to_name)
    _set_address(msg, "Reply-To", reply_to, None)
    _set_subject(msg, clean_header(rendered.subject))
    sent = (date or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    msg["Date"] = format_datetime(sent)
    own_id = _msg_id(message_id)
    if own_id is None:
        raise ValueError(f"{message_id!r} is not a Message-ID (<left@right>)")
    msg["Message-ID"] = own_id
    reply_chain = [m for m in (_msg_id(r) for r in references) if m][-_MAX_REFERENCES:]
    parent = _msg_id(in_reply_to) if in_reply_to else None
    if parent:
        msg["In-Reply-To"] = parent
        if parent not in reply_chain:
            reply_chain.append(parent)
    if reply_chain:
        msg["References"] = " ".join(reply_chain)
    if ticket_number is not None:
        msg["X-Ticket-Id"] = str(int(ticket_number))
    msg["X-Ticket-Event"] = _token(event) or "unknown"
    # RFC 3834 section 5: mail sent by a program, not to be answered by other programs.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = domain
    for name, value in (extra_headers or {}).items():
        if not _extra_allowed(name):
            raise ValueError(f"header {name!r} cannot be set as an extra header")
        msg[name] = clean_header(value)

    # Quoted-printable keeps the mail 7-bit clean for relays without 8BITMIME (RFC 6152).
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    digest = hashlib.sha256(f"{own_id}\0{rendered.text}\0{rendered.html}".encode())
    alternative: MIMEPart = msg
    for filename, content_type, data in attachments:
        if alternative is msg:
            msg.make_mixed()
            alternative = next(msg.iter_parts())
        maintype, subtype = _content_type(content_type)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=_filename(filename))
        digest.update(data)
    # Boundaries from a digest of the content, not random: the same mail gives the same bytes,
    # and a digest of the parts cannot occur inside them.
    alternative.set_boundary(f"=_alt_{digest.hexdigest()[:40]}")
    if alternative is not msg:
        msg.set_boundary(f"=_mix_{digest.hexdigest()[:40]}")
    # Set last: turning the message multipart moves every Content-* header into the first part.
    msg["Content-Language"] = _token(locale) or "en"
    return msg.as_bytes()


def _extra_allowed(name: str) -> bool:
    """Extra headers add information (`X-...`, list headers); they never address or replace."""
    if not _HEADER_NAME.fullmatch(name) or name.lower() in _OWN:
        return False
    return name.lower().startswith("x-") or name.lower() in _EXTRA_NAMES


def display_name(name: str | None) -> str:
    """A display name as a mail shows it: control characters and runs of whitespace become
    one space, at most 200 characters."""
    return " ".join(clean_header(name, limit=_NAME_LIMIT).split()) if name else ""


def _set_address(msg: EmailMessage, field: str, addr: str, name: str | None) -> None:
    """`field: name <addr>`, or the bare address when the name would not read back as written
    (exactly one address, that address, that name): a name is a courtesy, the one address
    is not."""
    address = _address(addr)
    display = display_name(name)
    value = _named(field, display, address.addr_spec) if display else None
    if value is None:
        msg[field] = address
    else:
        # lines within 78 characters: the generator writes them as they are, without refolding
        msg.set_raw(field, value)


def _address(addr: str) -> Address:
    spec = clean_header(addr, limit=320)
    local, at, domain = spec.rpartition("@")
    if at and not domain.isascii():
        try:
            spec = f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            pass
    try:
        # The parser rejects anything that is not one plain addr-spec (MessageDefect is a
        # ValueError), so a smuggled second address cannot get through here.
        return Address(addr_spec=spec)
    except (ValueError, HeaderParseError, IndexError):
        raise ValueError(f"{spec!r} is not a mail address") from None


def _named(field: str, display: str, spec: str) -> str | None:
    """The folded value `display <spec>` of header `field`, or None when it cannot be written
    so that it reads back as exactly that one address with that name."""
    if not spec.isascii() or len(spec) + 3 > _MAX_LINE:
        return None  # the address line itself would need the folder
    plain = _ATOM_NAME.fullmatch(display) is not None and "=?" not in display
    words = display.split(" ") if plain else _encoded_words(display)
    value = _fold(len(field) + 2, [*words, f"<{spec}>"])
    return value if _reads_back(field, value, display, spec) else None


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 base64 encoded words of at most 42 bytes each. Readers drop the
    space between two encoded words (RFC 2047 section 6.2), so a word ends after a space of
    the text where it can: the space stays inside it."""
    words: list[str] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode("utf-8", "replace")) > _WORD_BYTES:
            cut = chunk.rfind(" ") + 1 if chunk.rfind(" ") > 0 else len(chunk)
            words.append(_encoded(chunk[:cut]))
            chunk = chunk[cut:]
        chunk += char
    return [*words, _encoded(chunk)] if chunk else words


def _encoded(text: str) -> str:
    data = base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")
    return f"=?utf-8?b?{data}?="


def _fold(used: int, tokens: Sequence[str]) -> str:
    """Tokens joined by spaces, a line broken before the token that would pass 78 characters
    (`used`: what the header's name takes of the first line)."""
    lines = [tokens[0]]
    width = used + len(tokens[0])
    for token in tokens[1:]:
        if width + 1 + len(token) > _MAX_LINE:
            lines.append(token)
            width = 1 + len(token)
        else:
            lines[-1] += " " + token
            width += 1 + len(token)
    return "\r\n ".join(lines)


def _reads_back(field: str, value: str, display: str, spec: str) -> bool:
    """Read with both of CPython's parsers, the value is one address, `spec`, named `display`.
    (`policy.default` keeps the fold between two encoded words as a space, against RFC 2047
    section 6.2; the names are compared without their whitespace.)"""
    unfolded = value.replace("\r\n", "")
    try:
        parsed = policy.default.header_factory(field, unfolded).addresses
    except (ValueError, HeaderParseError, IndexError, AttributeError):
        return False
    pairs = getaddresses([unfolded])
    if len(parsed) != 1 or len(pairs) != 1:
        return False
    if parsed[0].addr_spec != spec or pairs[0][1] != spec:
        return False
    return "".join(parsed[0].display_name.split()) == "".join(display.split())


def _domain_of(addr: str) -> str:
    return clean_header(addr).rpartition("@")[2].strip("<> ").lower() or "localhost"


def _msg_id(value: str | None) -> str | None:
    """A Message-ID kept only when it has the `<left@right>` shape; anything else is dropped."""
    if not value:
        return None
    found = _MSG_ID.search(clean_header(value, limit=998))
    return found.group(0) if found else None


def _token(value: str) -> str:
    text = clean_header(value, limit=64)
    return text if _TOKEN.fullmatch(text) else ""


def _content_type(value: str) -> tuple[str, str]:
    maintype, _, subtype = clean_header(value).split(";", 1)[0].strip().lower().partition("/")
    if _TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype) and maintype != "multipart":
        return maintype, subtype
    return "application", "octet-stream"


def _filename(value: str) -> str:
    # Path separators would let a client save the file elsewhere than its download folder.
    name = clean_header(value, limit=200).replace("/", "_").replace("\\", "_").strip(". ")
    return name or "attachment"


def _set_subject(msg: EmailMessage, subject: str) -> None:
    """CPython's folder (3.11) can drop a space where it splits non-ASCII text into encoded
    words: the space becomes the fold between two of them, and whitespace between encoded
    words is ignored when read (RFC 2047 section 6.2), so "a é b" may arrive as "a éb". The
    older encoder keeps every space inside an encoded word; its lines are short, so the
    generator writes them as they are."""
    if subject.isascii():
        msg["Subject"] = subject
        return
    msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n"))

