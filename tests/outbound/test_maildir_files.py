"""The outbox Maildir is its owner's alone: its mails carry reply addresses and signed links."""

from __future__ import annotations

import mailbox
from pathlib import Path

from outbound.deliver import Deliverer
from outbound.sweeps import sweep_outbox
from tests.support.files import not_owner_only, usual_umask
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.story import open_refund, seed_order


def test_maildir_folders_and_mails_are_owner_only_under_umask_022(migrated_url: str,
                                                                  tmp_path: Path) -> None:
    with usual_umask():
        runtime = make_runtime(migrated_url, tmp_path)
        try:
            seed_order(runtime, notify=True)
            open_refund(runtime)
            deliverer = Deliverer(runtime)
            sweep_outbox(runtime.sessions, runtime.clock,
                         lambda oid, lease: deliverer.deliver(oid, lease) and None)
        finally:
            runtime.close()
    outbox = tmp_path / "outbox"
    box = mailbox.Maildir(str(outbox), factory=None, create=False)
    mails = [m.as_bytes() for m in box]
    assert len(mails) == 4 and all(b"X-Ticket-Event" in m for m in mails)
    assert {p.name for p in outbox.iterdir()} == {"tmp", "new", "cur"}
    assert not list((outbox / "tmp").iterdir())
    assert not_owner_only(outbox) == {}
