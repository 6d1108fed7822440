"""The English labels of codes (ticket types, statuses, roles, reasons, ...), catalogue msgids.

Mail and pages show a code by its label in the reader's language
(`gateway.services.i18n.label`); these English labels are the catalogue's msgids (SPEC 11.13:
reason codes are data, labelled in four locales). A code without a label is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.domain.texts import N_

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "type": {
        "refund": N_("Refund Request"),
        "cancellation": N_("Cancellation Request"),
        "tech_support": N_("Tech Support Request"),
    },
    "status": {"open": N_("Open"), "closed": N_("Closed")},
    "role": {
        "customer": N_("Customer"),
        "vendor": N_("Vendor"),
        "staff": N_("Customer Service"),
        "system": N_("System"),
    },
    "refund_reason": {
        "not_received": N_("Product not received"),
        "not_as_described": N_("Product not as described"),
        "technical_issue": N_("Technical issue"),
        "not_satisfied": N_("Not satisfied with the product"),
        "unauthorized": N_("Unauthorized purchase"),
        "duplicate": N_("Duplicate purchase"),
        # the addons profile's (seed 004)
        "not_downloaded": N_("The product was not downloaded"),
        "malfunction": N_("The product malfunctions"),
        "other": N_("Other"),
    },
    "cancellation_reason": {
        "too_expensive": N_("Too expensive"),
        "not_using": N_("No longer using it"),
        "technical_issue": N_("Technical issue"),
        "other": N_("Other"),
    },
    "problem": {
        "cannot_download": N_("Cannot download the product"),
        "cannot_login": N_("Cannot log in"),
        "not_received": N_("Product not received"),
        "not_working": N_("Product not working"),
        "other": N_("Other"),
    },
    "close_reason": {
        "by_customer": N_("closed by the customer"),
        "by_vendor": N_("closed by the vendor"),
        "by_staff": N_("closed by customer service"),
        "processed": N_("processed"),
        "inactive": N_("closed after inactivity"),
    },
    "refund_kind": {
        "full": N_("Full refund"),
        "amount": N_("Partial refund (amount)"),
        "percent": N_("Partial refund (percent)"),
        "quantity": N_("Partial refund (quantity)"),
    },
    "subscription": {"active": N_("Active"), "cancelled": N_("Cancelled")},
    # where a message came from, as "…, by email" says it under the message
    "source": {
        "email": N_("by email"),
        "web": N_("on the web page"),
        "api": N_("through the API"),
        "cli": N_("by the command line"),
        "system": N_("by the system"),
    },
    # the kinds of the event log (docs/events.md), as a ticket page lists them
    "event": {
        "opened": N_("Ticket opened"),
        "type": N_("Type changed"),
        "status": N_("Status changed"),
        "refund_kind": N_("Refund type changed"),
        "process_at": N_("Deadline changed"),
        "escalated": N_("Escalated"),
        "not_processed": N_("Could not be processed"),
        "consent": N_("Customer agreed"),
        "dispute": N_("Customer disputed"),
        "confirmed": N_("Request confirmed"),
        "returned": N_("Return acknowledged"),
        "reply": N_("Reply added"),
        "inactivity_warning": N_("Inactivity warning"),
        "processed": N_("Processed"),
        "customer_email": N_("Customer's address changed"),
        "follow_up": N_("Follow-up ticket"),
        "refund_approved": N_("Refund approved by the vendor"),
        "support_refunded": N_("Business Care refunded and ended"),
    },
}


def english_label(group: str | None, code: str | None) -> str:
    """The English label of `code` in `group` (without a group: the first group that has the
    code); the code itself when it has none."""
    if group is not None:
        return LABELS.get(group, {}).get(code or "", code or "")
    for codes in LABELS.values():
        if code and code in codes:
            return codes[code]
    return code or ""
