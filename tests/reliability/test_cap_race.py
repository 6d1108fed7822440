"""Two worker threads delivering two mails to one recipient on one ticket at the same moment,
with a cap of one mail per window: one is sent, the other waits for the digest.

Found by the mail loop (test_mail_loop.py): gateway B sent 5 replies to one customer on one
ticket with a cap of 4. A worker decides whether a mail is over the cap from the mails to that
recipient already marked `sent`; a mail another thread (or worker process) is sending at that
very moment is not counted yet, so each sender in flight can pass the cap once more.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.domain.facts import Action, Role
from gateway.services import tickets
from gateway.services.context import Actor
from outbound.deliver import Deliverer
from outbound.transports import RelayTransport
from tests.support.runtime import backend, migrated_url  # noqa: F401 - the parametrised fixtures
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import CUSTOMER, VENDOR, open_refund, outbox, seed_order


class _Together(RelayTransport):
    """The real relay connection; a send waits (up to a few seconds) until the other thread
    sends too: the moment two busy worker threads reach by themselves."""

    def __init__(self, sink: SmtpSink, both: threading.Barrier) -> None:
        super().__init__(sink.host, sink.port)
        self.both = both

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            self.both.wait()
        except threading.BrokenBarrierError:
            pass  # the other mail was held back: it never gets here
        super().send(sender, recipient, raw)


def test_two_mails_sent_at_once_do_not_pass_a_cap_of_one(migrated_url: str,  # noqa: F811
                                                          tmp_path: Path,
                                                          smtp_sink: SmtpSink) -> None:
    runtime = make_runtime(migrated_url, tmp_path, smtp_relay=smtp_sink.address,
                           notify_cap="1/600")
    seed_order(runtime)
    number = open_refund(runtime)
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.REPLY,
                    Actor(Role.CUSTOMER, email=CUSTOMER, source="web"), comment="Any news?")
    to_vendor = [row.id for row in outbox(runtime) if row.recipient == VENDOR]
    assert len(to_vendor) == 2  # opened, then the reply
    deliverer = Deliverer(runtime, transport=_Together(smtp_sink, threading.Barrier(2, timeout=3)))
    results: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: results.update({i: deliverer.deliver(i)}))
               for i in to_vendor]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    states = sorted(row.state for row in outbox(runtime) if row.recipient == VENDOR)
    runtime.close()
    assert sorted(results.values()) == ["deferred", "sent"], results
    assert states == ["deferred", "sent"]
