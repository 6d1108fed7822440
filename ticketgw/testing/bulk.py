"""Bulk data for the deadline tests and bench: many orders and tickets, written with COPY.

Going through the services would take minutes for a million tickets; these rows are what the
services would have written (one vendor, one product, one order per ticket, refunds opened by
customers), with `due_at` set directly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from gateway.domain.clock import FrozenClock, parse_instant
from gateway.domain.settings import parse_settings
from gateway.services.deadlines import run_due
from ticketgw.app import build_runtime

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday: when the sweeps run
AMOUNT_CENTS = 4700


@dataclass(frozen=True)
class Seeded:
    total: int
    open: int
    due: int


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def seed_tickets(engine: Engine, *, total: int, open_count: int, due: int,
                 at: datetime = AT) -> Seeded:
    """`total` tickets: `due` open refunds due before `at`, `open_count - due` open ones due
    later, the rest closed. PostgreSQL only (COPY)."""
    assert engine.dialect.name == "postgresql" and due <= open_count <= total
    created = at - timedelta(days=3)
    purchased = at - timedelta(days=10)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO vendors (id, nickname, account_email, timezone, locale,"
            " partial_refunds_enabled, may_respond, dispute_count, created_at) VALUES"
            " (1, 'acme', 'sales@acme.example', 'Europe/Berlin', 'en', false, true, 0, :c)"),
            {"c": created})
        conn.execute(text(
            "INSERT INTO products (id, vendor_id, sku, title, kind, recurring, business_care)"
            " VALUES (1, 1, 'ebook-1', 'Guide', 'digital', false, false)"))
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        with driver.cursor() as cur:
            _copy(cur, "orders", "id, receipt, vendor_id, product_id, customer_email,"
                  " customer_name, quantity, amount, currency, purchased_at, locale, shipped,"
                  " return_info, refunded_amount, support_active, created_at, updated_at",
                  (f"{i}\tR{i:09d}\t1\t1\tc{i}@example.org\tC {i}\t1\t{AMOUNT_CENTS}\tUSD\t"
                   f"{_ts(purchased)}\ten\tf\tf\t0\tt\t{_ts(created)}\t{_ts(created)}\n"
                   for i in range(1, total + 1)))
            _copy(cur, "tickets", "id, number, order_id, vendor_id, type, status, created_by,"
                  " created_at,"
                  " reason, refund_kind, refund_amount, process_rule, clock_started_at,"
                  " process_at, awaiting_confirmation, escalated, warnings_sent, due_at,"
                  " due_kind, closed_at, close_reason",
                  (_ticket_line(i, total, open_count, due, at, created)
                   for i in range(1, total + 1)))
            cur.execute("UPDATE counters SET value = %s WHERE name = 'ticket'", (1000 + total,))
            for table in ("orders", "tickets", "vendors", "products"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" (SELECT max(id) FROM {table}))")
            cur.execute("ANALYZE")
        driver.commit()
    finally:
        raw.close()
    return Seeded(total, open_count, due)


def _ticket_line(i: int, total: int, open_count: int, due: int, at: datetime,
                 created: datetime) -> str:
    if i <= due:
        status, due_at = "open", _ts(at - timedelta(minutes=1 + i % 500))
        closed = "\\N\t\\N"
    elif i <= open_count:
        status, due_at = "open", _ts(at + timedelta(hours=1 + i % 1000))
        closed = "\\N\t\\N"
    else:
        status, due_at = "closed", r"\N"
        closed = f"{_ts(created)}\tby_customer"
    due_kind = "process" if due_at != r"\N" else r"\N"
    return (f"{i}\t{1000 + i}\t{i}\t1\trefund\t{status}\tcustomer\t{_ts(created)}\tother\tfull\t"
            f"{AMOUNT_CENTS}\treview\t{_ts(created)}\t{due_at}\tf\tf\t0\t{due_at}\t{due_kind}\t"
            f"{closed}\n")


def _copy(cur: object, table: str, columns: str, lines: object) -> None:
    buffer = io.StringIO()
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
        for line in lines:  # type: ignore[attr-defined]
            buffer.write(line)
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def sweep_in_process(url: str, at_iso: str, batch: int = 50) -> None:
    """A deadline sweeper process: its own engine, the sweep, exit (multiprocessing target)."""
    settings = parse_settings({}, {"TICKETGW_DATABASE_URL": url,
                                   "TICKETGW_SECRET_KEY": "test-secret"})
    runtime = build_runtime(settings, clock=FrozenClock(parse_instant(at_iso)),
                            create_schema=False)
    try:
        run_due(runtime.sessions, runtime.context, runtime.refunds, batch=batch)
    finally:
        runtime.close()


def seed_marketplace(engine: Engine, *, vendors: int = 1_000, tickets: int = 100_000,
                     big: int = 5_000, at: datetime = AT) -> int:
    """`tickets` tickets across `vendors` vendors, one order each; vendor 1 (`big`) has `big`
    of them, the others share the rest. A fifth of the tickets are open, due over the next
    weeks; one customer in fifty bounces. SQLite or PostgreSQL (inserts in batches).
    Returns the number of tickets written."""
    created = at - timedelta(days=3)
    owners = [1] * big + [2 + i % (vendors - 1) for i in range(tickets - big)]
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO vendors (id, nickname, account_email, timezone, locale,"
            " partial_refunds_enabled, may_respond, dispute_count, created_at) VALUES"
            " (:id, :nick, :email, 'Europe/Berlin', 'en', false, true, 0, :c)"),
            [{"id": v, "nick": f"v{v:04d}", "email": f"sales@v{v:04d}.example", "c": created}
             for v in range(1, vendors + 1)])
        conn.execute(text(
            "INSERT INTO products (id, vendor_id, sku, title, kind, recurring, business_care)"
            " VALUES (:id, :id, 'guide', 'Guide', 'digital', false, false)"),
            [{"id": v} for v in range(1, vendors + 1)])
        for start in range(0, tickets, 10_000):
            rows = range(start + 1, min(start + 10_000, tickets) + 1)
            conn.execute(text(_ORDER_INSERT), [_order_row(i, owners[i - 1], at) for i in rows])
            conn.execute(text(_TICKET_INSERT),
                         [_ticket_row(i, owners[i - 1], at, created) for i in rows])
        conn.execute(text("INSERT INTO address_state (address, bouncing_since, rate_count)"
                          " VALUES (:a, :at, 0)"),
                     [{"a": f"c{i}@example.org", "at": created}
                      for i in range(50, tickets // 2, 50)])
        conn.execute(text("UPDATE counters SET value = :v WHERE name = 'ticket'"),
                     {"v": 1000 + tickets})
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("orders", "tickets", "vendors", "products"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                  f" (SELECT max(id) FROM {table}))"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return tickets


_ORDER_INSERT = (
    "INSERT INTO orders (id, receipt, vendor_id, product_id, customer_email, customer_name,"
    " quantity, amount, currency, purchased_at, locale, shipped, return_info, refunded_amount,"
    " support_active, created_at, updated_at) VALUES (:id, :receipt, :vendor, :vendor,"
    " :email, 'C', 1, 4700, 'USD', :purchased, 'en', false, false, 0, true, :purchased,"
    " :purchased)")
_TICKET_INSERT = (
    "INSERT INTO tickets (id, number, order_id, vendor_id, type, status, created_by,"
    " created_at, awaiting_confirmation, escalated, warnings_sent, due_at, due_kind, process_at,"
    " closed_at, close_reason) VALUES (:id, :number, :id, :vendor, :type, :status, 'customer',"
    " :created, false, :escalated, 0, :due, :kind, :due, :closed, :reason)")
_TYPES = ("refund", "tech_support", "cancellation", "refund", "tech_support")


def _order_row(i: int, vendor: int, at: datetime) -> dict[str, object]:
    return {"id": i, "receipt": f"R{i:09d}", "vendor": vendor,
            "email": f"c{i // 2}@example.org",  # a customer with two orders
            "purchased": at - timedelta(days=10, minutes=i % 1000)}


def _ticket_row(i: int, vendor: int, at: datetime, created: datetime) -> dict[str, object]:
    is_open = i % 5 == 0
    return {"id": i, "number": 1000 + i, "vendor": vendor,
            "type": _TYPES[i % 5 if not is_open else i % 3],
            "status": "open" if is_open else "closed", "created": created,
            "escalated": i % 97 == 0, "due": at + timedelta(minutes=i % 20_000) if is_open
            else None, "kind": "process" if is_open else None,
            "closed": None if is_open else created, "reason": None if is_open else "processed"}
