"""A vendor's reply templates and signature as kept: add, list, show, remove, set.

Every text is checked before it is kept (`reply_texts.check_text`): a template or signature
that would fail in a reply is refused here, with its line and the reason.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.domain.errors import NotFound, UserError
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.reply_texts import NAME, SIGNATURE_SEPARATOR, check_text
from gateway.services.vendors import find_vendor
from store.models import ReplyTemplate, Vendor


def _checked_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not NAME.match(cleaned):
        raise UserError(f"template name {name!r} must be 1-64 lower-case letters, digits, - "
                        "or _ (it is used as `#template NAME`)", code="invalid_field")
    return cleaned


def save_template(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
                  name: str, body: str) -> tuple[ReplyTemplate, bool]:
    """Add a template, or replace the one of that name; returns (it, created)."""
    vendor = find_vendor(session, nickname)
    cleaned = _checked_name(name)
    check_text(body, f"template {cleaned!r}")
    found = session.execute(select(ReplyTemplate).where(
        ReplyTemplate.vendor_id == vendor.id, ReplyTemplate.name == cleaned)
    ).scalar_one_or_none()
    created = found is None
    if found is None:
        found = ReplyTemplate(vendor_id=vendor.id, name=cleaned, created_at=ctx.now)
        session.add(found)
    found.body = body
    found.updated_at = ctx.now
    session.flush()
    journal.record(session, ctx, actor, "template_saved", vendor_id=vendor.id, new=cleaned)
    return found, created


def find_template(session: Session, nickname: str, name: str) -> ReplyTemplate:
    vendor = find_vendor(session, nickname)
    found = session.execute(select(ReplyTemplate).where(
        ReplyTemplate.vendor_id == vendor.id, ReplyTemplate.name == name.strip().lower())
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"vendor {vendor.nickname!r} has no reply template {name!r}",
                       code="unknown_template")
    return found


def list_templates(session: Session, nickname: str) -> list[ReplyTemplate]:
    vendor = find_vendor(session, nickname)
    return list(session.execute(select(ReplyTemplate).where(
        ReplyTemplate.vendor_id == vendor.id).order_by(ReplyTemplate.name)).scalars())


def remove_template(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
                    name: str) -> None:
    found = find_template(session, nickname, name)
    session.delete(found)
    journal.record(session, ctx, actor, "template_removed", vendor_id=found.vendor_id,
                   old=found.name)


def set_signature(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
                  text: str | None) -> Vendor:
    """Keep the vendor's signature (None or blank: none any more)."""
    vendor = find_vendor(session, nickname)
    cleaned = (text or "").strip("\n").rstrip() or None
    if cleaned is not None:
        if cleaned.lstrip().startswith(SIGNATURE_SEPARATOR.strip()):  # we write the "-- "
            cleaned = cleaned.lstrip().removeprefix("--").lstrip(" ").lstrip("\n")
        check_text(cleaned, "the signature")
    old = "set" if vendor.signature else None
    vendor.signature = cleaned
    journal.record(session, ctx, actor, "signature", vendor_id=vendor.id, old=old,
                   new="set" if cleaned else None)
    return vendor


def template_view(template: ReplyTemplate, *, body: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"name": template.name,
                            "updated_at": format_instant(template.updated_at)}
    if body:
        view["body"] = template.body
    return view
