"""Signing in to the workplace: a mailed single-use link, then a server-side session.

No password is kept. A vendor (at its account or customer-service address) or staff (at
TICKETGW_STAFF_EMAIL) asks for a link; the link names one `signin_links` row, signed with the
install's secret and good for SIGNIN_TTL; using it marks the row used (one conditional UPDATE,
so two browsers racing with one link cannot both win) and opens a `workplace_sessions` row,
which the session cookie names and sign-out ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from gateway.domain.addresses import is_email_address
from gateway.domain.clock import format_instant
from gateway.domain.errors import Conflict, NotFound
from gateway.domain.facts import Role
from gateway.domain.texts import _
from gateway.domain.tokens import Claim
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.standing import account_mail
from gateway.services.vendors import find_vendor
from store.models import SigninLink, Vendor, WorkplaceSession

SIGNIN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=8)
# Links one address may be sent in LINK_WINDOW: the sign-in page cannot flood a mailbox.
LINKS_PER_ADDRESS = 5
LINK_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class IssuedLink:
    """A sign-in link written (and mailed): sign `signin_id` for `party` until `expires_at`."""

    signin_id: int
    party: Role
    expires_at: datetime
    nickname: str | None  # None: staff


@dataclass(frozen=True)
class Who:
    """The person a workplace session belongs to: one vendor, or staff (every vendor)."""

    session_id: int
    vendor_id: int | None
    nickname: str | None
    address: str
    expires_at: datetime
    zone: str = "UTC"  # the vendor's time zone: its pages show times in it
    locale: str | None = None  # the vendor's language: its pages are in it (staff: the browser's)

    @property
    def staff(self) -> bool:
        return self.vendor_id is None

    @property
    def party(self) -> Role:
        return Role.STAFF if self.staff else Role.VENDOR


def request_links(session: Session, ctx: ServiceContext, address: str) -> list[IssuedLink]:
    """Mail a sign-in link to `address` for each vendor it belongs to, and for staff when it
    is the staff address. Nothing (and no error) for an address we do not know, or one that
    was sent LINKS_PER_ADDRESS links in the last hour: the page says the same either way."""
    wanted = address.strip().lower()
    if not is_email_address(wanted) or _recent_links(session, wanted, ctx.recorded_at) >= (
            LINKS_PER_ADDRESS):
        return []
    vendors = session.execute(
        select(Vendor).where(or_(Vendor.account_email == wanted, Vendor.cs_email == wanted))
        .order_by(Vendor.nickname)).scalars().all()
    issued = [_issue(session, ctx, vendor, (wanted,)) for vendor in vendors]
    if wanted == ctx.staff_email.strip().lower():
        issued.append(_issue(session, ctx, None, (wanted,)))
    return issued


def vendor_link(session: Session, ctx: ServiceContext, nickname: str) -> IssuedLink:
    """`ticketgw vendor link NICK`: one link, mailed to every address of the vendor."""
    vendor = find_vendor(session, nickname)
    return _issue(session, ctx, vendor, tuple(sorted(vendor.addresses)))


def _recent_links(session: Session, address: str, now: datetime) -> int:
    return int(session.execute(
        select(func.count()).select_from(SigninLink).where(
            SigninLink.address == address, SigninLink.created_at > now - LINK_WINDOW)
    ).scalar_one())


def _issue(session: Session, ctx: ServiceContext, vendor: Vendor | None,
           recipients: tuple[str, ...]) -> IssuedLink:
    now = ctx.recorded_at
    row = SigninLink(vendor_id=vendor.id if vendor else None, staff=vendor is None,
                     address=recipients[0], created_at=now, expires_at=now + SIGNIN_TTL)
    session.add(row)
    session.flush()
    party = Role.STAFF if vendor is None else Role.VENDOR
    payload = {"signin": row.id, "expires": format_instant(row.expires_at),
               "account": {"vendor": vendor.nickname if vendor else None}}
    for recipient in recipients:
        account_mail(session, ctx, "signin", party, recipient,
                     vendor.locale if vendor else "en", payload)
    return IssuedLink(row.id, party, row.expires_at, vendor.nickname if vendor else None)


def use_link(session: Session, ctx: ServiceContext, claim: Claim) -> Who:
    """Spend a sign-in link (its token already verified) and open a session."""
    now = ctx.recorded_at
    link = _link(session, claim, now)
    spent = session.execute(
        update(SigninLink).where(SigninLink.id == link.id, SigninLink.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(_("this sign-in link was used already; each link works once, so ask "
                         "for a new one"), code="link_used")
    vendor = session.get(Vendor, link.vendor_id) if link.vendor_id is not None else None
    if not _still_theirs(link, vendor, ctx.staff_email):
        raise Conflict(_("this sign-in link was sent to an address that is no longer on the "
                         "account; ask for a new one"), code="link_used")
    row = WorkplaceSession(signin_id=link.id, vendor_id=link.vendor_id, staff=link.staff,
                           address=link.address, created_at=now, expires_at=now + SESSION_TTL)
    session.add(row)
    session.flush()
    journal.record(session, ctx, Actor(Role.STAFF if link.staff else Role.VENDOR, link.address,
                                       source="web"),
                   "signed_in", vendor_id=link.vendor_id, new="workplace")
    return _who(row, vendor)


def _link(session: Session, claim: Claim, now: datetime) -> SigninLink:
    link = session.get(SigninLink, claim.subject_id)
    if link is None:
        raise NotFound(_("this sign-in link is not valid; ask for a new one"),
                       code="invalid_token")
    if link.expires_at <= now:
        raise NotFound(_("this sign-in link has expired; ask for a new one"),
                       code="expired_token")
    return link


def _still_theirs(link: SigninLink, vendor: Vendor | None, staff_email: str) -> bool:
    if link.staff:
        return link.address == staff_email.strip().lower()
    return vendor is not None and link.address in vendor.addresses


def current(session: Session, claim: Claim, now: datetime) -> Who | None:
    """The session a (verified) cookie names, while it is neither ended nor expired."""
    row = session.get(WorkplaceSession, claim.subject_id)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    vendor = session.get(Vendor, row.vendor_id) if row.vendor_id is not None else None
    if not row.staff and vendor is None:
        return None
    return _who(row, vendor)


def _who(row: WorkplaceSession, vendor: Vendor | None) -> Who:
    return Who(row.id, row.vendor_id, vendor.nickname if vendor else None, row.address,
               row.expires_at, vendor.timezone if vendor else "UTC",
               vendor.locale if vendor else None)


def sign_out(session: Session, now: datetime, session_id: int) -> None:
    """End a session: its cookie opens nothing any more, even if a copy of it survives."""
    session.execute(update(WorkplaceSession).where(
        WorkplaceSession.id == session_id, WorkplaceSession.ended_at.is_(None))
        .values(ended_at=now).execution_options(synchronize_session=False))


def preview(session: Session, claim: Claim, now: datetime) -> IssuedLink:
    """What a (verified) sign-in link would open, without spending it: a mail scanner that
    follows the link must not use it up, so only the button on the page does."""
    link = _link(session, claim, now)
    if link.used_at is not None:
        raise Conflict(_("this sign-in link was used already; each link works once, so ask "
                         "for a new one"), code="link_used")
    vendor = session.get(Vendor, link.vendor_id) if link.vendor_id is not None else None
    return IssuedLink(link.id, claim.party, link.expires_at, vendor.nickname if vendor else None)
