"""support@ from a vendor or staff member forwarding a customer's mail: it is the customer's.

The forward is filed under the customer who first wrote it and the order it is about, marked
with who forwarded it, never under the forwarder. The forwarder vouches only for having
received it, so nothing in it acts (SPEC 8: a forward is not its author's reply token or
verified mail): its `#` lines are text. A forward by anyone else is left to support-request,
which treats it as the sender's own mail.

A forward whose subject (`[Ticket #N]`) or References name a ticket lands on that ticket when
it is the forwarded customer's and the forwarder may see it (its vendor, or staff); the
token only chooses among what the rules below would allow anyway, it never authorises. Any
other named ticket is passed over for the customer's own order, as if none were named.
"""

from __future__ import annotations

from gateway.domain.facts import Role
from inbound.forwards import Forward
from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, OrderRef, TicketRef, Verdict

name = "forwarded"

_FORWARDERS = (Role.VENDOR, Role.STAFF)


def pick_order(forward: Forward, orders: tuple[OrderRef, ...], sender: str,
               staff_email: str) -> OrderRef | None:
    """The order the original sender bought that the forwarder sells (or, for staff, any),
    else their first one, else the only order named."""
    own = [o for o in orders if o.customer_email == forward.original_from]
    seen = [o for o in own if o.role_of(sender, staff_email) in _FORWARDERS]
    if seen or own:
        return (seen or own)[0]
    return orders[0] if len(orders) == 1 else None


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    forward = ctx.forward
    if ctx.recipient_kind != "support" or forward is None or _is_ours(forward, ctx):
        return CONTINUE
    threaded = _on_named_ticket(forward, ctx)
    if threaded is not None:
        return threaded
    order = pick_order(forward, ctx.forward_orders, ctx.sender, ctx.staff_email)
    if order is None:
        return CONTINUE
    forwarder = order.role_of(ctx.sender, ctx.staff_email)
    author = order.role_of(forward.original_from, ctx.staff_email)
    if forwarder not in _FORWARDERS or author in _FORWARDERS:
        return CONTINUE  # the customer's own forward, or a vendor's own mail: not a forward
    by = _by(ctx, forwarder, forward)
    if order.open_tech_support is not None:
        return _thread(ctx, forwarder, order.open_tech_support, f"{by}: threaded to "
                       f"#{order.open_tech_support}, the open tech-support ticket of "
                       f"{order.receipt}")
    return Verdict(Kind.OPEN, "opened_forwarded", f"{by}: tech-support request for "
                   f"{order.receipt}", role=Role.CUSTOMER, via="forward",
                   ticket_type="tech_support", receipt=order.receipt, forwarded_by=ctx.sender,
                   forwarder=forwarder)


def _on_named_ticket(forward: Forward, ctx: MailContext) -> Verdict | None:
    """The verdict for the ticket References or `[Ticket #N]` name, when that ticket is the
    forwarded customer's and the forwarder its vendor or staff; None otherwise."""
    ticket: TicketRef | None = ctx.reference_ticket or ctx.subject_ticket
    if ticket is None:
        return None
    if ticket.role_of(forward.original_from, ctx.staff_email) is not Role.CUSTOMER:
        return None
    forwarder = ticket.role_of(ctx.sender, ctx.staff_email)
    if forwarder not in _FORWARDERS:
        return None
    named_by = "References" if ctx.reference_ticket is not None else "the subject"
    return _thread(ctx, forwarder, ticket.number, f"{_by(ctx, forwarder, forward)}: threaded to "
                   f"#{ticket.number}, named by {named_by}")


def _is_ours(forward: Forward, ctx: MailContext) -> bool:
    """A forward of a mail we sent (a ticket or sale mail): no customer wrote it."""
    return forward.original_from.rpartition("@")[2] == ctx.mail_domain.lower()


def _by(ctx: MailContext, forwarder: Role | None, forward: Forward) -> str:
    return f"forwarded by {ctx.sender} ({forwarder}) from {forward.original_from}"


def _thread(ctx: MailContext, forwarder: Role, number: int, reason: str) -> Verdict:
    return Verdict(Kind.THREAD, "forwarded", reason, ticket_number=number, role=Role.CUSTOMER,
                   via="forward", forwarded_by=ctx.sender, forwarder=forwarder)
