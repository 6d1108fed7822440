"""Outbound benchmarks: rendering, delivery through Redis, the deadline sweep on PostgreSQL.

Run from the repository root: `python bench/outbound.py [--full] [--mails N]`. Every ratio
compares two numbers measured in this same run. Nothing is asserted: it prints.
Needs PostgreSQL and Redis on loopback (the test suite's services).
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from gateway.domain.clock import FrozenClock  # noqa: E402
from gateway.domain.facts import Action, Role  # noqa: E402
from gateway.services import tickets  # noqa: E402
from gateway.services.context import Actor  # noqa: E402
from gateway.services.deadlines import run_due  # noqa: E402
from gateway.services.runtime import Runtime  # noqa: E402
from outbound.compose import Composer  # noqa: E402
from outbound.message import build_message  # noqa: E402
from outbound.render import Renderer  # noqa: E402
from store.models import OutboxMail  # noqa: E402
from ticketgw.broker import build_broker, start_worker  # noqa: E402
from ticketgw.testing.bulk import AT, seed_tickets  # noqa: E402
from ticketgw.testing.runtime import make_runtime  # noqa: E402
from ticketgw.testing.services import (  # noqa: E402
    REDIS_URL,
    postgres_url,
    unique_name,  # noqa: E402
)
from ticketgw.testing.smtp_sink import SmtpSink  # noqa: E402
from ticketgw.testing.story import CUSTOMER, VENDOR, open_refund, seed_order  # noqa: E402


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def best_of(fn: Callable[[], None], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ticket_with_history(runtime: Runtime, messages: int = 20) -> int:
    seed_order(runtime, customer_locale="en", vendor_locale="en")
    number = open_refund(runtime)
    for i in range(messages - 1):
        role = Role.VENDOR if i % 2 else Role.CUSTOMER
        with runtime.sessions.begin() as session:
            tickets.act(session, runtime.context(), number, Action.REPLY,
                        Actor(role, email=VENDOR if i % 2 else CUSTOMER, source="email"),
                        comment=f"Message {i}: " + "some words of a support answer " * 6)
        runtime.clock.advance(timedelta(minutes=7))  # type: ignore[attr-defined]
    return number


def bench_render(tmp: Path, rounds: int) -> None:
    runtime = make_runtime(f"sqlite:///{tmp / 'render.db'}", tmp)
    ticket_with_history(runtime)
    composer = Composer(runtime.settings, runtime.tokens)
    renderer: Renderer = composer.renderer
    with runtime.sessions() as session:
        rows = list(session.execute(
            select(OutboxMail).order_by(OutboxMail.id.desc()).limit(2)).scalars())
        now = runtime.clock.now()

        def ours() -> None:
            for _ in range(rounds):
                for row in rows:
                    composer.compose(session, row, now)

        ours_s = best_of(ours)
        # the same templates with the same prepared values, straight through Jinja2
        env = renderer.environment
        prepared = []
        for row in rows:
            ctx = _context_of(composer, session, row, now)
            values = renderer._context(row.event, row.party, "en", ctx)
            txt, html = renderer.template_names(row.event, row.party, "en")
            prepared.append((env.get_template(txt), env.get_template(html), values, ctx))

        def bare() -> None:
            for _ in range(rounds):
                for txt_t, html_t, values, _ in prepared:
                    txt_t.render(values)
                    html_t.render(values)

        bare_s = best_of(bare)

        def render_only() -> None:
            for _ in range(rounds):
                for row, (_, _, _, ctx) in zip(rows, prepared, strict=True):
                    renderer.render(row.event, row.party, "en", ctx)

        render_s = best_of(render_only)
    n = rounds * 2
    print(f"(a) 20-message ticket, both copies: compose (db + render + MIME) "
          f"{per_second(n, ours_s):.0f}/s, renderer only {per_second(n, render_s):.0f}/s, "
          f"bare Jinja2 {per_second(n, bare_s):.0f}/s")
    print(f"    ratio compose/bare = {ours_s / bare_s:.2f}x, renderer/bare = "
          f"{render_s / bare_s:.2f}x (target within 3x)")
    runtime.close()


def _context_of(composer: Composer, session: object, row: OutboxMail, now: object) -> dict:
    captured: dict = {}
    real = composer.renderer.render

    def spy(event: str, audience: str, locale: str, ctx: dict) -> object:
        captured.update(ctx)
        return real(event, audience, locale, ctx)

    composer.renderer.render = spy  # type: ignore[method-assign]
    try:
        composer.compose(session, row, now)  # type: ignore[arg-type]
    finally:
        composer.renderer.render = real  # type: ignore[method-assign]
    return captured


def bench_delivery(tmp: Path, mails: int) -> None:
    with postgres_url() as url, SmtpSink() as sink:
        namespace = unique_name("ticketgw_bench_")
        runtime = make_runtime(url, tmp, smtp_relay=sink.address, notify_cap="1000000/1",
                               broker_url=f"{REDIS_URL}?namespace={namespace}")
        ticket_with_history(runtime, messages=5)
        with runtime.sessions.begin() as session:
            template = session.execute(select(OutboxMail).order_by(OutboxMail.id.desc())
                                       ).scalars().first()
            assert template is not None
            session.execute(text("DELETE FROM outbox"))
            session.add_all(OutboxMail(
                ticket_id=template.ticket_id, order_id=template.order_id, event="reply",
                party="vendor", recipient=f"v{i}@example.org", locale="en",
                upto_message_id=template.upto_message_id, state="pending", attempts=0,
                created_at=template.created_at, next_attempt_at=template.created_at)
                for i in range(mails))
        running = start_worker(runtime, build_broker(runtime.settings), threads=8,
                               scheduler=True, outbox_period=0.2)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            sink.wait_for(mails, timeout=600)
            ours_s, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            running.stop()
        # bare: the same rows rendered and sent in one loop over one SMTP connection
        composer = Composer(runtime.settings, runtime.tokens)
        with runtime.sessions() as session:
            rows = list(session.execute(select(OutboxMail)).scalars())
            now = runtime.clock.now()
            ctx = _context_of(composer, session, rows[0], now)
        sink.clear()
        start, cpu = time.perf_counter(), time.process_time()
        with smtplib.SMTP(sink.host, sink.port, local_hostname="bench.localhost") as smtp:
            for i, row in enumerate(rows):
                rendered = composer.renderer.render("reply", "vendor", "en", ctx)
                raw = build_message(rendered, from_addr="support@tickets.localhost",
                                    to_addr=row.recipient, to_name=None,
                                    reply_to="support@tickets.localhost", locale="en",
                                    message_id=f"<bare-{i}@tickets.localhost>",
                                    ticket_number=1, event="reply")
                smtp.sendmail("support@tickets.localhost", [row.recipient], raw)
        bare_s, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
        runtime.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)
    ours_rate, bare_rate = per_second(mails, ours_s), per_second(mails, bare_s)
    print(f"(b) {mails} mails to a local SMTP sink: outbox via Redis (8 threads, PostgreSQL) "
          f"{ours_rate:.0f}/s, bare render+smtplib loop {bare_rate:.0f}/s")
    print(f"    ratio = {ours_rate / bare_rate:.0%} of the bare loop (target >= 50%)")
    # This process's CPU (the sink's included) a mail, and how busy it kept one core: on a
    # shared machine a low share means it was waiting, not working.
    print(f"    process CPU a mail: ours {ours_cpu / mails * 1000:.1f} ms "
          f"({ours_cpu / ours_s:.0%} of a core), bare {bare_cpu / mails * 1000:.1f} ms "
          f"({bare_cpu / bare_s:.0%} of a core)")


def bench_deadlines(tmp: Path, total: int, open_count: int, due: int) -> None:
    with postgres_url() as url:
        runtime = make_runtime(url, tmp)
        runtime.clock = FrozenClock(AT)
        start = time.perf_counter()
        seed_tickets(runtime.engine, total=total, open_count=open_count, due=0)
        seeded_s = time.perf_counter() - start
        idle = []
        for _ in range(20):
            t0 = time.perf_counter()
            result = run_due(runtime.sessions, runtime.context, runtime.refunds)
            idle.append(time.perf_counter() - t0)
            assert result.total == 0
        bare = []
        with runtime.engine.connect() as conn:
            for _ in range(20):
                t0 = time.perf_counter()
                conn.execute(text("SELECT id FROM tickets WHERE due_at <= :at "
                                  "ORDER BY due_at, id LIMIT 200"), {"at": AT.replace(tzinfo=None)}
                             ).all()
                bare.append(time.perf_counter() - t0)
        runtime.close()
    print(f"(c) {total} tickets ({open_count} open), nothing due (seeded in {seeded_s:.1f} s): "
          f"run_due median {statistics.median(idle) * 1000:.2f} ms (target < 50 ms), "
          f"bare indexed query {statistics.median(bare) * 1000:.2f} ms")
    with postgres_url() as url:
        runtime = make_runtime(url, tmp)
        runtime.clock = FrozenClock(AT)
        seed_tickets(runtime.engine, total=due + 1000, open_count=due + 500, due=due)
        t0 = time.perf_counter()
        result = run_due(runtime.sessions, runtime.context, runtime.refunds)
        took = time.perf_counter() - t0
        runtime.close()
    print(f"    executing {due} due refunds: {result.processed} in {took:.1f} s = "
          f"{per_second(result.processed, took):.0f} tickets/s (target >= 500)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="1,000,000 tickets, 200,000 open")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--only", choices=("a", "b", "c"), action="append",
                        help="run only this part (repeatable)")
    args = parser.parse_args()
    parts = set(args.only or ("a", "b", "c"))
    total, open_count = (1_000_000, 200_000) if args.full else (200_000, 40_000)
    import logging

    logging.disable(logging.WARNING)
    with TemporaryDirectory(prefix="ticketgw-bench-") as tmp:
        if "a" in parts:
            bench_render(Path(tmp), args.rounds)
        if "b" in parts:
            bench_delivery(Path(tmp), args.mails)
        if "c" in parts:
            bench_deadlines(Path(tmp), total, open_count, args.due)


if __name__ == "__main__":
    main()
