"""Who may take which action on a ticket now (SPEC 5 and 11): pure, like the other rules.

The decisions where the specification is silent are listed in `gateway.domain.rules`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.domain.amounts import check_refundable
from gateway.domain.errors import Conflict, Forbidden, UserError
from gateway.domain.facts import (
    Action,
    DeadlineRule,
    OrderFacts,
    Role,
    Status,
    TicketFacts,
    TicketType,
    VendorFacts,
)
from gateway.domain.policy import Policy
from gateway.domain.rules import (
    KIND_ACTIONS,
    already_open,
    check_executable,
    check_refund_window,
)
from gateway.domain.texts import _

_ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.CUSTOMER: frozenset({Action.REPLY, Action.CLOSE, Action.TECHSUPPORT, Action.REFUND,
                              Action.AGREE, Action.DISPUTE}),
    Role.VENDOR: frozenset({Action.REPLY, Action.CLOSE, Action.TECHSUPPORT, Action.REFUND,
                            Action.ESCALATE, Action.RETURNED}) | KIND_ACTIONS,
    Role.STAFF: frozenset(Action) - {Action.AGREE, Action.DISPUTE},
    Role.SYSTEM: frozenset(),
}
# What a vendor whose may_respond was revoked can no longer do on refund/cancellation tickets.
_REVOCABLE = frozenset({Action.REPLY, Action.CLOSE, Action.TECHSUPPORT}) | KIND_ACTIONS


def check_action(policy: Policy, action: Action, role: Role, ticket: TicketFacts,
                 order: OrderFacts, vendor: VendorFacts, now: datetime) -> None:
    """Raise Forbidden/Conflict with a sentence a person can act on when not allowed."""
    _check_role(action, role)
    if ticket.status is Status.CLOSED:
        _check_closed(action, role, ticket, order, now)
    elif action is Action.REOPEN:
        raise Conflict(_("this ticket is open; only a closed ticket can be reopened"))
    elif ticket.awaiting_confirmation and role is not Role.STAFF:
        raise Conflict(_(
            "this request waits for its sender to confirm it with the link we mailed; "
            "nothing can change on the ticket until then"
        ))
    elif action in (Action.AGREE, Action.DISPUTE):
        _check_consent(action, ticket, order, now)
    elif ticket.type is TicketType.TECH_SUPPORT:
        _check_on_tech_support(policy, action, role, ticket, order, vendor, now)
    else:
        _check_on_refund_or_cancellation(action, role, ticket, order, vendor)


def allowed_actions(policy: Policy, role: Role, ticket: TicketFacts, order: OrderFacts,
                    vendor: VendorFacts, now: datetime) -> frozenset[Action]:
    """Every action check_action lets `role` take now (what a web page or mail offers)."""
    allowed = set()
    for action in Action:
        try:
            check_action(policy, action, role, ticket, order, vendor, now)
        except UserError:
            continue
        allowed.add(action)
    return frozenset(allowed)


def _check_role(action: Action, role: Role) -> None:
    if action in _ROLE_ACTIONS[role]:
        return
    if role is Role.SYSTEM:
        raise Forbidden(_("the system does not take party actions on tickets"))
    if action is Action.REOPEN:
        hint = (_("reply to the closed ticket to open a follow-up") if role is Role.CUSTOMER
                else _("ask staff to reopen it"))
        raise Forbidden(_("only staff can reopen a closed ticket; %(hint)s", hint=hint))
    if action in (Action.AGREE, Action.DISPUTE):
        raise Forbidden(_("only the customer can agree to or dispute a vendor's change"))
    if action in KIND_ACTIONS:
        raise Forbidden(_("only the vendor or staff can change the refund kind; reply to ask "
                          "for it"))
    if action is Action.RETURNED:
        raise Forbidden(_("only the vendor or staff can acknowledge returned goods"))
    # What is left is a customer's escalation.
    raise Forbidden(_("only the vendor can escalate a ticket to staff; reply on the ticket "
                      "instead"))


def _check_closed(action: Action, role: Role, ticket: TicketFacts, order: OrderFacts,
                  now: datetime) -> None:
    if action is Action.REOPEN:
        _check_can_run(ticket.type, order, REOPENED)
        return
    if action in (Action.AGREE, Action.DISPUTE):
        _check_consent(action, ticket, order, now)
        return
    hint = {
        Role.CUSTOMER: _("reply to it to open a follow-up tech-support ticket"),
        Role.VENDOR: _("staff can reopen it"),
    }.get(role, _("reopen it first"))
    raise Conflict(_("this ticket is closed; %(hint)s", hint=hint))


def _check_consent(action: Action, ticket: TicketFacts, order: OrderFacts,
                   now: datetime) -> None:
    if ticket.disputable_until is None:
        raise Conflict(_("there is no change by the vendor on this ticket to agree to or "
                         "dispute"))
    if now > ticket.disputable_until:
        until = ticket.disputable_until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise Conflict(_("the vendor's change could be disputed until %(until)s; that time has "
                         "passed", until=until))
    if action is Action.DISPUTE:  # the request comes back and executes in 5 minutes
        _check_can_run(ticket.restore_type or ticket.type, order, DISPUTED)


# What could not be done to a request that could no longer execute (`_check_can_run`).
REOPENED, DISPUTED, PROCESSED = "reopened", "brought back", "processed"


def _check_can_run(ticket_type: TicketType, order: OrderFacts, what: str) -> None:
    """A request that could no longer execute gets no deadline: it would only fail when due."""
    if ticket_type is TicketType.TECH_SUPPORT:
        return  # a tech-support ticket never executes
    try:
        check_executable(ticket_type, order)
    except Conflict as exc:
        if ticket_type is TicketType.CANCELLATION:
            raise Conflict(_cancellation_cannot_run(what, exc.message)) from None
        raise Conflict(_refund_cannot_run(what, exc.message)) from None


# one whole sentence per request and case, so each language can agree its words with them
def _refund_cannot_run(what: str, reason: str) -> str:
    if what == REOPENED:
        return _("%(reason)s, so this refund request cannot be reopened; open a tech-support "
                 "ticket to keep talking about the order", reason=reason)
    if what == DISPUTED:
        return _("%(reason)s, so this refund request cannot be brought back; open a "
                 "tech-support ticket to keep talking about the order", reason=reason)
    return _("%(reason)s, so this refund request cannot be processed; open a tech-support "
             "ticket to keep talking about the order", reason=reason)


def _cancellation_cannot_run(what: str, reason: str) -> str:
    if what == REOPENED:
        return _("%(reason)s, so this cancellation request cannot be reopened; open a "
                 "tech-support ticket to keep talking about the order", reason=reason)
    if what == DISPUTED:
        return _("%(reason)s, so this cancellation request cannot be brought back; open a "
                 "tech-support ticket to keep talking about the order", reason=reason)
    return _("%(reason)s, so this cancellation request cannot be processed; open a "
             "tech-support ticket to keep talking about the order", reason=reason)


def _check_escalate(ticket: TicketFacts) -> None:
    if ticket.escalated:
        raise Conflict(_("this ticket is already escalated to staff; reply to add to it"))


def _check_on_tech_support(policy: Policy, action: Action, role: Role, ticket: TicketFacts,
                           order: OrderFacts, vendor: VendorFacts, now: datetime) -> None:
    if action in (Action.REPLY, Action.CLOSE):
        return
    if action is Action.ESCALATE:
        _check_escalate(ticket)
        return
    if action is Action.TECHSUPPORT:
        raise Conflict(_("this ticket is already a tech-support ticket"))
    if action is Action.REFUND:  # the vendor's Please Refund, or a conversion
        if TicketType.REFUND in ticket.open_types:
            raise already_open(TicketType.REFUND, ticket.open_types[TicketType.REFUND])
        check_refundable(order)
        check_refund_window(policy, role, order, vendor, now)
        return
    raise Conflict(_("a tech-support ticket has no refund to change; turn it into a refund "
                     "first"))


def _check_on_refund_or_cancellation(action: Action, role: Role, ticket: TicketFacts,
                                     order: OrderFacts, vendor: VendorFacts) -> None:
    if role is Role.VENDOR and not vendor.may_respond and action in _REVOCABLE:
        raise Forbidden(_(
            "your right to answer refund and cancellation tickets was revoked after "
            "%(disputes)s disputed changes, so this request will be processed as asked; staff "
            "can restore the right", disputes=vendor.dispute_count), code="right_revoked"
        )
    if action in (Action.REPLY, Action.CLOSE, Action.TECHSUPPORT):
        return
    if action is Action.ESCALATE:
        _check_escalate(ticket)
    elif action is Action.REFUND:
        if role is Role.CUSTOMER:
            raise Conflict(
                _("this ticket already asks for a refund") if ticket.type is TicketType.REFUND
                else _("this is a cancellation; to ask for a refund, open a refund request "
                       "from the receipt page")
            )
        _check_can_run(ticket.type, order, PROCESSED)
    elif action is Action.RETURNED:
        if not _return_awaited(ticket, order):
            raise Conflict(_("no returned goods are awaited on this ticket"))
    else:
        _check_kind_change(action, role, ticket, order, vendor)


def _check_kind_change(action: Action, role: Role, ticket: TicketFacts, order: OrderFacts,
                       vendor: VendorFacts) -> None:
    if ticket.type is not TicketType.REFUND:
        raise Conflict(_("a cancellation has no refund kind; close it or change it to tech "
                         "support"))
    check_refundable(order)
    if action is Action.PARTIAL and role is Role.VENDOR and not vendor.partial_refunds_enabled:
        raise Forbidden(_(
            "partial refunds by amount are not enabled for your account; refund a percentage "
            "or a quantity, or ask staff to enable partial refunds"
        ))
    if action is Action.QUANTITY and order.quantity <= 1:
        raise Conflict(_("this order has a quantity of 1; a refund by quantity needs more "
                         "items"))


def _return_awaited(ticket: TicketFacts, order: OrderFacts) -> bool:
    if ticket.type is not TicketType.REFUND:
        return False
    if ticket.deadline_rule is not None:
        return ticket.deadline_rule is DeadlineRule.AWAIT_RETURN
    # Facts built without the stored rule: infer it from the order.
    return order.kind == "physical" and order.shipped and order.return_info
