"""Turn the raw bytes of an inbound mail into a ParsedMail, whatever the bytes are."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import mailparser

from inbound.decode import clean, decode_header_value, from_8bit, unfold
from inbound.mime import Body, ParsedAttachment

# mail-parser logs a warning for every body part that is neither text/plain nor
# text/html ("Email content 'mixed' not handled"); we read those parts ourselves.
logging.getLogger("mailparser").setLevel(logging.ERROR)

_MSGID = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True)
class ParsedMail:
    sha256: str
    message_id: str | None = None
    from_addr: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""
    html: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    is_delivery_report: bool = False
    bounced_recipients: list[str] = field(default_factory=list)
    # of those, the ones the report says failed for good (their own Status is 5.x.x)
    failed_for_good: list[str] = field(default_factory=list)
    # Message-IDs (`<left@right>`) of the mail a delivery report returns
    returned_message_ids: list[str] = field(default_factory=list)
    auth_results: list[str] = field(default_factory=list)
    received_count: int = 0
    # the new text of a reply (inbound.replies), worked out before the write transaction
    new_text: str | None = None


def header(parsed: ParsedMail, name: str) -> str | None:
    """The first decoded value of header `name`, or None."""
    values = parsed.headers.get(name.lower())
    return values[0] if values else None


def parse_mail(raw: bytes, *, max_attachment_bytes: int = 10_485_760) -> ParsedMail:
    """Parse `raw`; never raises: what cannot be read is listed in `defects`."""
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    msg, from_pairs = _read(raw, defects)
    try:
        return _build(msg, from_pairs, digest, defects, max_attachment_bytes)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises": keep the headers
        defects.append(f"body unreadable: {type(exc).__name__}")
        try:
            heads = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
            return _build(heads, None, digest, defects, 0, with_body=False)
        except Exception as exc2:  # noqa: BLE001
            defects.append(f"headers unreadable: {type(exc2).__name__}")
            return ParsedMail(sha256=digest, defects=defects)


def _read(raw: bytes, defects: list[str]) -> tuple[Message, list[tuple[str, str]] | None]:
    """mail-parser first; the stdlib parser (policy.default, then compat32) for what it cannot."""
    try:
        mp = mailparser.parse_from_bytes(raw)
        for entry in mp.defects:
            for ctype, items in entry.items():
                defects.extend(f"{ctype}: {item}" for item in items)
        return mp.message, list(mp.from_ or [])
    except Exception as exc:  # noqa: BLE001 - mail-parser is best effort, the stdlib is the fallback
        defects.append(f"mail-parser failed: {type(exc).__name__}")
    for policy in (email.policy.default, email.policy.compat32):
        try:
            return email.message_from_bytes(raw, policy=policy), None
        except Exception as exc:  # noqa: BLE001
            name = type(policy).__name__
            defects.append(f"email parser ({name}) failed: {type(exc).__name__}")
    return BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw), None


def _build(
    msg: Message,
    from_pairs: list[tuple[str, str]] | None,
    digest: str,
    defects: list[str],
    max_bytes: int,
    *,
    with_body: bool = True,
) -> ParsedMail:
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        raw_headers.setdefault(str(name).strip().lower(), []).append(unfold(value))
    headers = {name: [decode_header_value(v) for v in vs] for name, vs in raw_headers.items()}
    if not from_pairs or not from_pairs[0][1]:
        from_pairs = _addresses(raw_headers.get("from", []))
    from_name, from_addr = from_pairs[0] if from_pairs else ("", "")
    body = Body(max_bytes, defects)
    if with_body:
        body.walk(msg, 0, inside_attachment=False)
    return ParsedMail(
        sha256=digest,
        message_id=_message_id(raw_headers.get("message-id", [])),
        from_addr=clean(str(from_addr)).replace(" ", "").lower(),
        from_name=clean(decode_header_value(str(from_name))),
        to=[addr for _, addr in _addresses(raw_headers.get("to", []))],
        cc=[addr for _, addr in _addresses(raw_headers.get("cc", []))],
        subject=headers.get("subject", [""])[0],
        in_reply_to=_ids(raw_headers.get("in-reply-to", [])),
        references=_ids(raw_headers.get("references", [])),
        headers=headers,
        text=body.text(),
        html=body.html(),
        attachments=body.attachments,
        defects=list(dict.fromkeys(defects)),
        is_delivery_report=body.is_report,
        bounced_recipients=list(dict.fromkeys(body.bounced)),
        failed_for_good=list(dict.fromkeys(body.permanent)),
        returned_message_ids=list(dict.fromkeys(body.returned_ids)),
        auth_results=[clean(v) for v in raw_headers.get("authentication-results", [])],
        received_count=len(raw_headers.get("received", [])),
    )


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses([from_8bit(v) for v in values])
    except Exception:  # noqa: BLE001
        return []
    return [(name, clean(addr).replace(" ", "").lower()) for name, addr in pairs if addr]


def _message_id(values: list[str]) -> str | None:
    if not values:
        return None
    found = _MSGID.search(values[0])
    value = clean(found.group(1) if found else values[0]).strip()
    return value or None


def _ids(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        found = [clean(i).strip() for i in _MSGID.findall(value)]
        ids.extend(i for i in (found or clean(value).split()) if i)
    return list(dict.fromkeys(ids))
