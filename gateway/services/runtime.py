"""The wired parts every role hands down: settings, engine, sessions, policy, tokens, clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.clock import Clock, SystemClock
from gateway.domain.policy import Policy
from gateway.domain.settings import Settings
from gateway.domain.tokens import Tokens
from gateway.services.context import ServiceContext
from gateway.services.execution import RecordingExecutor, RefundExecutor


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policy: Policy
    tokens: Tokens
    clock: Clock = field(default_factory=SystemClock)
    executor: RefundExecutor | None = None

    def context(self, at: datetime | None = None) -> ServiceContext:
        now = self.clock.now()
        return ServiceContext(policy=self.policy, now=at or now, recorded_at=now,
                              staff_email=self.settings.staff_email,
                              mail_domain=self.settings.mail_domain)

    @property
    def refunds(self) -> RefundExecutor:
        if self.executor is None:
            self.executor = RecordingExecutor(self.policy)
        return self.executor

    def close(self) -> None:
        self.engine.dispose()
