"""The ticket page's words for its change log and its refund: sentences in the viewer's
language, where the event log keeps codes (`status`, `open` → `closed`, ISO times)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from babel.numbers import format_decimal, format_percent

from gateway.domain.texts import Text, _
from gateway.services import i18n
from store.models import Event, Ticket

# An event's (old, new) values, in the viewer's words: (locale, zone, value) -> shown.
Shown = Callable[[str | None], str]


def _time(locale: str, zone: str) -> Shown:
    def shown(value: str | None) -> str:
        try:
            return i18n.format_when(datetime.fromisoformat(value or ""), locale, zone)
        except ValueError:
            return value or "—"
    return shown


def _decimal(value: str | None) -> Decimal | None:
    try:
        return Decimal(value or "")
    except InvalidOperation:
        return None


def _sentence(event: Event, locale: str, zone: str, currency: str) -> Text | None:
    """The event as a Text, or None for a kind that has no sentence (shown by its label)."""
    old, new, kind = event.old, event.new, event.kind
    label = _labeller(locale)
    when = _time(locale, zone)
    if kind == "opened":
        return _("Ticket opened as: %(type)s.", type=label("type", new))
    if kind == "type":
        return _("The type changed from %(old)s to %(new)s.", old=label("type", old),
                 new=label("type", new))
    if kind == "status":
        if (old, new) == ("open", "closed"):
            return _("The ticket was closed.")
        if (old, new) == ("closed", "open"):
            return _("The ticket was reopened.")
        return _("The status changed from %(old)s to %(new)s.", old=label("status", old),
                 new=label("status", new))
    if kind == "refund_kind":
        return _refund_kind(event, locale, currency)
    if kind == "process_at":
        if old and new:
            return _("The deadline moved from %(old)s to %(new)s.", old=when(old),
                     new=when(new))
        if new:
            return _("The deadline was set to %(new)s.", new=when(new))
        return _("The deadline was removed.")
    if kind == "confirmed":
        if new:
            return _("The request was confirmed; it will be processed on %(when)s.",
                     when=when(new))
        return _("The request was confirmed.")
    return _plain(event, label)


def _disputed(restored: str) -> Text:
    """A dispute brings the request back: one whole sentence per request type."""
    if restored == "refund":
        return _("The customer disputed the change; the ticket is an open refund request "
                 "again.")
    if restored == "cancellation":
        return _("The customer disputed the change; the ticket is an open cancellation "
                 "request again.")
    return _("The customer disputed the change; the ticket is open again.")


def _plain(event: Event, label: Callable[[str, str | None], str]) -> Text | None:
    """The kinds whose sentence needs at most one value."""
    old, new, kind = event.old, event.new, event.kind
    if kind == "escalated":
        if new == "false":
            return _("The escalation was withdrawn.")
        return _("The ticket was escalated to customer service.")
    if kind == "dispute":
        return _disputed((new or "").partition("/")[0])
    if kind == "customer_email":
        return _("The customer's address changed from %(old)s to %(new)s.", old=old or "—",
                 new=new or "—")
    if kind == "follow_up":
        return _("This ticket follows ticket #%(n)s.", n=old or "?")
    if kind == "refund_approved":
        if new:
            return _("The vendor approved the refund (%(reason)s).",
                     reason=label("refund_reason", new))
        return _("The vendor approved the refund.")
    fixed = {
        "not_processed": _("The ticket could not be processed."),
        "consent": _("The customer agreed to the change."),
        "returned": _("The vendor acknowledged the return."),
        "reply": _("A reply was added."),
        "inactivity_warning": _("Both parties were warned that the ticket closes when nobody "
                                "writes."),
        "processed": _("The request was processed and the ticket closed."),
        "support_refunded": _("Business Care was refunded and ended."),
    }
    return fixed.get(kind)


def _refund_kind(event: Event, locale: str, currency: str) -> Text:
    label = _labeller(locale)
    amount = _decimal(event.note)
    new = label("refund_kind", event.new)
    if event.old and amount is not None:
        return _("The refund type changed from %(old)s to %(new)s: %(amount)s.",
                 old=label("refund_kind", event.old), new=new,
                 amount=i18n.format_money(amount, currency, locale))
    if event.old:
        return _("The refund type changed from %(old)s to %(new)s.",
                 old=label("refund_kind", event.old), new=new)
    if amount is not None:
        return _("The refund type was set to %(new)s: %(amount)s.", new=new,
                 amount=i18n.format_money(amount, currency, locale))
    return _("The refund type was set to %(new)s.", new=new)


def _labeller(locale: str) -> Callable[[str, str | None], str]:
    def label(group: str, code: str | None) -> str:
        return i18n.label(group, code, locale) or "—"
    return label


def change(event: Event, zone: str = "UTC", currency: str = "USD", *, locale: str) -> str:
    """One line of the change log as a sentence in `locale` (times in `zone`); a kind without
    a sentence is its label, with its values as they are."""
    sentence = _sentence(event, locale, zone, currency)
    if sentence is not None:
        return i18n.say(sentence, locale)
    shown = i18n.label("event", event.kind, locale)
    if event.old or event.new:
        shown += f"{i18n.colon(locale)}{event.old or '—'} → {event.new or '—'}"
    return shown


def refund(ticket: Ticket, currency: str, *, locale: str) -> str:
    """The ticket's refund: its kind's label, the value asked in its own unit, and the amount
    it comes to (`Partial refund (percent): 30 % (11,75 $US)`)."""
    kind = ticket.refund_kind
    shown = i18n.label("refund_kind", kind, locale)
    amount = ticket.refund_amount
    money = i18n.format_money(amount, currency, locale) if amount is not None else ""
    value = ticket.refund_value
    if kind == "percent" and value is not None:
        asked = format_percent(value / 100, locale=locale).replace("\u202f", " ")
    elif kind == "quantity" and value is not None:
        asked = format_decimal(value, locale=locale)
    else:  # full and amount: the value is the amount
        return f"{shown}{i18n.colon(locale)}{money}" if money else shown
    return f"{shown}{i18n.colon(locale)}{asked} ({money})" if money else \
        f"{shown}{i18n.colon(locale)}{asked}"
