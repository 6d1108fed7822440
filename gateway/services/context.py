"""What every service call is handed: the policy, the instant, who acts, what mail it came in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.domain.facts import Role
from gateway.domain.policy import Policy

# One attachment as a message keeps it: (file name, content type, size, the data or None
# when it was too large to keep, the name it is stored under).
StoredAttachment = tuple[str, str, int, bytes | None, str]


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
    Message-ID, its full original text (for audit), its inbound row and its attachments.
    A message typed on the web or the command line has none (`NO_ORIGIN`)."""

    message_id: str | None = None
    original: str | None = None
    inbound_id: int | None = None
    attachments: tuple[StoredAttachment, ...] = ()
    subject: str | None = None  # a ticket opened by the mail keeps it as its title


NO_ORIGIN = MailOrigin()
