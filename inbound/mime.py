"""Walk a mail's MIME tree: its text, HTML and attachments, and what a delivery report says."""

from __future__ import annotations

import email.policy
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any

import nh3
from tnefparse import TNEF

from gateway.domain.inline_images import CID_SCHEME, cid_filter, cid_url, content_id
from inbound import html_text
from inbound.decode import clean, decode_bytes, decode_header_value

MAX_DEPTH = 40  # MIME nesting we follow; deeper parts are recorded as a defect
MAX_RETURNED_IDS = 10  # Message-IDs of returned mail read from one delivery report
# The part of a delivery report that returns the mail, or only its headers (RFC 3462
# section 2, RFC 6533 for the `global` forms); `message/rfc822-headers` is what some servers
# write instead of `text/rfc822-headers`.
_RETURNED_HEADERS = ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
# ours are ASCII; nothing else is looked up (lone surrogates of raw 8-bit headers could not be)
_PERMANENT = re.compile(r"5\.\d{1,3}\.\d{1,3}(?!\d)")  # a Status that retrying will not change
_ANGLE_ID = re.compile(r"<[!-;=?-~]{1,250}>")
_UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
# nh3's own list and `cid:`, which `inline_images.cid_filter` keeps on `img src` only: an HTML
# mail's pictures name the parts that carry them (RFC 2392)
_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {CID_SCHEME}


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None
    too_large: bool = False
    content_id: str | None = None  # without <>: what `cid:` URLs in the mail's HTML name


class Body:
    """Collects the text, HTML, attachments and delivery status of one message walk."""

    def __init__(self, max_bytes: int, defects: list[str]) -> None:
        self.max_bytes = max_bytes
        self.defects = defects
        self.plain: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.is_report = False
        self.bounced: list[str] = []
        self.permanent: list[str] = []  # of those, the ones whose own status is 5.x.x
        self.returned_ids: list[str] = []  # Message-IDs of the mail a report returns
        self.tnef_bodies: list[tuple[str, str]] = []  # (text/plain or text/html, text)

    def walk(self, part: Message, depth: int, *, inside_attachment: bool) -> None:
        if depth > MAX_DEPTH:
            self.defects.append(f"MIME nesting deeper than {MAX_DEPTH} parts ignored")
            return
        ctype = part.get_content_type()
        self.defects.extend(f"{ctype}: {type(d).__name__}" for d in part.defects)
        if ctype == "multipart/report":
            report_type = str(part.get_param("report-type", "") or "").lower()
            self.is_report = self.is_report or report_type == "delivery-status"
        if ctype == "message/delivery-status":
            for address, permanent in _final_recipients(part):
                self.bounced.append(address)
                if permanent:
                    self.permanent.append(address)
            return
        if ctype in ("message/rfc822", "message/global"):
            if self.is_report:
                for inner in _subparts(part):
                    self._returned(inner)
            self._attach(part, ctype, _payload_bytes(part))
            return
        if part.is_multipart():
            attached = inside_attachment or part.get_content_disposition() == "attachment"
            for sub in _subparts(part):
                self.walk(sub, depth + 1, inside_attachment=attached)
            return
        data = _payload_bytes(part)
        self.defects.extend(f"{ctype}: {type(d).__name__}" for d in part.defects)
        if self.is_report and ctype in _RETURNED_HEADERS:
            self._returned(BytesHeaderParser(policy=email.policy.compat32).parsebytes(data))
        filename = _filename(part)
        if (ctype == "application/ms-tnef" or filename.lower() == "winmail.dat") and \
                self._unpack_tnef(data):
            return
        is_body = ctype in ("text/plain", "text/html") and not filename
        if inside_attachment or not is_body or part.get_content_disposition() == "attachment":
            self._attach(part, ctype, data, filename)
            return
        text = decode_bytes(data, part.get_content_charset(), self.defects)
        (self.htmls if ctype == "text/html" else self.plain).append(text)

    def _attach(self, part: Message, ctype: str, data: bytes, filename: str = "") -> None:
        index = len(self.attachments) + 1
        name = sanitize_filename(filename) or _generated_name(index, ctype)
        too_large = len(data) > self.max_bytes
        self.attachments.append(ParsedAttachment(
            filename=name, content_type=ctype, size=len(data),
            data=None if too_large else data, too_large=too_large,
            content_id=content_id(clean(str(part.get("Content-ID", "")))),
        ))

    def _unpack_tnef(self, data: bytes) -> bool:
        """Outlook's `winmail.dat` (TNEF): its files become the mail's attachments, its body the
        mail's text when the mail has no other. False when it cannot be read (it is then
        kept as the attachment it is)."""
        try:
            tnef = TNEF(data)
        except Exception as exc:  # noqa: BLE001 - tnefparse raises several kinds on bad data
            self.defects.append(f"application/ms-tnef: unreadable ({type(exc).__name__})")
            return False
        for found in tnef.attachments:
            name = _tnef_name(found)
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self._attach(Message(), ctype, bytes(found.data or b""), name)
        if isinstance(tnef.htmlbody, str | bytes) and tnef.htmlbody:
            self.tnef_bodies.append(("text/html", _tnef_text(tnef.htmlbody, tnef.codepage)))
        elif isinstance(tnef.body, str | bytes) and tnef.body:
            self.tnef_bodies.append(("text/plain", _tnef_text(tnef.body, tnef.codepage)))
        return True

    def _returned(self, returned: Message) -> None:
        """Keep the Message-ID of the mail a delivery report returns: a report that quotes one
        of ours is about that mail (SPEC 8)."""
        for value in returned.get_all("Message-ID", []):
            found = _ANGLE_ID.search(str(value))
            if found and len(self.returned_ids) < MAX_RETURNED_IDS:
                self.returned_ids.append(found.group(0))

    def _tnef_fallback(self) -> None:
        """A mail whose only body is in its winmail.dat has that body (once)."""
        if not self.plain and not self.htmls:
            for ctype, text in self.tnef_bodies:
                (self.htmls if ctype == "text/html" else self.plain).append(text)

    def text(self) -> str:
        self._tnef_fallback()
        if self.plain:
            text = "\n".join(self.plain)
        elif self.htmls:
            text = html_to_text("\n".join(self.htmls))
        else:
            text = ""
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def html(self) -> str | None:
        self._tnef_fallback()
        return clean_html("\n".join(self.htmls)) if self.htmls else None


def _tnef_name(found: Any) -> str:
    try:
        return str(found.long_filename() or found.name or "")
    except Exception:  # noqa: BLE001 - a broken name property: a generated name instead
        return ""


def _tnef_text(value: str | bytes, codepage: str | None) -> str:
    if isinstance(value, str):
        return value.rstrip("\x00")
    return decode_bytes(value, codepage or "cp1252", []).rstrip("\x00")


def _subparts(part: Message) -> Iterator[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        yield from (p for p in payload if isinstance(p, Message))
    elif isinstance(payload, Message):
        yield payload


def _payload_bytes(part: Message) -> bytes:
    """The decoded body of a leaf part (or the bytes of an attached message)."""
    if part.is_multipart():
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(first, Message):
            try:
                return first.as_bytes(policy=email.policy.compat32)
            except Exception:  # noqa: BLE001 - keep the attachment even if it cannot be re-serialised
                return b""
        return b""
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return str(data or "").encode("utf-8", "surrogateescape")


def _final_recipients(part: Message) -> Iterator[tuple[str, bool]]:
    """Each Final-Recipient of a message/delivery-status part (RFC 3464 section 2.3), and
    whether its own delivery failed for good: its Status is 5.x.x and its Action `failed`
    (or absent). One report may carry a permanent failure for one recipient and a delay for
    another; each counts for its own address only."""
    blocks = list(_subparts(part))
    if blocks:
        fields = [(str(b.get("Final-Recipient", "")), str(b.get("Action", "")),
                   str(b.get("Status", ""))) for b in blocks]
    else:
        text = _payload_bytes(part).decode("utf-8", "replace")
        fields = [(_field(block, "Final-Recipient"), _field(block, "Action"),
                   _field(block, "Status")) for block in re.split(r"\r?\n[ \t]*\r?\n", text)]
    for recipient, action, status in fields:
        addr = recipient.split(";", 1)[-1].strip().strip("<>").lower()
        if "@" in addr:
            permanent = (_PERMANENT.match(status.strip()) is not None
                         and action.strip().lower() in ("", "failed"))
            yield clean(addr), permanent


def _field(block: str, name: str) -> str:
    found = re.search(rf"(?im)^{name}:[ \t]*(.+)$", block)
    return found.group(1) if found else ""


def clean_html(html: str) -> str:
    """The mail's HTML as nh3 cleans it, keeping `<img src="cid:…">` (nothing else widened)."""
    return nh3.clean(html, url_schemes=_URL_SCHEMES,
                     attribute_filter=cid_filter(cid_url))


def html_to_text(html: str) -> str:
    """Plain text for an HTML-only mail, without Markdown (blockquotes become `>` lines;
    `inbound.html_text`)."""
    try:
        return html_text.html_to_text(html)
    except Exception:  # noqa: BLE001 - fall back to the text with every tag removed
        return nh3.clean(nh3.clean(html), tags=set()).strip()


def sanitize_filename(name: str) -> str:
    """A file name without directories, control or format characters (bidi overrides)."""
    name = decode_header_value(name) if "=?" in name else name
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
    name = name.strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    return name


def _generated_name(index: int, ctype: str) -> str:
    if ctype in ("message/rfc822", "message/global"):
        return f"attachment-{index}.eml"
    fallback = ".txt" if ctype.startswith("text/") else ".bin"
    return f"attachment-{index}{mimetypes.guess_extension(ctype) or fallback}"


def _filename(part: Message) -> str:
    try:
        return str(part.get_filename() or "")
    except Exception:  # noqa: BLE001 - a broken RFC 2231 parameter means no usable name
        return ""
