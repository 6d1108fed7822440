"""Several `ticketgw` processes (2 smtp, 3 workers, a scheduler on PostgreSQL and RabbitMQ)
against `ticketgw serve` alone, the same mails through both, measured in the same run.

    .venv/bin/python bench/processes.py [--mails 600] [--clients 8] [--rate R] [--rounds N]
                                        [--single-postgres]

Each line: the roles run as separate `ticketgw` processes started from the console script,
configured only through `TICKETGW_*` variables, with the outbound relay a real SMTP sink
(`ticketgw.testing.smtp_sink`) in this process. A load process of its own (its own GIL) sends
N 3 KB replies through reply addresses over `--clients` SMTP connections, spread over both
listeners (several-process line) or the one listener of `serve`. Every reply is a comment on
an open ticket, and both parties get a `reply` mail: the bench waits until all 2N reached the
sink, and finds which reply each one reports by a marker in its newest comment.

Printed: intake mails/s (first DATA to last 250), DATA -> 250 p50/p99, 250 -> both mails of
that reply in the sink p50/p99, end to end mails/s (first DATA to the last mail in the sink),
the peak RSS of every role (its process and its children, from /proc), and the ratio of the
two intake rates. Needs the test suite's PostgreSQL and RabbitMQ (and `rabbitmqctl`, for a
throw-away vhost).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import queue
import re
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.domain.facts import Role, TicketType  # noqa: E402
from gateway.domain.settings import parse_settings  # noqa: E402
from gateway.services import orders, tickets, vendors  # noqa: E402
from gateway.services.context import Actor  # noqa: E402
from ticketgw.app import build_runtime  # noqa: E402
from ticketgw.testing.services import (  # noqa: E402
    free_port,
    port_answers,
    postgres_url,
    rabbitmq_vhost,
)
from ticketgw.testing.smtp_sink import ReceivedMail, SmtpSink  # noqa: E402

DOMAIN = "tickets.localhost"
SECRET = "bench-processes-secret"
MARK = re.compile(r"benchmark(\d+)z")
# a ticket's parties get at most TICKETGW_NOTIFY_CAP (10) mails in 10 minutes before a digest;
# with its `opened` mail, 8 replies a ticket stay under it, so every reply is mailed at once
REPLIES_PER_TICKET = 8
WARM_UP = 16  # replies sent before the measured ones: first connections, lazy imports


def ticketgw_command() -> list[str]:
    """The console script beside this Python (the venv's), else the same module."""
    script = Path(sys.executable).parent / "ticketgw"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ticketgw.cli"]


def reply_mail(i: int, sender: str, rcpt: str, size: int = 3000) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = "Re: Ticket Reply - Tech Support Request"
    msg["Message-ID"] = f"<bench-{i}-{time.time_ns()}@example.org>"
    line = "The download still stops at 80 percent; I tried two browsers today.\n"
    body = f"Reply benchmark{i}z.\n" + line * ((size - 400) // len(line))
    msg.set_content(body + "\nOn Thu, Nov 19, 2026 Acme wrote:\n> earlier text\n")
    return msg.as_bytes(policy=SMTP_POLICY)


def seed(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """A vendor and `count` orders of as many customers, each with an open tech-support
    ticket (its `opened` mails go out once the workers run): (customer, reply address)."""
    runtime = build_runtime(parse_settings({}, env))  # creates the schema, as `init` does
    ctx = runtime.context()
    purchased = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    pairs = []
    with runtime.sessions.begin() as session:
        vendors.add_vendor(session, ctx, Actor(Role.STAFF, source="cli"), "acme",
                           "owner@acme.example")
        for i in range(count):
            customer = f"customer{i}@example.org"
            orders.upsert_order(session, ctx, orders.parse_line({
                "receipt": f"BENCH{i:05d}", "vendor": "acme", "sku": "ebook", "title": "Guide",
                "kind": "digital", "recurring": False, "customer_email": customer,
                "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
                "purchased_at": purchased, "locale": "en"}))
            ticket = tickets.open_ticket(session, ctx, f"BENCH{i:05d}", TicketType.TECH_SUPPORT,
                                         Actor(Role.CUSTOMER, source="cli"), comment="first")
            token = runtime.tokens.reply_token(ticket.number, Role.CUSTOMER)
            pairs.append((customer, f"reply+{token}@{DOMAIN}"))
    runtime.close()
    return pairs


# -- the load process -------------------------------------------------------------------

Job = tuple[int, str, str, bytes]  # marker, sender, recipient, mail
Timing = tuple[int, float, float, int]  # marker, DATA sent (monotonic), answer, code


def send_all(ports: list[int], jobs: list[Job], clients: int, rate: float = 0.0
             ) -> list[Timing]:
    """`clients` connections, spread over `ports`, taking mails from one queue until it is
    empty; with a `rate`, mail number k is not sent before k / rate seconds. CLOCK_MONOTONIC
    is one clock for every process of the machine, so the times compare with the sink's."""
    todo: queue.Queue[tuple[int, Job]] = queue.Queue()
    for k, job in enumerate(jobs):
        todo.put((k, job))
    start = time.monotonic()
    timings: list[Timing] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        mine: list[Timing] = []
        with smtplib.SMTP("127.0.0.1", ports[k % len(ports)], timeout=120) as smtp:
            smtp.ehlo("bench.example.org")
            while True:
                try:
                    k, (marker, sender, rcpt, raw) = todo.get_nowait()
                except queue.Empty:
                    break
                if rate:  # pacing the load, not waiting for a result
                    time.sleep(max(0.0, start + k / rate - time.monotonic()))
                smtp.mail(sender)
                smtp.rcpt(rcpt)
                started = time.monotonic()
                code, _ = smtp.data(raw)
                mine.append((marker, started, time.monotonic(), code))
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


def _load_process(ports: list[int], jobs: list[Job], clients: int, rate: float,
                  out: Any) -> None:
    out.put(send_all(ports, jobs, clients, rate))


def load_from_another_process(ports: list[int], jobs: list[Job], clients: int, rate: float
                              ) -> list[Timing]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_load_process, args=(ports, jobs, clients, rate, out))
    process.start()
    timings: list[Timing] = out.get(timeout=1800)
    process.join(60)
    return timings


# -- roles as processes -----------------------------------------------------------------

def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (/proc), MiB; 0 once it is gone."""
    total = 0.0
    for one in tree(pid):
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            continue
    return total


def tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                pids.extend(tree(int(child)))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants so far (/proc/PID/stat)."""
    ticks = 0
    for one in tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class RoleProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    peak_rss: float = 0.0
    cpu_mark: float = 0.0  # CPU seconds when the measured load began

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)


@dataclass
class Deployment:
    """Role processes started from the console script; their peak RSS sampled meanwhile."""

    workdir: Path
    env: dict[str, str]
    roles: list[RoleProcess] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, name: str, role: str, **extra: str) -> None:
        folder = self.workdir / name  # its working directory: var/, the spool, its log
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "role.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*ticketgw_command(), role], cwd=folder, env={**self.env, **extra},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.roles.append(RoleProcess(name, process, log))

    def sample(self) -> None:
        while not self._stop.wait(0.25):
            for role in self.roles:
                role.peak_rss = max(role.peak_rss, rss_mib(role.process.pid))

    def check_alive(self) -> None:
        for role in self.roles:
            if role.process.poll() is not None:
                tail = role.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{role.name} exited with {role.process.returncode}:\n{tail}")

    @contextmanager
    def running(self) -> Iterator[Deployment]:
        sampler = threading.Thread(target=self.sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            self._stop.set()
            self.stop()

    def stop(self) -> None:
        for role in self.roles:
            if role.process.poll() is None:
                role.process.send_signal(signal.SIGTERM)
        for role in self.roles:
            try:
                role.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(role.process.pid, signal.SIGKILL)
                role.process.wait(10)


def wait_for_ports(deployment: Deployment, ports: list[int], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        while not port_answers("127.0.0.1", port):
            deployment.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout} s")
            time.sleep(0.1)


def wait_for_mail(sink: SmtpSink, deployment: Deployment, count: int, timeout: float
                  ) -> list[ReceivedMail]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return sink.wait_for(count, timeout=1.0)
        except AssertionError:
            deployment.check_alive()
            if time.monotonic() > deadline:
                raise


# -- one line ---------------------------------------------------------------------------

@dataclass
class Line:
    label: str
    mails: int
    intake_rate: float
    data_to_250: list[float]
    to_both: list[float]
    end_to_end_rate: float
    refused: int
    # each role: name, peak RSS (MiB), CPU seconds a reply while the measured load ran
    # (the roles' own: not the database's, the broker's or the sink's)
    roles: list[tuple[str, float, float]]


def jobs_for(pairs: list[tuple[str, str]], count: int, first: int) -> list[Job]:
    jobs = []
    for i in range(count):
        sender, rcpt = pairs[(first + i) % len(pairs)]
        jobs.append((first + i, sender, rcpt, reply_mail(first + i, sender, rcpt)))
    return jobs


def measure(label: str, deployment: Deployment, sink: SmtpSink, ports: list[int],
            pairs: list[tuple[str, str]], args: argparse.Namespace) -> Line:
    """Wait until the roles run and the seeded tickets' mails went out, warm up, then the
    measured load from a process of its own; then every notification in the sink."""
    wait_for_ports(deployment, ports)
    wait_for_mail(sink, deployment, 2 * len(pairs), timeout=300)
    send_all(ports, jobs_for(pairs, WARM_UP, 0), min(args.clients, WARM_UP))
    wait_for_mail(sink, deployment, 2 * (len(pairs) + WARM_UP), timeout=120)
    sink.clear()
    for role in deployment.roles:
        role.cpu_mark = role.cpu()
    timings = load_from_another_process(ports, jobs_for(pairs, args.mails, WARM_UP),
                                        args.clients, args.rate)
    accepted = [t for t in timings if t[3] == 250]
    received = wait_for_mail(sink, deployment, 2 * len(accepted),
                             timeout=120 + len(accepted) / 5)
    per_reply = max(1, len(accepted))
    first_sent = min(t[1] for t in timings)
    arrivals = both_arrived(received)
    answered = {marker: at for marker, _, at, code in accepted}
    return Line(
        label=label, mails=len(timings),
        intake_rate=len(timings) / (max(t[2] for t in timings) - first_sent),
        data_to_250=[t[2] - t[1] for t in accepted],
        to_both=[arrivals[m] - answered[m] for m in answered if m in arrivals],
        end_to_end_rate=len(accepted) / (max(r.received_at for r in received) - first_sent),
        refused=len(timings) - len(accepted),
        roles=[(r.name, r.peak_rss, (r.cpu() - r.cpu_mark) / per_reply)
               for r in deployment.roles])


def both_arrived(received: list[ReceivedMail]) -> dict[int, float]:
    """For each reply, when the second of its two mails (customer's, vendor's) arrived. The
    newest comment comes first in a mail, before the history: its marker is the first one."""
    seen: dict[int, list[float]] = {}
    for mail in received:
        body = mail.message.get_body(("plain",))
        found = MARK.search(str(body.get_content())) if body is not None else None
        if found is not None:
            seen.setdefault(int(found.group(1)), []).append(mail.received_at)
    return {marker: max(times) for marker, times in seen.items() if len(times) >= 2}


def common_env(workdir: Path, sink: SmtpSink) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    return {**keep, "TICKETGW_SECRET_KEY": SECRET, "TICKETGW_MAIL_DOMAIN": DOMAIN,
            "TICKETGW_SMTP_RELAY": sink.address,
            "TICKETGW_OUTBOX_MAILDIR": str(workdir / "outbox"),
            "TICKETGW_HTTP_LISTEN": "127.0.0.1:0"}


def several(args: argparse.Namespace, workdir: Path, tickets_count: int) -> Line:
    with ExitStack() as stack:
        url = stack.enter_context(postgres_url("ticketgw_bench_"))
        broker = stack.enter_context(rabbitmq_vhost("ticketgw_bench_"))
        sink = stack.enter_context(SmtpSink())
        env = {**common_env(workdir / "several", sink), "TICKETGW_DATABASE_URL": url,
               "TICKETGW_BROKER_URL": broker}
        pairs = seed(env, tickets_count)
        deployment = Deployment(workdir / "several", env)
        ports = [free_port()]
        while len(ports) < 2:  # a port just given back may be given again
            ports = list({*ports, free_port()})
        for n, port in enumerate(ports, 1):
            deployment.start(f"smtp {n}", "smtp", TICKETGW_SMTP_LISTEN=f"127.0.0.1:{port}",
                             TICKETGW_SMTP_PROCESSES=str(args.smtp_processes))
        for n in range(1, args.workers + 1):
            deployment.start(f"worker {n}", "worker")
        deployment.start("scheduler", "scheduler")
        with deployment.running():
            return measure(f"{args.workers + 3} processes (2 smtp, {args.workers} workers, "
                           "scheduler; PostgreSQL, RabbitMQ)", deployment, sink, ports,
                           pairs, args)
    raise AssertionError("unreachable")


def single(args: argparse.Namespace, workdir: Path, tickets_count: int) -> Line:
    with ExitStack() as stack:
        if args.single_postgres:
            url, what = stack.enter_context(postgres_url("ticketgw_bench_")), "PostgreSQL"
        else:
            url, what = f"sqlite:///{workdir / 'single' / 'ticketgw.db'}", "SQLite"
        sink = stack.enter_context(SmtpSink())
        env = {**common_env(workdir / "single", sink), "TICKETGW_DATABASE_URL": url,
               "TICKETGW_BROKER_URL": "embedded"}
        pairs = seed(env, tickets_count)
        deployment = Deployment(workdir / "single", env)
        port = free_port()
        deployment.start("serve", "serve", TICKETGW_SMTP_LISTEN=f"127.0.0.1:{port}")
        with deployment.running():
            return measure(f"1 process (serve; {what}, embedded broker)", deployment, sink,
                           [port], pairs, args)
    raise AssertionError("unreachable")


def p(values: list[float], q: int) -> float:
    """The q-th percentile in ms (the largest value when there are too few for it)."""
    if not values:
        return math.nan
    if len(values) < 100:
        return (statistics.median(values) if q == 50 else max(values)) * 1000
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def show(line: Line) -> None:
    refused = f", {line.refused} not answered 250" if line.refused else ""
    print(f"{line.label}\n"
          f"  intake {line.intake_rate:7.1f} mails/s   DATA->250 p50 {p(line.data_to_250, 50):6.1f}"
          f" ms p99 {p(line.data_to_250, 99):7.1f} ms   250->both mails in the sink p50 "
          f"{p(line.to_both, 50):7.1f} ms p99 {p(line.to_both, 99):7.1f} ms\n"
          f"  end to end {line.end_to_end_rate:7.1f} mails/s ({len(line.to_both)} of "
          f"{line.mails} replies with both mails{refused}); CPU of the roles "
          f"{sum(cpu for _, _, cpu in line.roles) * 1000:.1f} ms a reply\n"
          "  per role, peak RSS and CPU a reply: " + ", ".join(
              f"{name} {rss:.0f} MiB {cpu * 1000:.1f} ms" for name, rss, cpu in line.roles))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP connections")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="send at most this many mails/s (default: as fast as answered)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--smtp-processes", type=int, default=1,
                        help="TICKETGW_SMTP_PROCESSES of each smtp role")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of both lines, taking turns; each shows its best")
    parser.add_argument("--single-postgres", action="store_true",
                        help="run the single process on PostgreSQL instead of SQLite")
    args = parser.parse_args()
    tickets_count = max(50, math.ceil((args.mails + WARM_UP) / REPLIES_PER_TICKET))
    pace = f"at {args.rate:g} mails/s" if args.rate else "as fast as they are answered"
    print(f"{args.mails} replies of ~{len(reply_mail(0, 'a@b', 'c@d'))} bytes on "
          f"{tickets_count} tickets, {args.clients} SMTP connections from a load process, "
          f"{pace}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    started = time.monotonic()
    many: Line | None = None
    one: Line | None = None
    for round_ in range(args.rounds):  # the lines take turns: a slow spell weighs on both
        with tempfile.TemporaryDirectory(prefix="ticketgw-bench-processes-") as tmp:
            workdir = Path(tmp)
            this = several(args, workdir, tickets_count)
            many = this if many is None or this.intake_rate > many.intake_rate else many
            that = single(args, workdir, tickets_count)
            one = that if one is None or that.intake_rate > one.intake_rate else one
        if args.rounds > 1:
            print(f"round {round_ + 1}: {this.intake_rate:.1f} and {that.intake_rate:.1f} "
                  "mails/s")
    assert many is not None and one is not None
    show(many)
    show(one)
    print(f"ratio several processes / single process, intake mails/s: "
          f"{many.intake_rate / one.intake_rate:.2f}; end to end: "
          f"{many.end_to_end_rate / one.end_to_end_rate:.2f}")
    print(f"(run took {time.monotonic() - started:.0f} s; load average now "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
