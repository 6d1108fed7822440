"""What every service call is handed: the policy, the instant, who acts, what mail it came in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.domain.facts import Role
from gateway.domain.policy import Policy


@dataclass(frozen=True)
class StoredAttachment:
    """One attachment as a message keeps it (a row of `attachments`)."""

    filename: str
    content_type: str
    size: int
    data: bytes | None  # None when it was too large to keep (listed by name and size)
    stored_name: str  # the name it is stored under
    content_id: str | None = None  # without <>: what `cid:` URLs in the message's HTML name


@dataclass(frozen=True)
class ServiceContext:
    policy: Policy
    now: datetime  # the instant the request counts as made (`--at`, or the clock)
    recorded_at: datetime  # the real time, kept in the event log beside `now`
    staff_email: str = "staff@tickets.localhost"
    mail_domain: str = "tickets.localhost"  # the right side of our outbound Message-IDs


@dataclass(frozen=True)
class Actor:
    role: Role
    email: str | None = None
    source: str = "cli"  # email | web | api | cli | system
    verified: bool = True  # may act (not only comment)


@dataclass(frozen=True)
class MailOrigin:
    """Where a message written to a ticket came from, kept beside its text: the mail's
    Message-ID, its full original text (for audit), its inbound row, its attachments and its
    HTML (the ticket page shows it as the sender formatted it, pictures in place).
    A message typed on the web or the command line has none (`NO_ORIGIN`)."""

    message_id: str | None = None
    original: str | None = None
    inbound_id: int | None = None
    attachments: tuple[StoredAttachment, ...] = ()
    subject: str | None = None  # a ticket opened by the mail keeps it as its title
    html: str | None = None  # the mail's HTML, cleaned at intake, `cid:` pictures kept


NO_ORIGIN = MailOrigin()
