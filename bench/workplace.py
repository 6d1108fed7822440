"""Workplace benchmark: a vendor's ticket list among 100,000 tickets of 1,000 vendors.

Run from the repository root: `python bench/workplace.py [--tickets N] [--runs N]`. On SQLite
(a temporary file) and on PostgreSQL (a throw-away database on the test suite's server;
`--no-postgres` skips it), the list of the vendor with 5,000 tickets is read as the page reads
it (`gateway.services.workplace.list_tickets`: count, one page of 25, bouncing addresses) and
timed beside a bare indexed query in the same run; p50, p99 and their ratio are printed, and
the query plans. Nothing is asserted: it prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.dialects import postgresql, sqlite  # noqa: E402

from gateway.services import workplace  # noqa: E402
from store.db import make_engine, make_sessions, migrate  # noqa: E402
from ticketgw.testing.bulk import seed_marketplace  # noqa: E402
from ticketgw.testing.services import postgres_url  # noqa: E402

BIG_VENDOR = 1
BARE = "SELECT id, receipt FROM orders WHERE vendor_id = :v ORDER BY id LIMIT 25"
SEARCHES = {
    "open tickets, page 1": workplace.TicketSearch(BIG_VENDOR),
    "open tickets, page 40": workplace.TicketSearch(BIG_VENDOR, page=40),
    "all of its, page 1": workplace.TicketSearch(BIG_VENDOR, status="all"),
    "by receipt": workplace.TicketSearch(BIG_VENDOR, text="R000000010", status="all"),
    "by customer address": workplace.TicketSearch(BIG_VENDOR, text="c5@example.org",
                                                  status="all"),
    "by number": workplace.TicketSearch(BIG_VENDOR, text="#1010", status="all"),
}


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm: the first run reads the pages into the cache
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return sorted(out)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def plan(engine: Engine, search: workplace.TicketSearch) -> list[str]:
    query = workplace.ticket_query(search).limit(workplace.PER_PAGE)
    if engine.dialect.name == "sqlite":
        sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN "
    else:
        sql = str(query.compile(dialect=postgresql.dialect(),
                                compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + sql).all()
    return [" | ".join(str(c) for c in row[-1:]) for row in rows]


def run(label: str, url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        start = time.perf_counter()
        seed_marketplace(engine, vendors=args.vendors, tickets=args.tickets, big=args.big)
        print(f"\n== {label}: {args.tickets:,} tickets, {args.vendors:,} vendors, vendor 1 has "
              f"{args.big:,} (seeded in {time.perf_counter() - start:.1f} s)")
        sessions = make_sessions(engine)

        def bare() -> None:
            with engine.connect() as conn:
                conn.execute(text(BARE), {"v": BIG_VENDOR}).all()

        base = timings(bare, args.runs)
        print(f"{'bare indexed query':24} p50 {p(base, .5):6.2f} ms  p99 {p(base, .99):6.2f} ms")
        for name, search in SEARCHES.items():
            def listing(search: workplace.TicketSearch = search) -> None:
                with sessions() as session:
                    workplace.list_tickets(session, search)

            got = timings(listing, args.runs)
            print(f"{name:24} p50 {p(got, .5):6.2f} ms  p99 {p(got, .99):6.2f} ms  "
                  f"ratio p50 {p(got, .5) / p(base, .5):5.1f}x p99 "
                  f"{p(got, .99) / p(base, .99):5.1f}x  "
                  f"{'under' if p(got, .99) < 50 else 'OVER'} 50 ms")
        with sessions() as session:
            page = workplace.list_tickets(session, SEARCHES["open tickets, page 1"])
        print(f"(the vendor's open tickets: {page.total:,}; mean of a run is "
              f"{statistics.mean(base) * 1000:.2f} ms bare)")
        for name in ("open tickets, page 1", "by receipt", "by customer address"):
            print(f"plan, {name}:")
            for line in plan(engine, SEARCHES[name]):
                print("   ", line)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--vendors", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=5_000, help="tickets of vendor 1")
    parser.add_argument("--runs", type=int, default=300, help="timed runs of each query")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.db", args)
    if not args.no_postgres:
        with postgres_url() as url:
            run("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
