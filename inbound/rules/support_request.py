"""support@ without a thread: a party's new tech-support ticket, or a reply to the open one."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict, reject
from inbound.rules.legacy_request import NO_ORDER, NOT_PARTY, pick_order

name = "support-request"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if ctx.recipient_kind != "support":
        return CONTINUE
    order, via = pick_order(ctx)
    if order is None:
        return reject("550 5.7.0", "rejected_no_order", NO_ORDER)
    role = order.role_of(ctx.sender, ctx.staff_email)
    if role is None:  # SPEC 11.8
        return reject("550 5.7.1", "rejected_not_party", NOT_PARTY)
    if order.open_tech_support is not None:
        return Verdict(Kind.THREAD, "threaded", f"threaded to #{order.open_tech_support}, the "
                       f"open tech-support ticket of {order.receipt}",
                       ticket_number=order.open_tech_support, role=role, may_act=False, via=via)
    return Verdict(Kind.OPEN, "opened", f"tech-support request by {role} for {order.receipt}",
                   role=role, may_act=ctx.verified, via=via, ticket_type="tech_support",
                   receipt=order.receipt)
