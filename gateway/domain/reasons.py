"""Reason and problem codes (SPEC 11.13): data, labelled per locale by the templates."""

from __future__ import annotations

from gateway.domain.errors import UserError
from gateway.domain.facts import TicketType
from gateway.domain.texts import _

REFUND_REASONS = ("not_received", "not_as_described", "technical_issue", "not_satisfied",
                  "unauthorized", "duplicate", "other")
CANCELLATION_REASONS = ("too_expensive", "not_using", "technical_issue", "other")
PROBLEMS = ("cannot_download", "cannot_login", "not_received", "not_working", "other")

CODES: dict[TicketType, tuple[str, ...]] = {
    TicketType.REFUND: REFUND_REASONS,
    TicketType.CANCELLATION: CANCELLATION_REASONS,
    TicketType.TECH_SUPPORT: PROBLEMS,
}


def check_code(ticket_type: TicketType, code: str | None) -> str:
    """The code to store: a missing one is `other`; an unknown one is a clear error."""
    if not code:
        return "other"
    code = code.strip().lower()
    allowed = CODES[ticket_type]
    if code not in allowed:
        if ticket_type is TicketType.TECH_SUPPORT:
            message = _("unknown problem %(code)s for a tech-support ticket; use one of: "
                        "%(codes)s", code=repr(code), codes=", ".join(allowed))
        elif ticket_type is TicketType.REFUND:
            message = _("unknown reason %(code)s for a refund ticket; use one of: %(codes)s",
                        code=repr(code), codes=", ".join(allowed))
        else:
            message = _("unknown reason %(code)s for a cancellation ticket; use one of: "
                        "%(codes)s", code=repr(code), codes=", ".join(allowed))
        raise UserError(message, code="invalid_reason")
    return code
