"""What the workplace reads: a vendor's (or, for staff, every vendor's) tickets and orders,
searched and paginated, and the staff review queue. Nothing here changes anything.

Every query takes the scope it may read (`vendor_id`, None only for staff): a ticket or order
outside it is NotFound, exactly as one that does not exist, so a URL guessed by a vendor
tells it nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from gateway.domain.errors import NotFound
from gateway.domain.texts import _
from gateway.services.ticket_state import MAX_NUMBER
from store.models import AddressState, Event, EventReview, Order, Product, Ticket, Vendor

T = TypeVar("T")
Rows = Select[*tuple[Any, ...]]  # a query of columns, whichever
PER_PAGE = 25
STATUSES = ("open", "closed", "all")
TYPES = ("refund", "cancellation", "tech_support")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class TicketLine:
    """One ticket as the workplace lists it."""

    number: int
    type: str
    status: str
    receipt: str
    vendor: str
    zone: str
    customer_email: str
    created_at: datetime
    process_at: datetime | None
    due_at: datetime | None
    due_kind: str | None
    escalated: bool
    awaiting_confirmation: bool
    closed_at: datetime | None
    close_reason: str | None
    bouncing: bool


@dataclass(frozen=True)
class TicketSearch:
    vendor_id: int | None  # None: every vendor (staff only)
    text: str = ""  # a ticket number (#1042), a receipt, or a customer's address
    status: str = "open"
    type: str | None = None
    page: int = 1


_TICKET_COLUMNS = (
    Ticket.number, Ticket.type, Ticket.status, Order.receipt, Vendor.nickname.label("vendor"),
    Vendor.timezone.label("zone"), Order.customer_email, Ticket.created_at, Ticket.process_at,
    Ticket.due_at, Ticket.due_kind, Ticket.escalated, Ticket.awaiting_confirmation,
    Ticket.closed_at, Ticket.close_reason,
)


def _page_number(page: int) -> int:
    return min(max(page, 1), 10_000)


def _shape(search: TicketSearch) -> tuple[tuple[bool, bool, bool, str | None], dict[str, Any]]:
    """A search as the shape of its statements and the values bound into them. A number
    finds that ticket (or the tickets of a receipt of digits), an address that customer's
    tickets, anything else one receipt's; exact matches only."""
    values: dict[str, Any] = {"vendor": search.vendor_id, "status": search.status,
                              "type": search.type}
    wanted, kind = search.text.strip(), None
    digits = wanted.lstrip("#")
    if digits.isdigit() and int(digits) <= MAX_NUMBER:
        kind, values["number"], values["receipt"] = "number", int(digits), digits
    elif "@" in wanted:
        kind, values["email"] = "address", wanted.lower()
    elif wanted:
        kind, values["receipt"] = "receipt", wanted.upper()
    shape = (search.vendor_id is not None, search.status in ("open", "closed"),
             search.type in TYPES, kind)
    return shape, values


@functools.lru_cache(maxsize=64)
def _statements(scoped: bool, by_status: bool, by_type: bool, kind: str | None
                ) -> tuple[Rows, Rows, Rows]:
    """(count, the page's numbers, the page in full) of one shape of search, built once: a
    page costs binding values, not building and keying statements (most of its time, as
    the bench measured it).

    Conditions are on tickets alone: `ix_tickets_vendor` (vendor, status, deadline, number)
    answers a vendor's list without reading each of its orders. A text search is an equality
    the planner reads through its own index (number, order, or the address's orders), which
    it prefers to a vendor's whole list: SQLite's statistics take every vendor for an average
    one, and a vendor with thousands of tickets is not."""
    found: list[ColumnElement[bool]] = []
    receipt = select(Order.id).where(Order.receipt == bindparam("receipt")).scalar_subquery()
    if kind == "number":
        found.append(or_(Ticket.number == bindparam("number"), Ticket.order_id == receipt))
    elif kind == "address":
        found += [Ticket.order_id == Order.id, Order.customer_email == bindparam("email")]
    elif kind == "receipt":
        found.append(Ticket.order_id == receipt)
    if scoped:
        found.append(Ticket.vendor_id == bindparam("vendor"))
    if by_status:
        found.append(Ticket.status == bindparam("status"))
    if by_type:
        found.append(Ticket.type == bindparam("type"))
    order = (Ticket.status.desc(), Ticket.due_at.is_(None), Ticket.due_at, Ticket.number.desc())
    count = select(func.count()).select_from(Ticket).where(*found)
    numbers = (select(Ticket.number).where(*found).order_by(*order)
               .limit(bindparam("limit", type_=Integer))
               .offset(bindparam("offset", type_=Integer)))
    page = numbers.subquery("page")
    rows = (select(count.correlate(None).scalar_subquery().label("total"), *_TICKET_COLUMNS,
                   AddressState.bouncing_since.is_not(None).label("bouncing"))
            .select_from(page).join(Ticket, Ticket.number == page.c.number)
            .join(Order, Order.id == Ticket.order_id).join(Vendor, Vendor.id == Ticket.vendor_id)
            .outerjoin(AddressState, AddressState.address == Order.customer_email)
            .order_by(*order))
    return count, numbers, rows


def ticket_query(search: TicketSearch) -> Rows:
    """The numbers of a search's first page, in page order: open ones first, the soonest
    deadline first, then the newest (its values bound: `bench/workplace.py` prints its plan)."""
    shape, values = _shape(search)
    wanted = {k: v for k, v in values.items() if v is not None}
    return _statements(*shape)[1].params(**wanted, limit=PER_PAGE, offset=0)


def list_tickets(session: Session, search: TicketSearch) -> Page[TicketLine]:
    """One page of a search in one statement: the page's numbers joined to those tickets in
    full, whether each customer's address bounces, and the count of all the search finds.
    A page past the end counts on its own."""
    page = _page_number(search.page)
    shape, values = _shape(search)
    count, _, rows_of = _statements(*shape)
    conn = session.connection()
    rows = conn.execute(rows_of, {**values, "limit": PER_PAGE,
                                  "offset": (page - 1) * PER_PAGE}).all()
    if rows:
        total = rows[0].total
    else:
        total = conn.execute(count, values).scalar_one()
    lines = [TicketLine(**{k: v for k, v in row._mapping.items() if k != "total"})
             for row in rows]
    return Page(lines, page, PER_PAGE, int(total))


def _line(row: RowMapping, bouncing: set[str]) -> TicketLine:
    return TicketLine(**row, bouncing=row["customer_email"] in bouncing)


def _bouncing(session: Session, addresses: set[str]) -> set[str]:
    """Which of a page's customer addresses bounce (read for the page, not for the search)."""
    if not addresses:
        return set()
    return set(session.execute(select(AddressState.address).where(
        AddressState.address.in_(addresses), AddressState.bouncing_since.is_not(None))
    ).scalars())


def find_ticket_in(session: Session, vendor_id: int | None, number: int) -> int:
    """The number of a ticket the scope may see, or NotFound (another vendor's too)."""
    query = select(Ticket.number).where(Ticket.number == number)
    if vendor_id is not None:
        query = query.where(Ticket.vendor_id == vendor_id)
    found = session.execute(query).scalar() if 0 < number <= MAX_NUMBER else None
    if found is None:
        raise NotFound(_("no ticket #%(n)s here", n=number))
    return int(found)


@dataclass(frozen=True)
class OrderLine:
    receipt: str
    vendor: str
    zone: str
    purchased_at: datetime
    title: str
    customer_name: str
    customer_email: str
    quantity: int
    amount: Any
    currency: str
    refunded_amount: Any
    subscription: str | None


def list_orders(session: Session, vendor_id: int | None, text: str = "",
                page: int = 1) -> Page[OrderLine]:
    """The transactions page: orders newest first, found by receipt or customer address."""
    page = _page_number(page)
    query = (select(Order.receipt, Vendor.nickname.label("vendor"),
                    Vendor.timezone.label("zone"), Order.purchased_at,
                    Product.title, Order.customer_name, Order.customer_email, Order.quantity,
                    Order.amount, Order.currency, Order.refunded_amount, Order.subscription)
             .join(Vendor, Vendor.id == Order.vendor_id)
             .join(Product, Product.id == Order.product_id))
    if vendor_id is not None:
        query = query.where(Order.vendor_id == vendor_id)
    wanted = text.strip()
    if "@" in wanted:
        query = query.where(Order.customer_email == wanted.lower())
    elif wanted:
        query = query.where(Order.receipt == wanted.lstrip("#").upper())
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Order.purchased_at.desc(), Order.id.desc())
                           .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return Page([OrderLine(**row._mapping) for row in rows], page, PER_PAGE, int(total))


def find_order_in(session: Session, vendor_id: int | None, receipt: str) -> Order:
    """An order the scope may see, or NotFound (another vendor's too)."""
    query = select(Order).where(Order.receipt == receipt.strip().upper())
    if vendor_id is not None:
        query = query.where(Order.vendor_id == vendor_id)
    order = session.execute(query).unique().scalar_one_or_none()
    if order is None:
        raise NotFound(_("no order %(receipt)s here", receipt=receipt))
    return order


def order_tickets(session: Session, order_id: int) -> list[TicketLine]:
    rows = session.execute(
        select(*_TICKET_COLUMNS).join(Order, Order.id == Ticket.order_id)
        .join(Vendor, Vendor.id == Order.vendor_id).where(Ticket.order_id == order_id)
        .order_by(Ticket.number.desc())).all()
    bouncing = _bouncing(session, {row.customer_email for row in rows})
    return [_line(row._mapping, bouncing) for row in rows]


# --- the staff review queue -----------------------------------------------------------------

# What the seed says the marketplace reviews: closed or changed tickets (by the vendor),
# escalations, disputes and revocations.
_VENDOR_CHANGES = ("status", "type", "refund_kind")
_ALWAYS = ("escalated", "dispute", "privilege")


@dataclass(frozen=True)
class ReviewLine:
    event_id: int
    at: datetime
    kind: str
    actor_role: str
    old: str | None
    new: str | None
    note: str | None
    number: int | None
    vendor: str | None
    reviewed: bool


def review_queue(session: Session, *, include_reviewed: bool = False,
                 page: int = 1) -> Page[ReviewLine]:
    """The events staff should look at, newest first; reviewed ones only when asked."""
    page = _page_number(page)
    ticket_vendor = (select(Vendor.nickname).join(Order, Order.vendor_id == Vendor.id)
                     .where(Order.id == Ticket.order_id).scalar_subquery())
    query = (select(Event.id.label("event_id"), Event.at, Event.kind, Event.actor_role,
                    Event.old, Event.new, Event.note, Ticket.number,
                    func.coalesce(Vendor.nickname, ticket_vendor).label("vendor"),
                    EventReview.event_id.is_not(None).label("reviewed"))
             .outerjoin(Ticket, Ticket.id == Event.ticket_id)
             .outerjoin(Vendor, Vendor.id == Event.vendor_id)
             .outerjoin(EventReview, EventReview.event_id == Event.id)
             .where(or_(Event.kind.in_(_ALWAYS),
                        and_(Event.kind.in_(_VENDOR_CHANGES), Event.actor_role == "vendor"))))
    if not include_reviewed:
        query = query.where(EventReview.event_id.is_(None))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Event.id.desc()).limit(PER_PAGE)
                           .offset((page - 1) * PER_PAGE)).all()
    return Page([ReviewLine(**row._mapping) for row in rows], page, PER_PAGE, int(total))


@dataclass(frozen=True)
class VendorLine:
    nickname: str
    account_email: str
    may_respond: bool
    disputes: int
    open_tickets: int


def list_vendors(session: Session, text: str = "", page: int = 1) -> Page[VendorLine]:
    """Staff's list of vendors, by nickname, with their standing and open tickets."""
    page = _page_number(page)
    open_count = (select(func.count()).select_from(Ticket).join(Order, Order.id == Ticket.order_id)
                  .where(Order.vendor_id == Vendor.id, Ticket.status == "open")
                  .scalar_subquery())
    query = select(Vendor.nickname, Vendor.account_email, Vendor.may_respond,
                   Vendor.dispute_count.label("disputes"), open_count.label("open_tickets"))
    wanted = text.strip().lower()
    if wanted:
        query = query.where(or_(Vendor.nickname == wanted, Vendor.account_email == wanted,
                                Vendor.cs_email == wanted))
    total = session.execute(select(func.count()).select_from(
        query.with_only_columns(Vendor.id).subquery())).scalar_one()
    rows = session.execute(query.order_by(Vendor.nickname).limit(PER_PAGE)
                           .offset((page - 1) * PER_PAGE)).all()
    return Page([VendorLine(**row._mapping) for row in rows], page, PER_PAGE, int(total))
