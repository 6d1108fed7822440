"""Spreading SMTP connections evenly over the listener processes that share the port.

SO_REUSEPORT lets the kernel pick a process for each new connection by a hash of its
addresses. With a few long-lived connections (an MTA's connection pool) one process often
gets most of them and works alone on one core while the others idle: 8 connections over 2
processes split 6/2 or worse in about a third of runs, and then took a fifth fewer mails a
second (bench/inbound.py). So at accept, before the greeting, a process that has more open
connections than a sibling hands the new one over (SCM_RIGHTS, over socketpairs made before
the fork); a connection handed over once is kept by the process that receives it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable

log = logging.getLogger("ticketgw.inbound.smtp")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Peers:
    """The listener processes of one port: how many connections each has open, and a
    socket each receives handed-over connections on. Made before the fork; each process
    then calls `join` with its index."""

    def __init__(self, count: int) -> None:
        # one writer a slot (its own process); a sibling may read a count one change old
        self.counts: ctypes.Array[ctypes.c_int] = multiprocessing.RawArray(ctypes.c_int, count)
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
                      for _ in range(count)]
        self.index = -1
        self.gone: set[int] = set()  # siblings that refused a hand-over: they have stopped

    def join(self, index: int) -> None:
        """In process `index`, after the fork: keep its own receiving end and the others'
        sending ends."""
        self.index = index
        for i, (receiving, sending) in enumerate(self.pairs):
            (sending if i == index else receiving).close()
            (receiving if i == index else sending).setblocking(False)

    def opened(self) -> None:
        self.counts[self.index] += 1

    def closed(self) -> None:
        self.counts[self.index] -= 1

    def close(self) -> None:
        """In the process that made them, once every listener has its copies."""
        for pair in self.pairs:
            for end in pair:
                end.close()

    def hand_over(self, fileno: int) -> bool:
        """Send a just-accepted connection (its file descriptor) to the sibling with the
        fewest open connections when it has fewer than this process; False when this
        process keeps it."""
        mine = self.counts[self.index]
        alive = [i for i in range(len(self.pairs)) if i not in self.gone]
        best = min(alive, key=lambda i: self.counts[i])
        if self.counts[best] >= mine:
            return False
        try:
            socket.send_fds(self.pairs[best][1], [b"c"], [fileno])
        except BlockingIOError:  # its queue is full: serve this one here
            return False
        except OSError:  # its end is closed: it has stopped (its count no longer moves)
            log.warning("listener %d has stopped; no more connections are handed to it", best)
            self.gone.add(best)
            return False
        return True

    def receive(self, loop: asyncio.AbstractEventLoop,
                serve: Callable[[socket.socket], None]) -> None:
        """Serve the connections siblings hand to this process (`serve` is called on the
        event loop with each one)."""
        own = self.pairs[self.index][0]

        def ready() -> None:
            while True:
                try:
                    _, fds, _, _ = socket.recv_fds(own, 16, 16)
                except (BlockingIOError, InterruptedError):
                    return
                if not fds:
                    return
                for fd in fds:
                    serve(socket.socket(fileno=fd))

        loop.add_reader(own.fileno(), ready)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take no more handed-over connections (one still queued is dropped unanswered:
        its client retries, as with any listener that stops)."""
        own = self.pairs[self.index][0]
        loop.remove_reader(own.fileno())
        own.close()  # siblings now keep what they accept


def stop_with_parent(parent: int) -> None:
    """On Linux, a listener gets SIGTERM (and finishes its mail in flight) when the process
    that started it dies, even by SIGKILL: it would otherwise keep the port."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
