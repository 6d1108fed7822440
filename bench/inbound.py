"""Inbound SMTP throughput, latency and memory, against a bare listener and Roundup measured
in the same run.

    .venv/bin/python bench/inbound.py [--mails 1200] [--connections 8] [--roundup-mails 100]
                                      [--no-roundup]

Ours: the real listener, each mail a 3 KB reply through a reply address (parse, decide, add the
comment, outbox rows, one commit). Bare: aiosmtpd committing each raw mail to a table of the
same SQLite database (same pragmas: WAL, synchronous=FULL), nothing else. Then the `smtp` role
as `TICKETGW_SMTP_PROCESSES=2` runs it (two forked listeners on one port). Then one mail just
under the size limit, for the growth of peak RSS.

Roundup: `roundup-mailgw` (classic template, sqlite backend) in its own virtualenv
(ROUNDUP_VENV, installed with pip when missing) takes the same replies, threaded by an
`[issueN]` subject instead of a reply address, both one process per mail (how an MTA pipes
mail into it) and reading one mbox. Its nosy list is only the author, so it sends no mail:
it does less per reply than we do.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import multiprocessing
import os
import resource
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.smtp import SMTP  # noqa: E402

from gateway.domain.clock import FrozenClock  # noqa: E402
from gateway.domain.facts import Role, TicketType  # noqa: E402
from gateway.domain.settings import parse_settings  # noqa: E402
from gateway.services import orders, tickets, vendors  # noqa: E402
from gateway.services.context import Actor  # noqa: E402
from gateway.services.runtime import Runtime  # noqa: E402
from inbound.smtp import start_smtp  # noqa: E402
from ticketgw import roles  # noqa: E402
from ticketgw.app import build_runtime  # noqa: E402
from ticketgw.testing.services import postgres_url  # noqa: E402

DOMAIN = "tickets.localhost"
NOW = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
NO_LIMIT = (10**9, 1)
ROUNDUP_VENV = Path(os.environ.get("ROUNDUP_VENV", "/tmp/ticketgw-bench-roundup"))


def reply_mail(i: int, sender: str = "customer0@example.org", size: int = 3000) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = f"support@{DOMAIN}"
    msg["Subject"] = "Re: Ticket Reply - Tech Support Request [Ticket #1001]"
    msg["Message-ID"] = f"<bench-{i}-{time.time_ns()}@example.org>"
    line = "The download still stops at 80 percent; I tried two browsers today.\n"
    body = f"Reply {i}.\n" + line * ((size - 400) // len(line))
    msg.set_content(body + "\nOn Thu, Nov 19, 2026 Acme wrote:\n> earlier text\n")
    return msg.as_bytes(policy=SMTP_POLICY)


def customer(i: int) -> str:
    return f"customer{i}@example.org"


def seed(runtime: Runtime, count: int) -> list[int]:
    """`count` orders of as many customers, with an open tech-support ticket each: replies
    spread over them, as real traffic is (one ticket with thousands of replies measures its
    history instead, and one sender's rate-limit row would be a queue of its own)."""
    ctx = runtime.context()
    staff = Actor(Role.STAFF, source="cli")
    numbers = []
    with runtime.sessions.begin() as session:
        vendors.add_vendor(session, ctx, staff, "acme", "owner@acme.example")
        for i in range(count):
            receipt = f"BENCH{i:04d}"
            orders.upsert_order(session, ctx, orders.parse_line({
                "receipt": receipt, "vendor": "acme", "sku": "ebook", "title": "Guide",
                "kind": "digital", "recurring": False, "customer_email": customer(i),
                "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
                "purchased_at": (NOW - timedelta(days=1)).isoformat(), "locale": "en"}))
            ticket = tickets.open_ticket(session, ctx, receipt, TicketType.TECH_SUPPORT,
                                         Actor(Role.CUSTOMER, source="cli"), comment="first")
            numbers.append(ticket.number)
    return numbers


class BareHandler:
    """The baseline: commit the raw bytes, answer 250."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS bare_mail (id INTEGER PRIMARY KEY, "
                        "rcpt TEXT, raw BLOB)")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO bare_mail (rcpt, raw) VALUES (?, ?)",
                        (envelope.rcpt_tos[0], envelope.original_content))
        self.db.execute("COMMIT")
        return "250 OK"


class BarePostgres:
    """The same baseline on PostgreSQL: one INSERT and a COMMIT a mail."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        self.db.execute("CREATE TABLE IF NOT EXISTS bare_mail (id BIGSERIAL PRIMARY KEY, "
                        "rcpt TEXT, raw BYTEA)")
        self.db.commit()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.db.execute("INSERT INTO bare_mail (rcpt, raw) VALUES (%s, %s)",
                        (envelope.rcpt_tos[0], envelope.original_content))
        self.db.commit()
        return "250 OK"


def sender_of(raw: bytes) -> str:
    return raw.split(b"From: ", 1)[1].split(b"\r\n", 1)[0].decode()


def drive(port: int, mails: list[tuple[str, bytes]], connections: int
          ) -> tuple[float, list[float]]:
    """Send `mails` over `connections` parallel sessions; (seconds, per-mail DATA latency)."""
    chunks = [mails[i::connections] for i in range(connections)]
    latencies: list[float] = []
    lock = threading.Lock()

    def session(chunk: list[tuple[str, bytes]]) -> None:
        client = smtplib.SMTP("127.0.0.1", port, timeout=60)
        client.ehlo("bench")
        mine = []
        for rcpt, raw in chunk:
            client.mail(sender_of(raw))
            client.rcpt(rcpt)
            started = time.perf_counter()
            code, text = client.data(raw)
            mine.append(time.perf_counter() - started)
            if code != 250:
                raise RuntimeError(f"{code} {text!r}")
        client.quit()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(session, chunks))
    return time.perf_counter() - started, latencies


def in_loop(factory: Callable[[asyncio.AbstractEventLoop], Any]
            ) -> tuple[asyncio.AbstractEventLoop, Any]:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def make() -> Any:
        return await factory(loop)

    return loop, asyncio.run_coroutine_threadsafe(make(), loop).result(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_role(settings_env: dict[str, str], processes: int) -> tuple[Any, int]:
    """The `smtp` role as `ticketgw smtp` runs it with `processes` listeners, forked before
    this process starts any thread; stopped with SIGTERM."""
    port = free_port()
    settings = parse_settings({}, {**settings_env, "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}",
                                   "TICKETGW_SMTP_PROCESSES": str(processes)})
    runtime = build_runtime(settings, clock=FrozenClock(NOW), create_schema=False)
    runtime.engine.dispose()
    role = multiprocessing.get_context("fork").Process(
        target=roles.smtp, args=(runtime,), kwargs={"rate": NO_LIMIT})
    role.start()
    wait_for_port(port)
    return role, port


def serve_bare(db: Path | str, port: int) -> None:
    async def serve() -> None:
        handler = BareHandler(db) if isinstance(db, Path) else BarePostgres(db)
        await asyncio.get_running_loop().create_server(lambda: SMTP(handler), "127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(serve())


def start_bare(db: Path | str) -> tuple[Any, int]:
    port = free_port()
    process = multiprocessing.get_context("fork").Process(target=serve_bare, args=(db, port))
    process.start()
    wait_for_port(port)
    return process, port


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def roundup_subject(raw: bytes, issue: int) -> bytes:
    """The same reply, threaded the Roundup way: by the issue designator in the subject."""
    return raw.replace(b"[Ticket #1001]", f"[issue{issue}]".encode())


class Roundup:
    """A Roundup tracker in its own virtualenv; `None` from `setup` says why it cannot run."""

    def __init__(self, workdir: Path) -> None:
        self.bin = ROUNDUP_VENV / "bin"
        self.tracker = workdir / "roundup-tracker"

    def _run(self, *args: str, stdin: bytes | None = None) -> None:
        subprocess.run(args, input=stdin, check=True, capture_output=True, timeout=600)

    def setup(self, issues: int) -> str | None:
        try:
            if not (self.bin / "roundup-mailgw").exists():
                self._run(sys.executable, "-m", "venv", str(ROUNDUP_VENV))
                self._run(str(self.bin / "pip"), "install", "-q", "roundup")
            admin = str(self.bin / "roundup-admin")
            self._run(admin, "-i", str(self.tracker), "install", "classic", "sqlite",
                      "admin_email=root@localhost,mail_domain=localhost")
            config = self.tracker / "config.ini"
            # [mail] debug: outgoing mail goes to this file instead of an SMTP server
            config.write_text(config.read_text().replace(
                "\ndebug = \n", f"\ndebug = {self.tracker / 'sent-mail.txt'}\n", 1))
            self._run(admin, "-i", str(self.tracker), "initialise", "bench-admin-password")
            self._run(admin, "-i", str(self.tracker), "create", "user", "username=ann",
                      "address=ann@example.org", "roles=User")
            self._run(str(self.bin / "python"), "-c", (
                "import sys, roundup.instance\n"
                "db = roundup.instance.open(sys.argv[1]).open('admin')\n"
                "ann = db.user.lookup('ann')\n"
                "for i in range(int(sys.argv[2])):\n"
                "    db.issue.create(title=f'Tech Support Request {i}', nosy=[ann])\n"
                "db.commit()\n"), str(self.tracker), str(issues))
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            return f"{type(exc).__name__}: {exc} {detail.decode(errors='replace')[-300:]}"
        return None

    def messages(self) -> int:
        out = subprocess.run(
            [str(self.bin / "python"), "-c",
             "import sys, roundup.instance\n"
             "print(len(roundup.instance.open(sys.argv[1]).open('admin').msg.list()))",
             str(self.tracker)], check=True, capture_output=True, timeout=120)
        return int(out.stdout)

    def per_process(self, mails: list[bytes]) -> float:
        """Mails per second, one `roundup-mailgw TRACKER` process per mail on stdin."""
        before = self.messages()
        started = time.perf_counter()
        for raw in mails:
            self._run(str(self.bin / "roundup-mailgw"), str(self.tracker), stdin=raw)
        seconds = time.perf_counter() - started
        assert self.messages() - before == len(mails), "roundup did not take every mail"
        return len(mails) / seconds

    def mbox(self, mails: list[bytes], path: Path) -> float:
        """Mails per second, one `roundup-mailgw TRACKER mailbox FILE` over all of them."""
        box = mailbox.mbox(path)
        for raw in mails:
            box.add(raw)
        box.flush()
        box.close()
        before = self.messages()
        started = time.perf_counter()
        self._run(str(self.bin / "roundup-mailgw"), str(self.tracker), "mailbox", str(path))
        seconds = time.perf_counter() - started
        assert self.messages() - before == len(mails), "roundup did not take every mail"
        return len(mails) / seconds


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


class Run:
    """One backend's lines: bare ceiling, the smtp role with 1 and 2 processes."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], bare_target: Path | str
                 ) -> None:
        self.args = args
        self.env = env
        settings = parse_settings({}, env)
        self.runtime = build_runtime(settings, clock=FrozenClock(NOW))
        numbers = seed(self.runtime, args.tickets)
        self.rcpts = [(customer(i), f"reply+{self.runtime.tokens.reply_token(n, Role.CUSTOMER)}"
                       f"@{DOMAIN}") for i, n in enumerate(numbers)]
        self.runtime.engine.dispose()
        # every listener measured for throughput runs in its own process, forked before this
        # one starts a thread: the eight client threads here do not share a GIL with it
        self.bare = start_bare(bare_target)
        self.one = start_role(env, 1)
        self.two = start_role(env, 2)

    def batch_of(self, count: int, first: int = 0) -> list[tuple[str, bytes]]:
        picked = [self.rcpts[i % len(self.rcpts)] for i in range(count)]
        return [(rcpt, reply_mail(first + i, sender)) for i, (sender, rcpt) in enumerate(picked)]

    def measure(self, port: int, first: int) -> tuple[float, list[float]]:
        drive(port, self.batch_of(40, first + 10**5), self.args.connections)  # warm up
        seconds, latencies = drive(port, self.batch_of(self.args.mails, first),
                                   self.args.connections)
        return self.args.mails / seconds, latencies

    def run(self, label: str) -> tuple[float, float, float]:
        """(bare, 1 process, 2 processes) mails/s: each line's best of `--rounds` rounds,
        the lines taking turns, so a slower spell of the shared machine weighs on all."""
        best: dict[int, tuple[float, list[float]]] = {}
        for round_ in range(self.args.rounds):
            for line, (_, port) in enumerate((self.bare, self.one, self.two)):
                rate, latencies = self.measure(port, (line + 1) * 10**6 + round_ * 10**5)
                if line not in best or rate > best[line][0]:
                    best[line] = (rate, latencies)
        (bare_rate, bare_lat), (ours_rate, ours_lat), (two_rate, two_lat) = (
            best[0], best[1], best[2])
        for process, _ in (self.bare, self.one, self.two):
            assert process.pid is not None
            os.kill(process.pid, signal.SIGTERM)
            process.join(60)
        show(f"bare (aiosmtpd + {label} commit)", bare_rate, bare_lat, None)
        show(f"ours on {label}, 1 process", ours_rate, ours_lat, bare_rate)
        show(f"ours on {label}, 2 processes", two_rate, two_lat, bare_rate)
        return bare_rate, ours_rate, two_rate


def show(label: str, rate: float, latencies: list[float], ceiling: float | None) -> None:
    ratio = f"  ratio to bare {rate / ceiling:.2f}" if ceiling else ""
    print(f"{label:<38} {rate:8.1f} mails/s  p50 {statistics.median(latencies) * 1000:6.1f}"
          f" ms  p99 {p99(latencies) * 1000:6.1f} ms{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=1200)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of each line, taking turns; each line shows its best")
    parser.add_argument("--roundup-mails", type=int, default=100)
    parser.add_argument("--no-roundup", action="store_true")
    parser.add_argument("--no-postgres", action="store_true",
                        help="skip the PostgreSQL lines (they need the test suite's server)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ticketgw-bench-"))
    db = workdir / "ticketgw.db"
    env = {"TICKETGW_DATABASE_URL": f"sqlite:///{db}", "TICKETGW_SECRET_KEY": "bench",
           "TICKETGW_OUTBOX_MAILDIR": str(workdir / "outbox")}
    settings = parse_settings({}, env)
    print(f"mails: {args.mails} x ~{len(reply_mail(0))} bytes over {args.connections} "
          "connections; latency is end of DATA -> 250")
    sqlite_run = Run(args, env, db)
    bare_rate, ours_rate, two_rate = sqlite_run.run("SQLite")
    runtime, rcpts = sqlite_run.runtime, [rcpt for _, rcpt in sqlite_run.rcpts]

    async def in_process(loop: asyncio.AbstractEventLoop) -> Any:
        return await start_smtp(runtime, "127.0.0.1", 0, rate=NO_LIMIT)

    _, listener = in_loop(in_process)
    here_rate, here_lat = sqlite_run.measure(listener.port, 4 * 10**6)
    show("ours on SQLite, in the clients' process", here_rate, here_lat, bare_rate)
    if not args.no_postgres:
        with postgres_url("ticketgw_bench_") as url:
            Run(args, {**env, "TICKETGW_DATABASE_URL": url}, url).run("PostgreSQL")
    if not args.no_roundup:
        compare_roundup(workdir, args.roundup_mails, args.tickets, ours_rate, two_rate)

    limit = settings.max_message_bytes
    big_msg = EmailMessage()
    big_msg["From"] = customer(0)
    big_msg["Subject"] = "big"
    big_msg["Message-ID"] = f"<big-{time.time_ns()}@example.org>"
    big_msg.set_content("see attachment")
    big_msg.add_attachment(b"\x00" * int((limit - 8192) * 0.73), maintype="application",
                           subtype="octet-stream", filename="big.bin")
    big = big_msg.as_bytes(policy=SMTP_POLICY)
    assert len(big) < limit, (len(big), limit)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _, big_lat = drive(listener.port, [(rcpts[0], big)], 1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"one mail of {len(big) / 2**20:.1f} MiB (limit {limit / 2**20:.1f} MiB): "
          f"{big_lat[0]:.2f} s, peak RSS {before:.0f} -> {after:.0f} MiB "
          f"(+{after - before:.0f} MiB, {(after - before) / (len(big) / 2**20):.1f}x the mail)")


def compare_roundup(workdir: Path, count: int, issues: int, ours_rate: float,
                    two_rate: float) -> None:
    roundup = Roundup(workdir)
    why = roundup.setup(issues)
    if why is not None:
        print(f"roundup: not measured, it could not be installed or set up: {why}")
        return
    piped = roundup.per_process(
        [roundup_subject(reply_mail(4 * 10**6 + i, "ann@example.org"), i % issues + 1)
         for i in range(count)])
    boxed = roundup.mbox(
        [roundup_subject(reply_mail(5 * 10**6 + i, "ann@example.org"), i % issues + 1)
         for i in range(count)],
        workdir / "roundup.mbox")
    print(f"roundup-mailgw, one process per mail (as an MTA pipes it): {piped:8.1f} mails/s; "
          f"ours/roundup {ours_rate / piped:.1f}x (1 process), {two_rate / piped:.1f}x "
          "(2 processes)")
    print(f"roundup-mailgw, one mbox of {count} mails:              {boxed:8.1f} mails/s; "
          f"ours/roundup {ours_rate / boxed:.1f}x (1 process), {two_rate / boxed:.1f}x "
          "(2 processes)")


if __name__ == "__main__":
    main()
