"""Turn the raw bytes of an inbound mail into a ParsedMail, whatever the bytes are."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import html2text
import mailparser
import nh3

# mail-parser logs a warning for every body part that is neither text/plain nor
# text/html ("Email content 'mixed' not handled"); we read those parts ourselves.
logging.getLogger("mailparser").setLevel(logging.ERROR)

MAX_DEPTH = 40  # MIME nesting we follow; deeper parts are recorded as a defect
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<([^<>]*)>")
_WESTERN = {"us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin-1", "latin1", "windows-1252",
            "cp1252", "iso-8859-15", "unknown-8bit", "x-unknown", "8bit", "default"}
# Declared charsets that real mail uses for a bigger character set (WHATWG Encoding mapping).
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "ks_c_5601-1987": "cp949",
              "euc-kr": "cp949", "shift_jis": "cp932", "x-sjis": "cp932", "big5": "big5hkscs",
              "iso-2022-jp": "iso2022_jp_ext", "tis-620": "cp874", "iso-8859-9": "cp1254"}
_UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B")


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None
    too_large: bool = False


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
        raw_headers.setdefault(str(name).strip().lower(), []).append(_unfold(value))
    headers = {name: [decode_header_value(v) for v in vs] for name, vs in raw_headers.items()}
    if not from_pairs or not from_pairs[0][1]:
        from_pairs = _addresses(raw_headers.get("from", []))
    from_name, from_addr = from_pairs[0] if from_pairs else ("", "")
    body = _Body(max_bytes, defects)
    if with_body:
        body.walk(msg, 0, inside_attachment=False)
    return ParsedMail(
        sha256=digest,
        message_id=_message_id(raw_headers.get("message-id", [])),
        from_addr=_clean(str(from_addr)).replace(" ", "").lower(),
        from_name=_clean(decode_header_value(str(from_name))),
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
        auth_results=[_clean(v) for v in raw_headers.get("authentication-results", [])],
        received_count=len(raw_headers.get("received", [])),
    )


class _Body:
    """Collects the text, HTML, attachments and delivery status of one message walk."""

    def __init__(self, max_bytes: int, defects: list[str]) -> None:
        self.max_bytes = max_bytes
        self.defects = defects
        self.plain: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.is_report = False
        self.bounced: list[str] = []

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
            self.bounced.extend(_final_recipients(part))
            return
        if ctype in ("message/rfc822", "message/global"):
            self._attach(part, ctype, _payload_bytes(part))
            return
        if part.is_multipart():
            attached = inside_attachment or part.get_content_disposition() == "attachment"
            for sub in _subparts(part):
                self.walk(sub, depth + 1, inside_attachment=attached)
            return
        data = _payload_bytes(part)
        self.defects.extend(f"{ctype}: {type(d).__name__}" for d in part.defects)
        filename = _filename(part)
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
        ))

    def text(self) -> str:
        if self.plain:
            text = "\n".join(self.plain)
        elif self.htmls:
            text = html_to_text("\n".join(self.htmls))
        else:
            text = ""
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def html(self) -> str | None:
        return nh3.clean("\n".join(self.htmls)) if self.htmls else None


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


def _final_recipients(part: Message) -> Iterator[str]:
    """Final-Recipient addresses of a message/delivery-status part (RFC 3464 section 2.3)."""
    blocks = list(_subparts(part))
    if blocks:
        values = [str(b.get("Final-Recipient", "")) for b in blocks]
    else:
        text = _payload_bytes(part).decode("utf-8", "replace")
        values = re.findall(r"(?im)^Final-Recipient:[ \t]*(.+)$", text)
    for value in values:
        addr = value.split(";", 1)[-1].strip().strip("<>").lower()
        if "@" in addr:
            yield _clean(addr)


def decode_bytes(data: bytes, declared: str | None, defects: list[str]) -> str:
    """Readable text from body bytes, even when the declared charset is missing or wrong."""
    charset = (declared or "").strip().strip('"').lower()
    if b"\x1b" in data and any(esc in data for esc in _JIS_ESCAPES):
        charset = charset if charset.startswith("iso-2022") else "iso-2022-jp"
    codec = _SUPERSETS.get(charset, charset)
    if not charset or charset in _WESTERN:
        # Undeclared or Western: UTF-8 if it is valid UTF-8, otherwise windows-1252, the
        # superset every mail client really means by iso-8859-1 (WHATWG Encoding, section 4.2).
        try:
            return _safe(data.decode("utf-8"))
        except UnicodeDecodeError:
            if charset not in ("windows-1252", "cp1252", "iso-8859-1", "iso8859-1", "latin-1",
                               "latin1"):
                defects.append(f"charset {charset or 'undeclared'!r}: read as windows-1252")
            return _safe(data.decode("cp1252", "replace"))
    try:
        return _safe(data.decode(codec))
    except LookupError:
        defects.append(f"unknown charset {charset!r}: read as utf-8")
        return decode_bytes(data, None, defects)
    except UnicodeError:
        defects.append(f"bytes invalid in charset {charset!r} replaced")
        return _safe(data.decode(codec, "replace"))


def decode_header_value(value: str) -> str:
    """An RFC 2047 header decoded to one line without control characters."""
    value = _from_8bit(value)
    try:
        chunks = decode_header(_unfold(value))
    except Exception:  # noqa: BLE001 - a malformed encoded-word is shown as written
        return _clean(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset, []))
    return _clean("".join(out))


def html_to_text(html: str) -> str:
    """Plain text for an HTML-only mail (blockquotes become `>` lines)."""
    cleaned = nh3.clean(html)
    try:
        converter = html2text.HTML2Text()
        converter.body_width = 0
        converter.ignore_images = True
        return str(converter.handle(cleaned)).strip()
    except Exception:  # noqa: BLE001 - fall back to the text with every tag removed
        return nh3.clean(cleaned, tags=set()).strip()


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


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses([_from_8bit(v) for v in values])
    except Exception:  # noqa: BLE001
        return []
    return [(name, _clean(addr).replace(" ", "").lower()) for name, addr in pairs if addr]


def _message_id(values: list[str]) -> str | None:
    if not values:
        return None
    found = _MSGID.search(values[0])
    value = _clean(found.group(1) if found else values[0]).strip()
    return value or None


def _ids(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        found = [_clean(i).strip() for i in _MSGID.findall(value)]
        ids.extend(i for i in (found or _clean(value).split()) if i)
    return list(dict.fromkeys(ids))


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _from_8bit(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or junk) arrive surrogate-escaped."""
    if _ESCAPED_BYTE.search(value):
        return decode_bytes(value.encode("utf-8", "surrogateescape"), None, [])
    return value


def _unfold(value: object) -> str:
    return _FOLD.sub("", str(value))


def _clean(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def _safe(text: str) -> str:
    """Text a database and a web page accept: no NUL, no lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
