"""What the reply form of a ticket page adds to the text: a vendor's saved reply template,
and the refund beside the text with its reason (the seed's "$": reply and approve at once).

The ticket page and the workplace's ticket page share it (`web.ticket`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway.domain import rules
from gateway.domain.errors import UserError
from gateway.domain.facts import Action, Role
from gateway.domain.texts import _
from gateway.services import reply_texts
from gateway.services.runtime import Runtime
from store.models import Ticket


def choices(runtime: Runtime, session: Session, ticket: Ticket, party: Role,
            allowed: frozenset[Action]) -> dict[str, Any]:
    """The page's lists: `templates` (a vendor's), `reply_refund_reasons` (the refund a
    vendor may approve with a reply) and `refund_reasons` (beside the refund button)."""
    may_refund = Action.REFUND in allowed and ticket.type != "cancellation"
    reasons = list(rules.refund_reasons(runtime.policy, party)) if may_refund else []
    return {
        "templates": reply_texts.template_names(session, ticket.order.vendor_id)
        if party is Role.VENDOR else [],
        "reply_refund_reasons": reasons if party is Role.VENDOR and Action.REPLY in allowed
        else [],
        "refund_reasons": reasons,
    }


def read(form: dict[str, str], action: Action, value: str | None
         ) -> tuple[Action, str | None, str | None]:
    """(action, value, template) of a posted form: a reply with a refund reason is the
    refund with that reason (the reply's text as its comment)."""
    template = form.get("template", "").strip() or None
    if action is Action.REPLY:
        reason = form.get("refund_reason", "").strip()
        if reason:
            return Action.REFUND, reason, template
    elif action is Action.REFUND:
        return action, form.get("reason", "").strip() or None, template
    if template is not None and action is not Action.REPLY:
        raise UserError(_("a reply template goes with the Reply button; choose it there"))
    return action, value, template
