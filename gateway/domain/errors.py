"""One tree of errors: what went wrong, and who gets told."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the project raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None,
                 ticket: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # the number of the ticket the message names ("this order already has an open refund
        # ticket, #12"), so a page can link it and a person need not look for it
        self.ticket = ticket
        if code is not None:
            self.code = code


class UserError(GatewayError):
    """The request cannot be done as asked; the person gets this message."""

    code = "invalid"


class NotFound(UserError):
    code = "not_found"


class Forbidden(UserError):
    """The role may not do this (now or ever)."""

    code = "forbidden"


class Conflict(UserError):
    """The ticket's or order's state does not allow this."""

    code = "conflict"


class OutsideWindow(UserError):
    code = "outside_window"


class ConfigError(GatewayError):
    code = "config"


class Reject(GatewayError):
    """Inbound mail refused permanently (SMTP 5xx)."""

    def __init__(self, message: str, *, smtp_code: str = "550 5.7.0",
                 code: str = "rejected") -> None:
        super().__init__(message, code=code)
        self.smtp_code = smtp_code


class Discard(GatewayError):
    """Inbound mail recorded and ignored (auto-replies, bounces, repeats): SMTP 250."""

    code = "discarded"


class RetryLater(GatewayError):
    """A temporary fault: SMTP 451, a worker retries with back-off."""

    code = "retry"

    def __init__(self, message: str, *, delay_seconds: float = 60.0) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds
