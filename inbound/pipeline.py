"""Decide what one inbound mail is: gather its facts, then ask the rules in a fixed order.

The rules are pure (`check(mail, ctx) -> Verdict`); everything they may need from the
database is read here first, into a MailContext. The first rule with a verdict decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.errors import UserError
from gateway.domain.facts import Role
from gateway.domain.tokens import Tokens
from gateway.services import inbox, ticket_rows
from gateway.services.runtime import Runtime
from inbound.forwards import Forward, find_forward
from inbound.parse import ParsedMail
from inbound.rules import (
    auto_submitted,
    delivery_report,
    duplicate,
    forwarded,
    legacy_request,
    mailing_list,
    null_sender,
    out_of_office,
    own_mail,
    rate_limit,
    references,
    reply_token,
    subject_token,
    support_request,
    unmatched,
)
from inbound.rules.base import MailContext, OrderRef, SentMail, TicketRef, Verdict
from store.models import Order, OutboxMail, Ticket

# The order is the policy: automated mail first (it never makes tickets), then repeats and
# floods, then matching from the strongest evidence to the weakest (SPEC 8). A forward comes
# before the thread its subject or References name: those name the forwarder's thread, but
# the words are the customer's, so it lands on that thread only as the customer's message.
RULES: tuple[ModuleType, ...] = (
    own_mail,
    delivery_report,
    auto_submitted,
    null_sender,
    out_of_office,
    mailing_list,
    duplicate,
    rate_limit,
    reply_token,
    forwarded,
    references,
    subject_token,
    legacy_request,
    support_request,
    unmatched,
)

LOCALS = {"support": "support", "refunds": "refunds", "cancel": "cancel"}
_SUBJECT_TOKEN = re.compile(r"\[Ticket #(\d{1,9})\]", re.IGNORECASE)
# what our Message-IDs were before they were random: guessable, so a delivery report quoting
# one ties it to nothing (a reply quoting one still threads: the id is stored with its row)
_GUESSABLE_MSGID = re.compile(r"^<?outbox-\d{1,18}\.ticketgw@", re.IGNORECASE)
_RECEIPT = re.compile(r"(?<![A-Za-z0-9-])([A-Za-z0-9][A-Za-z0-9-]{3,63})(?![A-Za-z0-9-])")
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*(dmarc|dkim)\s*=\s*([A-Za-z]+)", re.IGNORECASE)
_PROPERTY = re.compile(r"([A-Za-z][\w.-]*)\s*=\s*([^\s;]+)")
MAX_RECEIPT_CANDIDATES = 40
RECEIPT_SCAN_CHARS = 20_000
# a forwarded customer's orders looked through for one the forwarder sells (or staff sees)
FORWARD_ORDERS = 20


def decide(mail: ParsedMail, ctx: MailContext) -> tuple[str, Verdict]:
    """(rule name, verdict) of the first rule that decides; `unmatched` always does."""
    for rule in RULES:
        verdict: Verdict = rule.check(mail, ctx)
        if verdict.terminal:
            return str(rule.name), verdict
    raise AssertionError("the last rule always decides")  # pragma: no cover


def split_recipient(address: str, domain: str) -> tuple[str, str | None]:
    """(kind, token): kind is support | refunds | cancel | reply | bounce | unknown."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower().rstrip(".") != domain.lower():
        return "unknown", None
    local = local.lower()
    if local in LOCALS:
        return LOCALS[local], None
    for kind in ("reply", "bounce"):
        if local.startswith(f"{kind}+") and len(local) > len(kind) + 1:
            return kind, local[len(kind) + 1:]
    return "unknown", None


def verify_token(tokens: Tokens, token: str) -> tuple[int, Role] | None:
    try:
        claim = tokens.read_reply_token(token)
    except UserError:
        return None
    return claim.subject_id, claim.party


def verify_bounce_token(tokens: Tokens, token: str) -> int | None:
    """The outbox row a return address (`bounce+TOKEN@`) names, or None when it is not ours."""
    try:
        return tokens.read_bounce_token(token).subject_id
    except UserError:
        return None


def is_verified(auth_results: Iterable[str], trusted: str, sender: str) -> bool:
    """A DMARC or aligned DKIM pass in an Authentication-Results header (RFC 8601) whose
    authserv-id is the trusted receiving server; with none configured nothing is verified.
    The receiving server prepends its own header; anything below it came with the mail and
    may be the sender's forgery (RFC 8601 section 5), so only the topmost header naming the
    trusted id is believed. `auth_results` is in the mail's order, topmost first."""
    if not trusted or "@" not in sender:
        return False
    domain = sender.rsplit("@", 1)[1].lower()
    for value in auth_results:
        parts = _COMMENT.sub(" ", value).split(";")
        words = parts[0].split()
        if words and words[0].lower() == trusted:
            return _passes(parts[1:], domain)
    return False


def _passes(results: list[str], domain: str) -> bool:
    """A DMARC or DKIM pass aligned with the sender's domain among one header's results."""
    for part in results:
        found = _RESULT.match(part)
        if found is None or found.group(2).lower() != "pass":
            continue
        props = {k.lower(): v.strip('"').lower() for k, v in _PROPERTY.findall(part)}
        if found.group(1).lower() == "dmarc":
            signed = props.get("header.from", domain)
        else:
            signed = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
        if signed and (domain == signed or domain.endswith("." + signed)):
            return True
    return False


def _ticket_ref(session: Session, number: int) -> TicketRef | None:
    row = ticket_rows.load_row(session, number)
    if row is None:
        return None
    return TicketRef(row.number, row.status, row.customer_email.lower(),
                     frozenset(a.lower() for a in row.vendor_addresses), row)


def _id_forms(ids: Iterable[str]) -> set[str]:
    """Message-IDs as stored with our rows (`<left@right>`), from inbound ones with or
    without their angle brackets."""
    return {f"<{i.strip().strip('<>')}>" for i in ids if i.strip().strip("<>")}


def _referenced_number(session: Session, ids: list[str]) -> int | None:
    """The ticket of the newest of our own mails that In-Reply-To/References names, by the
    Message-ID stored with it (the old `<outbox-N.ticketgw@…>` ones too)."""
    if not ids:
        return None
    number = session.connection().execute(
        select(Ticket.number).join(OutboxMail, OutboxMail.ticket_id == Ticket.id)
        .where(OutboxMail.message_id.in_(_id_forms(ids[-50:])))
        .order_by(OutboxMail.id.desc()).limit(1)
    ).scalar_one_or_none()
    return int(number) if number is not None else None


def _return_path(session: Session, tokens: Tokens, kind: str, token: str | None
                 ) -> SentMail | None:
    """The mail a return address (`bounce+TOKEN@`) with a valid token was the sender of."""
    outbox_id = verify_bounce_token(tokens, token) if kind == "bounce" and token else None
    if outbox_id is None:
        return None
    found = session.connection().execute(
        select(OutboxMail.id, OutboxMail.recipient).where(OutboxMail.id == outbox_id)).first()
    return SentMail(int(found[0]), str(found[1])) if found is not None else None


def _quoted_mail(session: Session, mail: ParsedMail) -> tuple[SentMail, ...]:
    """Our mail a delivery report returns, found by its Message-ID; the old guessable ids
    tie nothing."""
    ids = [i for i in mail.returned_message_ids if not _GUESSABLE_MSGID.match(i)]
    if not mail.is_delivery_report or not ids:
        return ()
    rows = session.connection().execute(
        select(OutboxMail.id, OutboxMail.recipient)
        .where(OutboxMail.message_id.in_(_id_forms(ids))))
    return tuple(SentMail(int(i), str(r)) for i, r in rows)


def receipt_candidates(mail: ParsedMail) -> list[str]:
    """Words in subject and body that could be receipt numbers, in order, upper-cased."""
    found: dict[str, None] = {}
    for text in (mail.subject or "", (mail.text or "")[:RECEIPT_SCAN_CHARS]):
        for word in _RECEIPT.findall(text):
            if any(ch.isdigit() for ch in word) or word.isupper():
                found.setdefault(word.upper())
            if len(found) >= MAX_RECEIPT_CANDIDATES:
                return list(found)
    return list(found)


def _order_refs(session: Session, orders: Iterable[Order]) -> tuple[OrderRef, ...]:
    refs = []
    for order in orders:
        open_ts = session.execute(
            select(Ticket.number).where(Ticket.order_id == order.id, Ticket.status == "open",
                                        Ticket.type == "tech_support").limit(1)
        ).scalar_one_or_none()
        refs.append(OrderRef(order.receipt, order.customer_email.lower(),
                             frozenset(a.lower() for a in order.vendor.addresses), open_ts))
    return tuple(refs)


def _named_orders(session: Session, mail: ParsedMail) -> tuple[OrderRef, ...]:
    candidates = receipt_candidates(mail)
    if not candidates:
        return ()
    rows = session.execute(select(Order).where(Order.receipt.in_(candidates))).unique()\
        .scalars().all()
    rank = {receipt: i for i, receipt in enumerate(candidates)}
    return _order_refs(session, sorted(rows, key=lambda o: rank.get(o.receipt, 0)))


def _sender_orders(session: Session, sender: str, *, limit: int = 2
                   ) -> tuple[OrderRef, ...]:
    """The first `limit` orders bought from `sender` (two tell whether there is only one)."""
    if not sender:
        return ()
    rows = session.execute(
        select(Order).where(Order.customer_email == sender).order_by(Order.id).limit(limit)
    ).unique().scalars().all()
    return _order_refs(session, rows)


def gather(session: Session, runtime: Runtime, mail: ParsedMail, raw: bytes, *,
           recipient: str, envelope_from: str | None, exclude_id: int | None,
           rate: tuple[int, int]) -> MailContext:
    """Read what the rules need; also counts the mail against its sender's rate limit.
    Reads through the connection, past the ORM: the caller has flushed what the mails
    before this one changed."""
    settings = runtime.settings
    now = runtime.clock.now()
    kind, token = split_recipient(recipient, settings.mail_domain)
    sender = mail.from_addr.lower()
    token_party = token_ticket = None
    if kind == "reply" and token:
        claim = verify_token(runtime.tokens, token)
        if claim is not None:
            token_ticket = _ticket_ref(session, claim[0])
            token_party = claim[1] if token_ticket is not None else None
    reference_ticket = subject_ticket = None
    subject_number = None
    if kind == "support":
        number = _referenced_number(session, mail.in_reply_to + mail.references)
        reference_ticket = _ticket_ref(session, number) if number is not None else None
        found = _SUBJECT_TOKEN.search(mail.subject or "")
        if found and reference_ticket is None:
            subject_number = int(found.group(1))
            subject_ticket = _ticket_ref(session, subject_number)
    named: tuple[OrderRef, ...] | None = None  # None: not looked for
    own: tuple[OrderRef, ...] = ()
    if kind in ("refunds", "cancel") or (kind == "support" and reference_ticket is None
                                         and subject_number is None):
        named = _named_orders(session, mail)
        own = () if named else _sender_orders(session, sender)
    forward, forward_orders = _forward(session, mail, kind, named)
    # counting first locks the sender's row (PostgreSQL): the same mail delivered twice at
    # once is then checked for a duplicate one delivery after the other
    rate_limited = inbox.count_mail(session, sender or (envelope_from or ""), now, rate[0],
                                    timedelta(seconds=rate[1]))
    duplicate_of = inbox.find_duplicate(session, message_id=mail.message_id, sender=sender,
                                        sha256=mail.sha256, exclude_id=exclude_id)
    return MailContext(
        mail_domain=settings.mail_domain, staff_email=settings.staff_email.lower(),
        recipient_kind=kind, sender=sender, envelope_from=envelope_from,
        verified=is_verified(mail.auth_results, settings.trusted_authserv_id, sender),
        token_party=token_party, token_ticket=token_ticket, reference_ticket=reference_ticket,
        subject_number=subject_number, subject_ticket=subject_ticket,
        named_orders=named or (), sender_orders=own,
        duplicate_of=duplicate_of, rate_limited=rate_limited,
        return_path=_return_path(session, runtime.tokens, kind, token),
        quoted_mail=_quoted_mail(session, mail),
        forward=forward, forward_orders=forward_orders,
    )


def _forward(session: Session, mail: ParsedMail, kind: str,
             named: tuple[OrderRef, ...] | None) -> tuple[Forward | None, tuple[OrderRef, ...]]:
    """A mail forwarded to support@, and the orders it may be about: the receipts it names
    (`named`, None when not looked for yet), else those bought from the address that first
    wrote it. Also inside a thread: the subject or References may name the forwarder's
    ticket, and the customer's own order must still be found when that ticket is not theirs."""
    if kind != "support":
        return None, ()
    forward = find_forward(mail)
    if forward is None:
        return None, ()
    if named is None:
        named = _named_orders(session, mail)
    return forward, named or _sender_orders(session, forward.original_from,
                                            limit=FORWARD_ORDERS)
