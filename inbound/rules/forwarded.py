"""support@ from a vendor or staff member forwarding a customer's mail: it is the customer's.

The forward is filed under the customer who first wrote it and the order it is about, marked
with who forwarded it, never under the forwarder. The forwarder vouches only for having
received it, so nothing in it acts (SPEC 8: a forward is not its author's reply token or
verified mail): its `#` lines are text. A forward by anyone else is left to support-request,
which treats it as the sender's own mail.
"""

from __future__ import annotations

from gateway.domain.facts import Role
from inbound.forwards import Forward
from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, OrderRef, Verdict

name = "forwarded"

_FORWARDERS = (Role.VENDOR, Role.STAFF)


def pick_order(forward: Forward, orders: tuple[OrderRef, ...]) -> OrderRef | None:
    """The order the original sender bought (among those named first), else the only one."""
    own = [o for o in orders if o.customer_email == forward.original_from]
    if own:
        return own[0]
    return orders[0] if len(orders) == 1 else None


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    forward = ctx.forward
    if ctx.recipient_kind != "support" or forward is None:
        return CONTINUE
    order = pick_order(forward, ctx.forward_orders)
    if order is None:
        return CONTINUE
    forwarder = order.role_of(ctx.sender, ctx.staff_email)
    author = order.role_of(forward.original_from, ctx.staff_email)
    if forwarder not in _FORWARDERS or author in _FORWARDERS:
        return CONTINUE  # the customer's own forward, or a vendor's own mail: not a forward
    by = f"forwarded by {ctx.sender} ({forwarder}) from {forward.original_from}"
    if order.open_tech_support is not None:
        return Verdict(Kind.THREAD, "forwarded",
                       f"{by}: threaded to #{order.open_tech_support}, the open tech-support "
                       f"ticket of {order.receipt}", ticket_number=order.open_tech_support,
                       role=Role.CUSTOMER, via="forward", forwarded_by=ctx.sender)
    return Verdict(Kind.OPEN, "opened_forwarded", f"{by}: tech-support request for "
                   f"{order.receipt}", role=Role.CUSTOMER, via="forward",
                   ticket_type="tech_support", receipt=order.receipt, forwarded_by=ctx.sender)
