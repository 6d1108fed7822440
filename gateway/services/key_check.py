"""One signing key per deployment: the database remembers which key first used it.

Every machine of a deployment must sign with the same key, or a link or reply address made on
one machine is refused on another. A role that starts with a different key (a machine whose
`var/secret.key` was generated instead of copied) stops at once and says so, instead of
answering every reply address `550` later.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.errors import ConfigError
from store.models import Counter

FINGERPRINT = "secret_key_fingerprint"


def fingerprint(secret_key: str) -> int:
    """31 bits of an HMAC under the key: tells two keys apart, tells nothing of the key."""
    digest = hmac.new(secret_key.encode(), b"ticketgw key fingerprint", hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def check_key(sessions: sessionmaker[Session], secret_key: str, where: str) -> None:
    """Record the key's fingerprint on first use; refuse a different key after that."""
    mine = fingerprint(secret_key)
    with sessions.begin() as session:
        known = session.execute(
            select(Counter.value).where(Counter.name == FINGERPRINT)).scalar()
    if known is None:
        try:
            with sessions.begin() as session:
                session.add(Counter(name=FINGERPRINT, value=mine))
            return
        except IntegrityError:  # another machine's first start was quicker: compare with it
            with sessions.begin() as session:
                known = session.execute(
                    select(Counter.value).where(Counter.name == FINGERPRINT)).scalar_one()
    if known != mine:
        raise ConfigError(
            f"this machine's signing key is not the one the database {where} is used with: "
            "links and reply addresses made elsewhere would be refused here. Copy secret.key "
            "from a machine already running (or set the same TICKETGW_SECRET_KEY everywhere); "
            "docs/operations.md says how", code="secret_key_mismatch")
