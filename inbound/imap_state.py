"""What the IMAP poller keeps in the database: each mailbox's watermark, each mail's tries.

Per account and mailbox: the UIDVALIDITY and the watermark (`ImapState`); per mail still in
the mailbox: how often it was tried (`ImapAttempt`)."""

from __future__ import annotations

import logging

from sqlalchemy import delete, update

from gateway.services.runtime import Runtime
from store.models import ImapAttempt, ImapState

log = logging.getLogger("ticketgw.imap")

# A mail is (account key, UIDVALIDITY, UID).
Where = tuple[str, int, int]


def count_try(runtime: Runtime, where: Where) -> int | None:
    """One more try of this mail, committed before the try: which one it is. None when the
    database cannot count it."""
    try:
        with runtime.sessions.begin() as session:
            row = session.get(ImapAttempt, where)
            if row is None:
                row = ImapAttempt(mailbox=where[0], uidvalidity=where[1], uid=where[2], tries=0)
                session.add(row)
            row.tries += 1
            return int(row.tries)
    except Exception:  # noqa: BLE001 - an outage: the mail stays for a later pass
        log.exception("could not count a try of an imap mail")
        return None


def forget_tries(runtime: Runtime, where: Where, *, one: bool = False) -> None:
    """The mail left the mailbox: its count goes; `one`: take back only this try."""
    try:
        with runtime.sessions.begin() as session:
            row = session.get(ImapAttempt, where)
            if row is not None and one and row.tries > 1:
                row.tries -= 1
            elif row is not None:
                session.delete(row)
    except Exception:  # noqa: BLE001 - a stale count only ever ends in `Failed` sooner
        log.exception("could not clear the tries of an imap mail")


def load_state(runtime: Runtime, key: str, uidvalidity: int) -> tuple[int, bool]:
    """(watermark, whether UIDVALIDITY changed); a change restarts from UID 0."""
    with runtime.sessions.begin() as session:
        state = session.get(ImapState, key)
        if state is None:
            session.add(ImapState(mailbox=key, uidvalidity=uidvalidity, last_uid=0))
            return 0, False
        if state.uidvalidity != uidvalidity:
            log.warning("imap UIDVALIDITY changed; rescanning the mailbox", extra={
                "mailbox": key.rsplit("/", 1)[-1], "old": state.uidvalidity,
                "new": uidvalidity})
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            session.execute(delete(ImapAttempt).where(  # the old UIDs mean nothing now
                ImapAttempt.mailbox == key, ImapAttempt.uidvalidity != uidvalidity))
            return 0, True
        return int(state.last_uid), False


def save_watermark(runtime: Runtime, key: str, uidvalidity: int, uid: int) -> None:
    with runtime.sessions.begin() as session:
        session.execute(update(ImapState).where(
            ImapState.mailbox == key, ImapState.uidvalidity == uidvalidity,
            ImapState.last_uid < uid).values(last_uid=uid))
        session.execute(delete(ImapAttempt).where(  # mail below the watermark has left
            ImapAttempt.mailbox == key, ImapAttempt.uid <= uid))
