"""A mail loop between two gateways (`ticketgw serve` twice): each one's vendor address is a
reply address of a ticket on the other, the mail between them passes a forwarder that drops
every header a loop is recognised by, and both customers' mailboxes answer every mail. The
notification cap stops it: no gateway mails one recipient on one ticket more than the cap
allows, the rest waits for a digest, and nothing moves any more."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, update

from gateway.domain.clock import SystemClock
from gateway.domain.facts import Role, TicketType
from gateway.domain.settings import parse_settings
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import OutboxMail
from tests.inbound.conftest import make_mail
from tests.reliability.load import Count, stored_copies
from tests.reliability.responder import LoopNetwork
from tests.reliability.servers import RoleProcess, elapsed, smtp_greets
from tests.support.services import free_port, wait_until
from ticketgw.app import build_runtime

CAP = 4  # mails per recipient per ticket in the window (TICKETGW_NOTIFY_CAP)
IN_FLIGHT = 0  # mails being sent by other worker threads count against the cap too
PEOPLE = "people.test"  # where the auto-responding customers live
CUSTOMERS = {"a.test": f"ann@{PEOPLE}", "b.test": f"bob@{PEOPLE}"}
STAFF = Actor(Role.STAFF, source="cli")


def _seed(runtime: Runtime, customer: str) -> int:
    """A vendor (its address set later), an order of `customer`, a tech-support ticket."""
    ctx = runtime.context()
    with runtime.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", f"owner@nobody.{PEOPLE}")
        orders.upsert_order(session, ctx, orders.parse_line({
            "receipt": "LOOP0001", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
            "kind": "digital", "recurring": False, "customer_email": customer,
            "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
            "purchased_at": (ctx.now - timedelta(days=2)).isoformat(), "locale": "en"}))
        return tickets.open_ticket(session, ctx, "LOOP0001", TicketType.TECH_SUPPORT,
                                   Actor(Role.CUSTOMER, source="cli"), comment="Help").number


def _point_vendor_at(runtime: Runtime, address: str) -> None:
    with runtime.sessions.begin() as session:
        vendors.update_vendor(session, runtime.context(), STAFF, "acme", cs_email=address)
        # what seeding mailed goes nowhere: the test starts the loop with one mail
        session.execute(update(OutboxMail).values(state="sent"))


def _outbox(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(OutboxMail.state, func.count())
                                 .group_by(OutboxMail.state)).all())


def test_a_mail_loop_between_two_gateways_stops_at_the_caps(tmp_path: Path,
                                                           report: object) -> None:
    domains = ("a.test", "b.test")
    ports = {domain: free_port() for domain in domains}
    runtimes, numbers, envs = {}, {}, {}
    for domain in domains:
        folder = tmp_path / domain
        folder.mkdir()
        url = f"sqlite:///{folder / 'ticketgw.db'}"
        envs[domain] = {"TICKETGW_DATABASE_URL": url, "TICKETGW_MAIL_DOMAIN": domain,
                        "TICKETGW_SECRET_KEY": f"secret-{domain}",
                        "TICKETGW_OUTBOX_MAILDIR": str(folder / "outbox"),
                        "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{ports[domain]}",
                        "TICKETGW_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
                        "TICKETGW_NOTIFY_CAP": f"{CAP}/600"}
        # the gateways' own clock: a ticket seeded in the past would be warned and closed
        # for inactivity by their deadline sweeps, which is not this test's business
        runtimes[domain] = build_runtime(parse_settings({}, envs[domain]), clock=SystemClock())
        numbers[domain] = _seed(runtimes[domain], CUSTOMERS[domain])

    def reply_address(domain: str) -> str:
        token = runtimes[domain].tokens.reply_token(numbers[domain], Role.CUSTOMER)
        return f"reply+{token}@{domain}"

    a, b = domains
    _point_vendor_at(runtimes[a], reply_address(b))  # each vendor is the other's customer
    _point_vendor_at(runtimes[b], reply_address(a))
    network = LoopNetwork(ports, PEOPLE).start()  # both customers' mailboxes answer all
    gateways = []
    started = time.monotonic()
    try:
        for domain in domains:
            env = {**envs[domain], "TICKETGW_SMTP_RELAY": network.address}
            gateways.append(RoleProcess("serve", env, tmp_path / domain / "serve.log",
                                        tmp_path / domain).start())
        for domain in domains:
            wait_until(lambda d=domain: smtp_greets(ports[d]), 60, 0.05, f"{domain} listens")
        network.accept(reply_address(a), make_mail(sender=CUSTOMERS[a], to=reply_address(a),
                                                   body="Hello?"))
        wait_until(lambda: _quiet(network, runtimes.values()), 120, 0.2,
                   "the loop comes to rest")
        for gateway in gateways:
            gateway.wait_logged("serve ready")
            assert gateway.stop() == 0, gateway.log_text()[-3000:]
    finally:
        for gateway in gateways:
            gateway.kill()
        network.close()
    _check(network, runtimes, started, report)


def _quiet(network: LoopNetwork, runtimes: object) -> bool:
    """Nothing in the network and nothing pending in either outbox, twice over with no mail
    carried in between: no mail can move any more until a digest's window ends."""
    idle, hops = network.idle
    if not idle:
        return False
    if any(_outbox(rt.engine).get("pending", 0) for rt in runtimes):  # type: ignore[attr-defined]
        return False
    return network.idle == (True, hops)


def _check(network: LoopNetwork, runtimes: dict[str, Runtime], started: float,
           report: object) -> None:
    into: dict[str, list[str]] = {domain: [] for domain in runtimes}
    for hop in network.hops:
        if hop.code == 250:
            into[hop.recipient.rpartition("@")[2]].append(hop.message_id)
    copies = {domain: stored_copies(rt.engine, into[domain]) for domain, rt in runtimes.items()}
    stored = sum(1 for d in into for i in into[d] if copies[d].get(i, 0) >= 1)
    acknowledged = sum(len(ids) for ids in into.values())
    count = Count(sent=len(network.hops), acknowledged=acknowledged, stored=stored,
                  duplicates=sum(max(0, n - 1) for c in copies.values() for n in c.values()),
                  lost=acknowledged - stored)
    sent_by = {domain: {rcpt: n for (author, rcpt), n in network.carried.items()
                        if author == domain} for domain in runtimes}
    held = {domain: _outbox(rt.engine).get("deferred", 0) for domain, rt in runtimes.items()}
    failed = {domain: _outbox(rt.engine).get("failed", 0) for domain, rt in runtimes.items()}
    report(f"{count.line()} (the loop stopped after {len(network.hops)} mails into the "
           f"gateways; each gateway's mails per recipient "
           f"{ {d: sorted(s.values()) for d, s in sent_by.items()} }, held for a digest "
           f"{held}; {elapsed(started)} s)")  # type: ignore[operator]
    for rt in runtimes.values():
        rt.close()
    for domain, sent in sent_by.items():
        assert sent and max(sent.values()) <= CAP + IN_FLIGHT, f"{domain} mailed past the cap"
        assert held[domain] >= 1, f"{domain} held nothing back: the cap did not act"
    assert failed == {domain: 0 for domain in runtimes}
    assert (count.stored, count.duplicates, count.lost) == (acknowledged, 0, 0)
