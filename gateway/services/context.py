"""What every service call is handed: the policy, the instant, and who acts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.domain.facts import Role
from gateway.domain.policy import Policy


@dataclass(frozen=True)
class ServiceContext:
    policy: Policy
    now: datetime  # the instant the request counts as made (`--at`, or the clock)
    recorded_at: datetime  # the real time, kept in the event log beside `now`
    staff_email: str = "staff@tickets.localhost"


@dataclass(frozen=True)
class Actor:
    role: Role
    email: str | None = None
    source: str = "cli"  # email | web | api | cli | system
    verified: bool = True  # may act (not only comment)
