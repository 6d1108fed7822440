"""Readable text from a mail's bytes and headers, whatever charset they claim.

The text has nothing a database or a web page refuses (NUL, lone surrogates), and a header
value no control characters."""

from __future__ import annotations

import re
from email.header import decode_header

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WESTERN = {"us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin-1", "latin1", "windows-1252",
            "cp1252", "iso-8859-15", "unknown-8bit", "x-unknown", "8bit", "default"}
# Declared charsets that real mail uses for a bigger character set (WHATWG Encoding mapping).
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "ks_c_5601-1987": "cp949",
              "euc-kr": "cp949", "shift_jis": "cp932", "x-sjis": "cp932", "big5": "big5hkscs",
              "iso-2022-jp": "iso2022_jp_ext", "tis-620": "cp874", "iso-8859-9": "cp1254"}
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B")


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
            return safe(data.decode("utf-8"))
        except UnicodeDecodeError:
            if charset not in ("windows-1252", "cp1252", "iso-8859-1", "iso8859-1", "latin-1",
                               "latin1"):
                defects.append(f"charset {charset or 'undeclared'!r}: read as windows-1252")
            return safe(data.decode("cp1252", "replace"))
    try:
        return safe(data.decode(codec))
    except LookupError:
        defects.append(f"unknown charset {charset!r}: read as utf-8")
        return decode_bytes(data, None, defects)
    except UnicodeError:
        defects.append(f"bytes invalid in charset {charset!r} replaced")
        return safe(data.decode(codec, "replace"))


def decode_header_value(value: str) -> str:
    """An RFC 2047 header decoded to one line without control characters."""
    value = from_8bit(value)
    try:
        chunks = decode_header(unfold(value))
    except Exception:  # noqa: BLE001 - a malformed encoded-word is shown as written
        return clean(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset, []))
    return clean("".join(out))


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def from_8bit(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or junk) arrive surrogate-escaped."""
    if _ESCAPED_BYTE.search(value):
        return decode_bytes(value.encode("utf-8", "surrogateescape"), None, [])
    return value


def unfold(value: object) -> str:
    return _FOLD.sub("", str(value))


def clean(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def safe(text: str) -> str:
    """Text a database and a web page accept: no NUL, no lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
