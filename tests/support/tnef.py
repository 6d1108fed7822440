"""A minimal TNEF (`winmail.dat`) writer for test fixtures: no maintained Python TNEF writer
exists, so this one writes the attribute stream of [MS-OXTNEF] section 2.1.3 by hand.

Layout: the signature 0x223E9F78 and a legacy key (2 bytes), then attributes, each a level
byte (1 message, 2 attachment), the attribute id (uint16) and type (uint16), the length
(uint32), the data, and a checksum (uint16: the sum of the data's bytes modulo 65536). An
attachment starts with attAttachRendData; attAttachTitle names it, attAttachData holds it. The
message body is attBody, in the code page of attOemCodepage. tnefparse reads it back (the test
of the fixture checks that), and tests/data/outlook_tnef_en.eml was written with it.
"""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LEVEL_MESSAGE, LEVEL_ATTACHMENT = 1, 2
# attribute ids and types ([MS-OXTNEF] 2.1.3.3 and 2.1.3.4)
ATT_TNEF_VERSION, ATT_OEM_CODEPAGE, ATT_BODY = 0x9006, 0x9007, 0x800C
ATT_ATTACH_REND_DATA, ATT_ATTACH_TITLE, ATT_ATTACH_DATA = 0x9002, 0x8010, 0x800F
T_STRING, T_TEXT, T_BYTE, T_DWORD = 0x0001, 0x0002, 0x0006, 0x0008


def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
    return (struct.pack("<BHHI", level, name, kind, len(data)) + data
            + struct.pack("<H", sum(data) & 0xFFFF))


def build_tnef(body: str, files: list[tuple[str, bytes]], codepage: int = 1252) -> bytes:
    """A winmail.dat with `body` (plain text) and `files` (name, bytes)."""
    out = struct.pack("<IH", SIGNATURE, 0x0001)
    out += attribute(LEVEL_MESSAGE, ATT_TNEF_VERSION, T_DWORD, struct.pack("<I", 0x00010000))
    out += attribute(LEVEL_MESSAGE, ATT_OEM_CODEPAGE, T_BYTE, struct.pack("<II", codepage, 0))
    out += attribute(LEVEL_MESSAGE, ATT_BODY, T_TEXT, body.encode(f"cp{codepage}"))
    for name, data in files:
        out += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_REND_DATA, T_BYTE, bytes(14))
        out += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, T_STRING, name.encode() + b"\0")
        out += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_DATA, T_BYTE, data)
    return out
