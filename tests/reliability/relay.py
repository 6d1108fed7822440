"""An SMTP relay that misbehaves on purpose: per transaction it accepts, answers 4xx at RCPT
or after DATA, answers 5xx, drops the connection in the middle of DATA, or keeps the mail and
drops the connection before its 250 goes out (the sender cannot know it was accepted).

A small server of its own rather than aiosmtpd: a drop half-way through DATA has to happen
while the content is still arriving, which aiosmtpd's handler (called once DATA is complete)
cannot do."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser

ACCEPT = "accept"
TEMPORARY_AT_RCPT = "451 at RCPT"
TEMPORARY_AFTER_DATA = "451 after DATA"
PERMANENT_AFTER_DATA = "554 after DATA"
DROP_IN_DATA = "drop in the middle of DATA"
LOST_250 = "kept, connection dropped before the 250"
CRASH_AFTER_ACCEPT = "kept, the sending worker killed before the 250"
FAULTS = (TEMPORARY_AT_RCPT, TEMPORARY_AFTER_DATA, PERMANENT_AFTER_DATA, DROP_IN_DATA,
          LOST_250, CRASH_AFTER_ACCEPT)


@dataclass(frozen=True)
class Kept:
    message_id: str
    recipient: str
    raw: bytes  # as the sender meant it: dot-unstuffed, CRLF line ends
    fault: str  # ACCEPT, or the way its 250 was lost
    at: float  # time.monotonic() when it was kept


class FaultyRelay:
    """`plan(n)` names what happens to the n-th transaction (MAIL FROM) since start;
    `crash()` is called for CRASH_AFTER_ACCEPT after the mail is kept, before the
    connection drops."""

    def __init__(self, plan: Callable[[int], str], crash: Callable[[], None]) -> None:
        self.plan, self.crash = plan, crash
        self.port = 0
        self.kept: list[Kept] = []
        self.faults: Counter[str] = Counter()
        self._transactions = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faulty-relay", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultyRelay:
        self._thread.start()
        assert self._ready.wait(10), "the relay did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _next(self) -> str:
        with self._lock:
            self._transactions += 1
            fault = self.plan(self._transactions)
            self.faults[fault] += 1
            return fault

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault, rcpt = ACCEPT, ""
        writer.write(b"220 relay.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-relay.test\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    fault = self._next()
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    rcpt = line[8:].strip().strip(b"<>").decode()
                    writer.write(b"451 4.3.0 try later\r\n" if fault == TEMPORARY_AT_RCPT
                                 else b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    answer = await self._data(reader, fault, rcpt)
                    if answer is None:
                        return  # the connection drops, answer unsent
                    writer.write(answer)
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                else:  # RSET, NOOP
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _data(self, reader: asyncio.StreamReader, fault: str, rcpt: str) -> bytes | None:
        lines: list[bytes] = []
        while (line := await reader.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b".") else line)  # dot-unstuffing
            if fault == DROP_IN_DATA and len(lines) == 5:
                return None  # half the content is in, the rest never will be
        if not line:
            return None
        if fault == TEMPORARY_AFTER_DATA:
            return b"451 4.3.0 queue full, try later\r\n"
        if fault == PERMANENT_AFTER_DATA:
            return b"554 5.7.1 refused by policy\r\n"
        raw = b"".join(lines)
        message_id = str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip().strip("<>")
        with self._lock:
            self.kept.append(Kept(message_id, rcpt, raw, fault, time.monotonic()))
        if fault == CRASH_AFTER_ACCEPT:
            await asyncio.get_running_loop().run_in_executor(None, self.crash)
        if fault in (LOST_250, CRASH_AFTER_ACCEPT):
            return None
        return b"250 2.0.0 queued\r\n"
