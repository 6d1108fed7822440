"""What every rule reads (the mail's facts gathered up front) and what it answers (a Verdict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.domain.facts import Role
from gateway.services.ticket_rows import TicketRow
from inbound.forwards import Forward


class Kind(StrEnum):
    CONTINUE = "continue"  # this rule has nothing to say; ask the next one
    IGNORE = "ignore"  # recorded, nothing else (automated mail, our own mail): 250
    BOUNCE = "bounce"  # a delivery report: mark the failed recipients, then as IGNORE
    DUPLICATE = "duplicate"  # already processed: 250, nothing changes
    REJECT = "reject"  # permanent 5xx with a reason
    DEFER = "defer"  # temporary 4xx (rate limit): the sender retries later
    THREAD = "thread"  # add to (and maybe act on) an existing ticket
    OPEN = "open"  # open a ticket on an order (support@, refunds@, cancel@)


@dataclass(frozen=True)
class TicketRef:
    """The parties of one ticket, as far as matching a sender needs them."""

    number: int
    status: str
    customer_email: str
    vendor_addresses: frozenset[str]
    # the whole row as intake read it, for applying a reply (rules never look at it)
    row: TicketRow | None = field(default=None, compare=False, repr=False)

    def role_of(self, address: str, staff_email: str) -> Role | None:
        return role_of(address, self.customer_email, self.vendor_addresses, staff_email)


@dataclass(frozen=True)
class OrderRef:
    receipt: str
    customer_email: str
    vendor_addresses: frozenset[str]
    open_tech_support: int | None = None  # number of the order's open tech-support ticket

    def role_of(self, address: str, staff_email: str) -> Role | None:
        return role_of(address, self.customer_email, self.vendor_addresses, staff_email)


def role_of(address: str, customer: str, vendor: frozenset[str], staff: str) -> Role | None:
    """The party an address is on a ticket or order; the vendor first (SPEC 8: a vendor
    address mailing refunds@ makes a vendor-created request)."""
    address = address.lower()
    if not address:
        return None
    if address in {a.lower() for a in vendor}:
        return Role.VENDOR
    if address == customer.lower():
        return Role.CUSTOMER
    if address == staff.lower():
        return Role.STAFF
    return None


@dataclass(frozen=True)
class SentMail:
    """One mail of ours (an outbox row) and the address it went to."""

    outbox_id: int
    recipient: str


@dataclass(frozen=True)
class MailContext:
    """Everything the rules may look at besides the parsed mail; gathered before they run."""

    mail_domain: str
    staff_email: str
    recipient_kind: str  # support | refunds | cancel | reply | bounce | unknown
    sender: str  # the From: address, lower-cased (SPEC 11.1)
    envelope_from: str | None = None
    verified: bool = False  # DMARC/DKIM pass from the trusted receiving server
    token_party: Role | None = None  # the party a valid reply token names
    token_ticket: TicketRef | None = None
    reference_ticket: TicketRef | None = None  # named by In-Reply-To/References
    subject_number: int | None = None  # `[Ticket #N]` in the subject
    subject_ticket: TicketRef | None = None
    named_orders: tuple[OrderRef, ...] = ()  # receipts found in the subject or body
    sender_orders: tuple[OrderRef, ...] = ()  # orders bought from the sender's address
    duplicate_of: int | None = None  # id of an earlier InboundMail with the same identity
    rate_limited: bool = False
    return_path: SentMail | None = None  # the mail a valid bounce+TOKEN@ recipient names
    quoted_mail: tuple[SentMail, ...] = ()  # our mail a delivery report returns (Message-ID)
    forward: Forward | None = None  # the mail forwarded to support@ (inbound.forwards)
    # the orders a forward is about: receipts it names, else those of its original sender
    forward_orders: tuple[OrderRef, ...] = ()


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    decision: str = ""  # short code kept with the mail: ignored_auto_reply, threaded, ...
    reason: str = ""  # a sentence for operators (and the sender, when it is a 5xx)
    smtp: str = ""  # the code of a REJECT or DEFER: "550 5.7.1"
    ticket_number: int | None = None
    role: Role | None = None
    may_act: bool = False  # commands may run (reply token or verified sender)
    via: str = ""  # token | references | subject | receipt | sender_order
    ticket_type: str | None = None  # for OPEN
    receipt: str | None = None  # for OPEN
    bounced: tuple[str, ...] = field(default_factory=tuple)
    suppressed: tuple[str, ...] = field(default_factory=tuple)  # of bounced: failed for good
    # a forward filed under its original sender: the vendor or staff address that forwarded it
    forwarded_by: str | None = None
    forwarder: Role | None = None  # and the party that address is (told of refused commands)

    @property
    def terminal(self) -> bool:
        return self.kind is not Kind.CONTINUE


CONTINUE = Verdict(Kind.CONTINUE)


def ignore(decision: str, reason: str) -> Verdict:
    return Verdict(Kind.IGNORE, decision, reason)


def reject(smtp: str, decision: str, reason: str) -> Verdict:
    return Verdict(Kind.REJECT, decision, reason, smtp=smtp)
