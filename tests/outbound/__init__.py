"""Context builders shared by the outbound tests: plain data in the shape the renderer reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from outbound.render import ACCOUNT_EVENTS, AUDIENCES, NOTICE_KINDS

T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)  # a Thursday; 10:00 CET in Berlin

TICKET_TYPES = ("refund", "cancellation", "tech_support")


def make_comment(i: int, *, text: str | None = None, role: str | None = None) -> dict[str, Any]:
    return {
        "author_role": role or ("customer" if i % 2 == 0 else "vendor"),
        "author_email": "ann@example.org" if i % 2 == 0 else "help@acme.example",
        "text": text
        if text is not None
        else f"Comment {i}: the download link gives an error.\n\nThanks,\nAnn",
        "created_at": T0 + timedelta(hours=i),
        "attachments": [{"filename": f"shot-{i}.png", "size": 2048 * (i + 1), "attached": True}]
        if i % 3 == 0
        else [],
    }


def make_ctx(
    event: str = "opened",
    *,
    ticket_type: str = "refund",
    comments: int = 3,
    notice_kind: str | None = None,
    with_ticket: bool = True,
    zone: str = "Europe/Berlin",
    **links: str | None,
) -> dict[str, Any]:
    history = [make_comment(i) for i in range(comments)]
    closed = event in ("closed", "processed")
    ticket = {
        "number": 1042,
        "type": ticket_type,
        "status": "closed" if closed else "open",
        "created_by": "customer",
        "created_at": T0,
        "process_at": None if ticket_type == "tech_support" else T0 + timedelta(days=1),
        "closed_at": T0 + timedelta(days=1) if closed else None,
        "close_reason": ("processed" if event == "processed" else "by_vendor") if closed else None,
        "refund_kind": "full" if ticket_type == "refund" else None,
        "refund_amount": "47.00" if ticket_type == "refund" and event == "processed" else None,
        "escalated": event == "escalated",
        "reason": "not_satisfied" if ticket_type == "refund" else None,
        "problem": "cannot_download" if ticket_type == "tech_support" else None,
    }
    return {
        "event": event,
        "notice_kind": notice_kind,
        "reason_line_extra": None,
        "ticket": ticket if with_ticket and event not in ("receipt", "sale") else None,
        "order": {
            "receipt": "ABCD1234",
            "title": "Guide",
            "sku": "ebook-1",
            "amount": "47.00",
            "currency": "USD",
            "quantity": 1,
            "purchased_at": T0 - timedelta(days=2),
            "customer_name": "Ann",
            "customer_email": "ann@example.org",
            "vendor": "acme",
            "refunded_amount": "47.00" if event == "processed" else "0.00",
        },
        "newest": history[-1] if history else None,
        "history": history,
        "links": {
            "ticket": "https://tickets.example/t/TOKEN",
            "to_refund": None,
            "dispute": None,
            "confirm": None,
            "receipt": None,
            "download": None,
            **links,
        },
        "zone": zone,
        "recipient": {"email": "ann@example.org", "name": "Ann", "role": "customer"},
        "staff_explanation": "The vendor asks for help." if event == "escalated" else None,
        "refused": "#refund: only the vendor may use it." if event == "notice" else None,
    }


def every_mail() -> list[tuple[str, str, str | None]]:
    """(event, audience, notice kind) for every mail about a ticket or an order the renderer
    can write (mail about a vendor's account, ACCOUNT_EVENTS, has neither)."""
    cases: list[tuple[str, str, str | None]] = []
    for event, audiences in AUDIENCES.items():
        if event in ACCOUNT_EVENTS:
            continue
        for audience in audiences:
            kinds: tuple[str | None, ...] = NOTICE_KINDS if event == "notice" else (None,)
            cases.extend((event, audience, kind) for kind in kinds)
    return cases


def account_ctx(event: str = "signin", **links: str | None) -> dict[str, Any]:
    """The context of a mail about a vendor's account: no ticket, no order, its standing."""
    return {
        "event": event,
        "ticket": None,
        "order": None,
        "newest": None,
        "history": [],
        "links": {"ticket": None, **links},
        "zone": "UTC",
        "recipient": "sales@acme.example",
        "account": {"vendor": "acme", "disputes": 2, "limit": 2, "revoked": True,
                    "note": "2 disputes"},
    }
