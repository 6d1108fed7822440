"""refunds@ and cancel@: each mail asks for a refund or cancellation of one order (SPEC 8)."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, OrderRef, Verdict, reject

name = "legacy-request"

_TYPES = {"refunds": "refund", "cancel": "cancellation"}
NO_ORDER = ("no order found for this request: put the receipt number (such as ABCD1234) in the "
            "subject, or write from the address used for the order")
NOT_PARTY = ("write from the address used for the order, or use the receipt page "
             "(the link is in your order receipt mail)")


def pick_order(ctx: MailContext) -> tuple[OrderRef | None, str]:
    """The order a mail is about: a named receipt the sender is party of, else the sender's
    single order; ("", reason) when there is none. `via` says how it was found."""
    if ctx.named_orders:
        own = [o for o in ctx.named_orders if o.role_of(ctx.sender, ctx.staff_email)]
        if len(own) >= 1:
            return own[0], "receipt"
        return ctx.named_orders[0], "receipt"
    if len(ctx.sender_orders) == 1:
        return ctx.sender_orders[0], "sender_order"
    return None, ""


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    ticket_type = _TYPES.get(ctx.recipient_kind)
    if ticket_type is None:
        return CONTINUE
    order, via = pick_order(ctx)
    if order is None:
        return reject("550 5.7.0", "rejected_no_order", NO_ORDER)
    role = order.role_of(ctx.sender, ctx.staff_email)
    if role is None:
        return reject("550 5.7.1", "rejected_not_party", NOT_PARTY)
    verified = "verified" if ctx.verified else "unverified, awaiting confirmation"
    return Verdict(Kind.OPEN, "opened", f"{ticket_type} request by {role} for {order.receipt} "
                   f"({verified})", role=role, may_act=ctx.verified, via=via,
                   ticket_type=ticket_type, receipt=order.receipt)
