"""A ticket read as one row with what its rules need, and a reply written from that row.

The row holds what the rules need of the ticket's order, vendor and product.

Intake runs this for every reply by mail. Loading a Ticket builds four tracked objects
(ticket, order, vendor, product) and costs about four times this one Core statement
(bench/inbound.py); a reply changes only history rows and the ticket's clock, so it needs
none of the tracking. Everything else (commands, a closed ticket's follow-up, a recurring
product whose rules read its bills) takes the Ticket through `tickets.act`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Label, bindparam, select
from sqlalchemy.orm import Session

from gateway.domain import actions
from gateway.domain.errors import UserError
from gateway.domain.facts import Action, Role, Status
from gateway.domain.texts import _
from gateway.services import journal, mail_state
from gateway.services.context import (
    NO_ORIGIN,
    Actor,
    MailOrigin,
    ServiceContext,
)
from gateway.services.snapshots import order_facts_of, ticket_facts_of, vendor_facts
from gateway.services.ticket_state import (
    ByNumber,
    activity_columns,
    due_columns,
    write_message,
)
from store.models import Order, Product, Ticket, Vendor


@dataclass(slots=True)
class TicketRow:
    """One ticket as its rules and its mail need it, as read (a snapshot: nothing writes
    it back); field names are the columns' names, in the statement's order. Not frozen:
    a frozen dataclass of 40 fields costs more to build than the statement to run."""

    id: int
    number: int
    order_id: int
    type: str
    status: str
    created_by: str
    created_at: datetime
    refund_kind: str | None
    refund_value: Decimal | None
    escalated: bool
    awaiting_confirmation: bool
    disputable_until: datetime | None
    close_reason: str | None
    last_activity_at: datetime | None
    last_activity_side: str | None
    warnings_sent: int
    process_rule: str | None
    process_at: datetime | None
    restore_type: str | None
    due_at: datetime | None
    due_kind: str | None
    # what its mail shows of it (gateway.services.mail_state)
    reason: str | None
    problem: str | None
    refund_amount: Decimal | None
    closed_at: datetime | None
    escalation_note: str | None
    title: str | None
    # the order
    customer_email: str
    locale: str
    purchased_at: datetime
    amount: Decimal
    quantity: int
    refunded_amount: Decimal
    subscription: str | None
    shipped: bool
    return_info: bool
    support_active: bool
    # its product
    kind: str
    recurring: bool
    # its vendor
    account_email: str
    cs_email: str | None
    vendor_locale: str
    timezone: str
    may_respond: bool
    partial_refunds_enabled: bool
    dispute_count: int

    @property
    def vendor_addresses(self) -> frozenset[str]:
        return frozenset(a for a in (self.account_email, self.cs_email) if a)

    def address_of(self, party: Role, staff_email: str) -> tuple[str, str]:
        """(address, locale) a party of this ticket is mailed at."""
        return journal.pick_address(party, (self.customer_email, self.locale),
                                    (self.cs_email or self.account_email, self.vendor_locale),
                                    staff_email)


def _columns() -> list[Label[Any]]:
    tables = {"ticket": Ticket, "order": Order, "product": Product, "vendor": Vendor}
    renamed = {"vendor_locale": ("vendor", "locale")}
    order_fields = {"customer_email", "locale", "purchased_at", "amount", "quantity",
                    "refunded_amount", "subscription", "shipped", "return_info",
                    "support_active"}
    product_fields = {"kind", "recurring"}
    vendor_fields = {"account_email", "cs_email", "timezone", "may_respond",
                     "partial_refunds_enabled", "dispute_count"}
    columns = []
    for field in dataclasses.fields(TicketRow):
        owner, name = renamed.get(field.name, (
            "order" if field.name in order_fields else "product" if field.name in product_fields
            else "vendor" if field.name in vendor_fields else "ticket", field.name))
        columns.append(journal.table_of(tables[owner]).c[name].label(field.name))
    return columns


# built once: intake reads a ticket this way for every mail that names one
_ROW_BY_NUMBER = ByNumber(
    select(*_columns())
    .join_from(Ticket, Order, Order.id == Ticket.order_id)
    .join(Vendor, Vendor.id == Order.vendor_id).join(Product, Product.id == Order.product_id)
    .where(Ticket.number == bindparam("number")), orm=False)


def load_row(session: Session, number: int) -> TicketRow | None:
    """The ticket numbered `number`, or None. On PostgreSQL its row stays locked until the
    transaction ends, as `find_ticket(lock=True)` locks it for an action."""
    result = _ROW_BY_NUMBER(session, number, lock=True)
    row = result.first() if result is not None else None
    return TicketRow(*tuple(row)) if row is not None else None


def can_reply(row: TicketRow) -> bool:
    """Whether `reply` can take this ticket: open, and no bills for the rules to read."""
    return row.status == Status.OPEN.value and not row.recurring


def reply(session: Session, ctx: ServiceContext, row: TicketRow, actor: Actor,
               comment: str, origin: MailOrigin = NO_ORIGIN) -> None:
    """`tickets.act(..., Action.REPLY, ...)` on a ticket read with `load_row` (one that
    `can_reply` takes): the same check, the same rows written, the same mail."""
    if not can_reply(row):
        raise ValueError(f"ticket #{row.number} needs tickets.act")  # the caller checks first
    facts = ticket_facts_of(row, {})
    actions.check_action(ctx.policy, Action.REPLY, actor.role, facts,
                         order_facts_of(row, row.kind, row.recurring, None), vendor_facts(row),
                         ctx.now)
    if not comment.strip():
        raise UserError(_("a reply needs some text"), code="empty_reply")
    email = actor.email
    if email is None and actor.role in (Role.CUSTOMER, Role.VENDOR):
        email = row.address_of(actor.role, ctx.staff_email)[0]
    newest = write_message(session, ctx, row.id, actor, email, comment,
                           original=origin.original, html=origin.html,
                           message_id=origin.message_id, inbound_id=origin.inbound_id,
                           attachments=list(origin.attachments))
    clock = activity_columns(actor, ctx.now)
    after = dataclasses.replace(row, **clock)  # type: ignore[arg-type]
    clock.update(due_columns(ctx, after, row.timezone))
    changed = {key: value for key, value in clock.items() if getattr(row, key) != value}
    if changed:
        journal.write_columns(session, Ticket, row.id, changed)
    event = journal.record(session, ctx, actor, "reply", ticket_id=row.id)
    journal.write_outbox(session, ctx, row.id, row.order_id,
                         [(party, *row.address_of(party, ctx.staff_email))
                          for party in (Role.CUSTOMER, Role.VENDOR)],
                         "reply", event=event, upto=newest,
                         payload=mail_state.with_state(
                             None, mail_state.snapshot(after, row, row, ctx.now)))
