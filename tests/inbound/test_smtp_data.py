"""DATA read in large pieces answers and stores exactly what aiosmtpd's line-at-a-time DATA
does: the same streams go to both over real sockets, and the transcripts and the mails they
keep are compared."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inbound.smtp_data import BulkData, read_data

LIMITS = (60, 400, 5000, 33_554_432)


class Keep:
    """Keeps the content of every mail it is handed."""

    def __init__(self) -> None:
        self.mails: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(bytes(envelope.original_content or b""))
        return "250 OK"


class Pair:
    """A plain aiosmtpd listener and one with BulkData, for every size limit, on one loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: dict[tuple[str, int], tuple[Any, Keep]] = {}
        for limit in LIMITS:
            for name, kind in (("aiosmtpd", SMTP), ("bulk", BulkData)):
                keep = Keep()
                self.servers[name, limit] = (self._start(kind, keep, limit), keep)

    def _start(self, kind: type[SMTP], keep: Keep, limit: int) -> Any:
        def factory() -> SMTP:
            return kind(keep, data_size_limit=limit, hostname="test", ident="test",
                        decode_data=False, enable_SMTPUTF8=True)

        async def start() -> Any:
            return await self.loop.create_server(factory, "127.0.0.1", 0)

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def transcript(self, name: str, limit: int, stream: bytes) -> tuple[bytes, list[bytes]]:
        server, keep = self.servers[name, limit]
        keep.mails.clear()
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"EHLO client\r\nMAIL FROM:<a@example.org>\r\n"
                           b"RCPT TO:<b@example.org>\r\nDATA\r\n" + stream + b"QUIT\r\n")
            answers = b""
            while chunk := client.recv(65536):
                answers += chunk
        return answers, list(keep.mails)

    def close(self) -> None:
        for server, _ in self.servers.values():
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    both = Pair()
    yield both
    both.close()


_PIECES = st.sampled_from([
    b"x", b"abc", b" ", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\r\n", b"\n.\n", b".\r\n",
    b"\r\n.\r\n", b"\r\n..\r\n", b"\r\n.x", b"\r.\r\n", b"x" * 998, b"y" * 1000, b"z" * 1500,
    "é".encode(), b"\x00", b"\xff",
])
_STREAMS = st.builds(lambda pieces, end: b"".join(pieces) + end,
                     st.lists(_PIECES, max_size=14),
                     st.sampled_from([b"\r\n.\r\n", b"\r\n.\r\nNOOP\r\n"]))


@settings(max_examples=300, deadline=None)
@given(stream=_STREAMS, limit=st.sampled_from(LIMITS))
@example(stream=b".\r\n", limit=400)
@example(stream=b"..\r\n.\r\n", limit=400)
@example(stream=b"\r\n.\r\n", limit=400)
@example(stream=b"\r\r\n.\r\n", limit=400)
@example(stream=b"a\n.\nb\r\n.\r\n", limit=400)
@example(stream=b"x" * 1500 + b"\r\n" + b"y" * 100 + b"\r\n.\r\n", limit=60)
@example(stream=b"y" * 100 + b"\r\n" + b"x" * 1500 + b"\r\n.\r\n", limit=60)
def test_bulk_data_answers_and_keeps_what_aiosmtpd_does(pair: Pair, stream: bytes,
                                                         limit: int) -> None:
    assert pair.transcript("bulk", limit, stream) == pair.transcript("aiosmtpd", limit, stream)


async def _read_in_pieces(stream: bytes, cuts: list[int], limit: int) -> bytes | str:
    reader = asyncio.StreamReader(limit=1001)
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed_data(stream[start:end])
    reader.feed_eof()
    try:
        return await read_data(reader, limit, 1001)
    except Exception as error:  # noqa: BLE001 - the refusal is what is compared
        return type(error).__name__ + str(error)


@settings(max_examples=300, deadline=None)
@given(stream=_STREAMS, limit=st.sampled_from(LIMITS), data=st.data())
def test_where_the_stream_is_cut_changes_nothing(stream: bytes, limit: int,
                                                 data: st.DataObject) -> None:
    """However the bytes arrive (a CR in one packet, its LF in the next), the same content
    or the same refusal comes out."""
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)),
                                         max_size=6))))
    cuts = [cut for cut in cuts if 0 < cut < len(stream)]
    whole = asyncio.run(_read_in_pieces(stream, [], limit))
    assert asyncio.run(_read_in_pieces(stream, cuts, limit)) == whole


def test_a_large_mail_arrives_whole_and_unstuffed(pair: Pair) -> None:
    body = b"".join(b".line %d\r\n" % i for i in range(20_000))  # 250 KB, every line dotted
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    answers, mails = pair.transcript("bulk", 33_554_432, b"." + stuffed + b".\r\n")
    assert b"250 OK" in answers.split(b"354", 1)[1]
    assert mails == [body]
