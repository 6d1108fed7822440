"""The database schema: SQLAlchemy 2 typed models for everything SPEC section 2 names."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import Money, UTCDateTime


class Base(DeclarativeBase):
    pass


class Counter(Base):
    """Named sequences (ticket numbers) that work the same on SQLite and PostgreSQL."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Vendor(Base):
    __tablename__ = "vendors"
    id: Mapped[int] = mapped_column(primary_key=True)
    nickname: Mapped[str] = mapped_column(String(64), unique=True)
    account_email: Mapped[str] = mapped_column(String(320))
    cs_email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    partial_refunds_enabled: Mapped[bool] = mapped_column(Boolean)
    may_respond: Mapped[bool] = mapped_column(Boolean)
    dispute_count: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # shown to customers on the receipt and ticket pages (seed 003: "a customer service email
    # address, phone number, or site"), kept by the vendor in its workplace
    contact_phone: Mapped[str | None] = mapped_column(String(64))
    contact_site: Mapped[str | None] = mapped_column(String(2000))
    contact_hours: Mapped[str | None] = mapped_column(String(200))

    @property
    def mail_address(self) -> str:
        """Vendor mail goes to the customer-service address, else the account address."""
        return self.cs_email or self.account_email

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(a for a in (self.account_email, self.cs_email) if a)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    staff: Mapped[bool] = mapped_column(Boolean)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("vendor_id", "sku"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    sku: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))  # digital | physical
    recurring: Mapped[bool] = mapped_column(Boolean)
    business_care: Mapped[bool] = mapped_column(Boolean, default=False)


class Order(Base):
    __tablename__ = "orders"
    # the support subscriptions of a vendor's product (tech support under addons)
    __table_args__ = (Index("ix_orders_vendor_covers", "vendor_id", "covers_sku"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt: Mapped[str] = mapped_column(String(64), unique=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    customer_email: Mapped[str] = mapped_column(String(320), index=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locale: Mapped[str] = mapped_column(String(8))
    shop_url: Mapped[str | None] = mapped_column(String(2000))
    subscription: Mapped[str | None] = mapped_column(String(16))  # active | cancelled
    support_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # a support subscription (product kind `support`, addons' Business Care): the product SKU
    # it covers and the last instant it is valid (its shop is `shop_url`); `support_active`
    # false once a refund ended it
    covers_sku: Mapped[str | None] = mapped_column(String(128))
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped: Mapped[bool] = mapped_column(Boolean)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_info: Mapped[bool] = mapped_column(Boolean)
    return_acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    vendor: Mapped[Vendor] = relationship(lazy="joined")
    product: Mapped[Product] = relationship(lazy="joined")
    # loaded when read: only recurring products' rules and refunds need the bills
    payments: Mapped[list[Payment]] = relationship(order_by="Payment.at",
                                                   cascade="all, delete-orphan")


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(Money)
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_due_at", "due_at"), Index("ix_tickets_order", "order_id"),
        # a vendor's list in the workplace: its open (or closed) tickets by deadline, read
        # from this index alone, not through each of its orders (bench/workplace.py)
        Index("ix_tickets_vendor", "vendor_id", "status", "due_at", "number"),
        # /metrics counts the open tickets by type on every scrape: from this index alone
        Index("ix_tickets_status_type", "status", "type"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))  # the order's, kept here
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(32))
    problem: Mapped[str | None] = mapped_column(String(32))
    refund_kind: Mapped[str | None] = mapped_column(String(16))
    refund_value: Mapped[Decimal | None] = mapped_column(Money)
    refund_amount: Mapped[Decimal | None] = mapped_column(Money)
    # process_at is derived from (rule, clock_started_at, vendor zone), all stored
    process_rule: Mapped[str | None] = mapped_column(String(16))
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    process_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    awaiting_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_note: Mapped[str | None] = mapped_column(Text)
    disputable_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_side: Mapped[str | None] = mapped_column(String(8))
    warnings_sent: Mapped[int] = mapped_column(Integer, default=0)
    # the next instant the deadline sweep must look at this ticket, and what it will do then
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_kind: Mapped[str | None] = mapped_column(String(16))  # process | warning | close
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(16))
    follows_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # what a customer's dispute restores after a vendor closed or changed the request
    restore_type: Mapped[str | None] = mapped_column(String(16))
    # the customer's own words for it: the subject of the mail that opened it (mail subjects
    # stay fixed for filters; mails and pages show this in their body)
    title: Mapped[str | None] = mapped_column(String(300))

    order: Mapped[Order] = relationship(lazy="joined")
    follows: Mapped[Ticket | None] = relationship(remote_side="Ticket.id", lazy="select")
    # loaded when used (one query each), never with every ticket: a sweep or an intake
    # touching one ticket does not pull its whole history
    messages: Mapped[list[Message]] = relationship(order_by="Message.id", back_populates="ticket")
    events: Mapped[list[Event]] = relationship(order_by="Event.id")


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_role: Mapped[str] = mapped_column(String(8))
    author_email: Mapped[str | None] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    original: Mapped[str | None] = mapped_column(Text)  # full text before reply extraction
    html: Mapped[str | None] = mapped_column(Text)  # sanitised
    source: Mapped[str] = mapped_column(String(8))  # email | web | api | cli | system
    message_id: Mapped[str | None] = mapped_column(String(998))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # False: a mail matched by subject token and From only (SPEC 8: From can be forged), so
    # mails and pages mark it; None for messages written before this was kept
    verified: Mapped[bool | None] = mapped_column(Boolean)
    # the vendor or staff address that forwarded this customer's mail to support@
    forwarded_by: Mapped[str | None] = mapped_column(String(320))

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id", lazy="selectin")


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    # None when over the size limit; loaded only when read (a history shows names and sizes)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # the part's Content-ID without <>: what `cid:` URLs in the message's HTML name
    content_id: Mapped[str | None] = mapped_column(String(998))


class Event(Base):
    """The event log: who changed what, when, from what to what. Never deleted."""

    __tablename__ = "events"
    # the staff review queue reads the newest events of a few kinds
    __table_args__ = (Index("ix_events_kind", "kind", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_role: Mapped[str] = mapped_column(String(8))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(String(200))
    new: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class OutboxMail(Base):
    """A mail to send, written in the transaction of the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        # the cap, the digests and the threading headers look up one recipient on one ticket
        Index("ix_outbox_ticket_recipient", "ticket_id", "recipient"),
        # replies (In-Reply-To/References) and delivery reports name our mail by Message-ID
        Index("ix_outbox_message_id", "message_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    # the history as of the change: messages with id <= this are shown
    upto_message_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    notice_kind: Mapped[str | None] = mapped_column(String(32))
    party: Mapped[str] = mapped_column(String(8))  # customer | vendor | staff
    recipient: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10))  # pending | sent | failed | deferred
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AddressState(Base):
    """Per address: bouncing/suppressed since, rate-limit counters, last notice per kind."""

    __tablename__ = "address_state"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    bouncing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suppressed_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_count: Mapped[int] = mapped_column(Integer, default=0)
    notices: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InboundMail(Base):
    """Every inbound mail: the raw bytes as received, and the decision taken on it."""

    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_msgid_sender", "message_id", "sender"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str] = mapped_column(String(320))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(8))  # smtp | imap | replay
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(12))  # applied | ignored | rejected | failed
    decision: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class ImapState(Base):
    __tablename__ = "imap_state"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)


class ImapAttempt(Base):
    """Tries of one mail still in an IMAP mailbox, counted before each: a mail that stops
    the poller (a crash) counts too, and restarts do not reset the count."""

    __tablename__ = "imap_attempts"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tries: Mapped[int] = mapped_column(Integer)


class IntakeHeartbeat(Base):
    """An SMTP listener process's intake as it last reported it (every few seconds), so
    that `/healthz` on any machine can tell a dead or restarted intake thread."""

    __tablename__ = "intake_heartbeats"
    listener: Mapped[str] = mapped_column(String(300), primary_key=True)  # host:port/pid
    address: Mapped[str] = mapped_column(String(280))  # host:port: its successor's too
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    threads: Mapped[int] = mapped_column(Integer)
    alive: Mapped[int] = mapped_column(Integer)
    restarts: Mapped[int] = mapped_column(Integer)
    restarted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class ReplyTemplate(Base):
    """A vendor's named reply text (Jinja2, rendered in a sandbox over the ticket's safe
    fields when a reply uses it: `#template NAME`, the page's select, the API)."""

    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("vendor_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    name: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigninLink(Base):
    """A sign-in link to the workplace mailed to one address: short-lived and used at most
    once (`used_at`). A vendor's link names the vendor; staff's has no vendor."""

    __tablename__ = "signin_links"
    # how many links one address was sent lately (the sign-in page's flood limit)
    __table_args__ = (Index("ix_signin_links_address", "address", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    staff: Mapped[bool] = mapped_column(Boolean)
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkplaceSession(Base):
    """A signed-in browser: the cookie names this row, which sign-out (or its expiry) ends."""

    __tablename__ = "workplace_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    signin_id: Mapped[int] = mapped_column(ForeignKey("signin_links.id"))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    staff: Mapped[bool] = mapped_column(Boolean)
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventReview(Base):
    """Staff looked at this event of the review queue (the event itself never changes)."""

    __tablename__ = "event_reviews"
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str] = mapped_column(String(320))
