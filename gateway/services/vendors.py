"""Vendors: add, update (a zone change recomputes open deadlines), revoke and restore."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.addresses import normalise_email
from gateway.domain.calendar import zone_or_error
from gateway.domain.errors import Conflict, NotFound, UserError
from gateway.domain.locales import check_locale
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.tickets import recompute_vendor_deadlines, set_may_respond
from store.models import Vendor

_NICK = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")


def find_vendor(session: Session, nickname: str) -> Vendor:
    vendor = session.execute(
        select(Vendor).where(Vendor.nickname == nickname.strip().lower())).scalar_one_or_none()
    if vendor is None:
        raise NotFound(f"no vendor {nickname!r}; add it with `ticketgw vendor add`")
    return vendor


def _check(timezone: str | None, locale: str | None) -> None:
    if timezone is not None:
        zone_or_error(timezone)
    if locale is not None:
        check_locale(locale)


def add_vendor(session: Session, ctx: ServiceContext, actor: Actor, nickname: str, email: str, *,
               cs_email: str | None = None, timezone: str | None = None,
               locale: str | None = None, partial_refunds: bool = False) -> Vendor:
    nick = nickname.strip().lower()
    if not _NICK.match(nick):
        raise UserError(f"nickname {nickname!r} must be 2-64 lower-case letters, digits, - or _",
                        code="invalid_field")
    _check(timezone, locale)
    if session.execute(select(Vendor.id).where(Vendor.nickname == nick)).first():
        raise Conflict(f"vendor {nick!r} already exists; use `ticketgw vendor update`")
    vendor = Vendor(
        nickname=nick, account_email=normalise_email(email, "--email"),
        cs_email=normalise_email(cs_email, "--cs-email") if cs_email else None,
        timezone=timezone or "UTC", locale=locale or "en",
        partial_refunds_enabled=partial_refunds, may_respond=True, dispute_count=0,
        created_at=ctx.now,
    )
    session.add(vendor)
    session.flush()
    journal.record(session, ctx, actor, "vendor_added", vendor_id=vendor.id, new=nick)
    return vendor


def update_vendor(session: Session, ctx: ServiceContext, actor: Actor, nickname: str, *,
                  email: str | None = None, cs_email: str | None = None,
                  timezone: str | None = None, locale: str | None = None,
                  partial_refunds: bool | None = None) -> Vendor:
    vendor = find_vendor(session, nickname)
    _check(timezone, locale)
    changes: dict[str, tuple[object, object]] = {}
    for name, value in (
        ("account_email", normalise_email(email, "--email") if email else None),
        ("cs_email", normalise_email(cs_email, "--cs-email") if cs_email else None),
        ("timezone", timezone), ("locale", locale),
        ("partial_refunds_enabled", partial_refunds),
    ):
        if value is not None and getattr(vendor, name) != value:
            changes[name] = (getattr(vendor, name), value)
            setattr(vendor, name, value)
    for name, (old, new) in changes.items():
        journal.record(session, ctx, actor, f"vendor_{name}", vendor_id=vendor.id, old=old,
                       new=new)
    if "timezone" in changes:
        recompute_vendor_deadlines(session, ctx, vendor)
    return vendor


def set_privilege(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
                  allowed: bool) -> Vendor:
    vendor = find_vendor(session, nickname)
    set_may_respond(session, ctx, vendor, allowed, actor)
    return vendor
