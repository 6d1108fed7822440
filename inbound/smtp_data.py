"""Reading the DATA of a mail in large pieces instead of one line at a time.

aiosmtpd 1.4.6 reads DATA with one `readuntil(b"\\r\\n")` a line and keeps each line as its
own bytearray: a 3 KB reply is some 60 awaits and as many objects, about a tenth of the
listener's CPU a mail (bench/inbound.py). `BulkData.smtp_DATA` gives the same answers and the
same content (tests/inbound/test_smtp_data.py sends the same streams to both) but looks for
the end of data with one `readuntil(b"\\r\\n.\\r\\n")`, taking what the stream has in pieces
when the mail is longer than the reader's limit. The stream is only ever cut after a byte
that no separator can straddle (never right after a CR), and the lines at the start that
could themselves be the end (`.`, CR) are read one by one.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("ticketgw.inbound.smtp")

_END = b"\r\n.\r\n"
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


class DataTooLong(Exception):
    """The DATA broke a limit; `answer` is aiosmtpd's answer for it."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class _Collected:
    """What DATA brought so far, kept while it is within the size limit: in one growing
    buffer that becomes the mail without a copy (a list of pieces joined at the end holds
    the mail twice, and left the listener's peak RSS for a 25 MiB mail 20 MiB higher)."""

    def __init__(self, size_limit: int | None) -> None:
        self.size_limit = size_limit or 0
        self.pieces = io.BytesIO()
        self.size = 0
        self.over = False  # past the size limit: nothing more is kept
        self._kept_last = False

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        self._kept_last = not self.over
        if self._kept_last:
            self.pieces.write(piece)
            self.over = bool(self.size_limit) and self.size > self.size_limit

    def take_back(self) -> None:
        """The piece just added (the dot of the line that ends DATA) is not content."""
        self.size -= 1
        if self._kept_last:
            self.pieces.seek(-1, io.SEEK_CUR)
            self.pieces.truncate()
            self.over = bool(self.size_limit) and self.size > self.size_limit


async def _until(reader: asyncio.StreamReader, separator: bytes, into: _Collected) -> bytes:
    """Read through `separator`. What comes before the last piece goes to `into` as it
    arrives (a line or a mail longer than the reader's limit comes in pieces; the reader
    keeps len(separator) - 1 bytes back, so a separator cut in two is still found).
    Returns the last piece, which ends with `separator`."""
    while True:
        try:
            return await reader.readuntil(separator)
        except asyncio.LimitOverrunError as error:
            into.add(await reader.readexactly(error.consumed))


async def read_data(reader: asyncio.StreamReader, size_limit: int | None,
                    line_limit: int) -> bytes:
    """The content of DATA up to the line with a lone dot, dot-stuffing undone. Raises
    DataTooLong, after reading through the end as aiosmtpd does, when a limit is broken."""
    got = _Collected(size_limit)
    while True:  # at the start of a line
        first = await reader.readexactly(1)
        got.add(first)
        if first == b".":
            before = got.size
            rest = await _until(reader, b"\r\n", got)
            if rest == b"\r\n" and got.size == before:  # a lone dot: the end
                got.take_back()
                break
            got.add(rest)
            continue
        if first == b"\r":
            following = await reader.readexactly(1)
            while following == b"\r":
                got.add(following)
                following = await reader.readexactly(1)
            got.add(following)
            if following == b"\n":
                continue  # the line ended: the next one may be the lone dot
        # the stream is now cut after a byte that is neither a CR nor a line's end, so no
        # separator straddles the cut: the end of data is the next CRLF "." CRLF
        last = await _until(reader, _END, got)
        got.add(last[:-3])  # its CRLF ends the last line
        break
    raw = got.pieces.getvalue()
    got.pieces.close()
    if got.over or len(raw) + 2 > line_limit and _longest_line(raw) + 2 > line_limit:
        problem = _first_problem(raw, got.size_limit, line_limit, over=got.over)
        if problem is not None:
            raise DataTooLong(problem)
    # transparency (RFC 5321 4.5.2): a dot that starts a line was doubled by the client
    if b"\r\n." in raw:
        raw = raw.replace(b"\r\n.", b"\r\n")
    return raw[1:] if raw.startswith(b".") else raw


def _line_lengths(raw: bytes) -> Iterator[int]:
    """The length of each line, CRLF not counted; the last is what follows the last CRLF.
    No list of the lines: for a large mail that would be a third of a million small
    objects, and the memory the allocator keeps for them would stay with the process."""
    start = 0
    while (end := raw.find(b"\r\n", start)) != -1:
        yield end - start
        start = end + 2
    yield len(raw) - start


def _longest_line(raw: bytes) -> int:
    if len(raw) <= 65536:
        return max(map(len, raw.split(b"\r\n")))
    return max(_line_lengths(raw))


def _first_problem(raw: bytes, size_limit: int, line_limit: int, *, over: bool) -> str | None:
    """Which limit broke first, line by line in stream order as aiosmtpd finds it: a line
    longer than its reader's limit at once, else the size, else the line with its CRLF."""
    size, previous = 0, None
    for length in _line_lengths(raw):
        if previous is not None:  # a complete line: it ended with CRLF
            if previous > line_limit:
                return TOO_LONG
            size += previous + 2
            if size_limit and size > size_limit:
                return TOO_MUCH
            if previous + 2 > line_limit:
                return TOO_LONG
        previous = length
    if previous is not None and previous > line_limit:  # what came after the last CRLF
        return TOO_LONG
    return TOO_MUCH if over else None


class BulkData(SMTP):
    """aiosmtpd's SMTP with DATA read in large pieces (see the module's docstring)."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's own checks and answers, in its order
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await read_data(self._reader, self.data_size_limit,
                                      self.line_length_limit)
        except DataTooLong as refused:
            await self.push(refused.answer)
            self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: unannotated
            return
        except (asyncio.CancelledError, asyncio.IncompleteReadError):
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: unannotated
        await self.push("250 OK" if status is MISSING else status)
