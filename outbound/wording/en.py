"""Outbound mail in English ("en"): subjects, code labels, layout words, digest intro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SUBJECTS: Final[Mapping[str, str]] = {
    "opened": "Ticket Opened - {type} [Ticket #{n}]",
    "reply": "Ticket Reply - {type} [Ticket #{n}]",
    "changed": "Ticket Changed - {type} [Ticket #{n}]",
    "closed": "Ticket Closed - {type} [Ticket #{n}]",
    "inactivity_warning": "Ticket Inactivity Warning - {type} [Ticket #{n}]",
    "processed.refund": "Refund Processed [Ticket #{n}]",
    "processed.cancellation": "Cancellation Processed [Ticket #{n}]",
    "escalated": "Ticket Escalated - {type} [Ticket #{n}]",
    "notice": "Ticket Notice [Ticket #{n}]",
    "notice.no_ticket": "Request Not Processed",
    "receipt": "Your Order Receipt {receipt}",
    "sale": "Sale Notification {receipt}",
}

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "type": {
        "refund": "Refund Request",
        "cancellation": "Cancellation Request",
        "tech_support": "Tech Support Request",
    },
    "status": {"open": "Open", "closed": "Closed"},
    "role": {
        "customer": "Customer",
        "vendor": "Vendor",
        "staff": "Customer Service",
        "system": "System",
    },
    "refund_reason": {
        "not_received": "Product not received",
        "not_as_described": "Product not as described",
        "technical_issue": "Technical issue",
        "not_satisfied": "Not satisfied with the product",
        "unauthorized": "Unauthorized purchase",
        "duplicate": "Duplicate purchase",
        "other": "Other",
    },
    "cancellation_reason": {
        "too_expensive": "Too expensive",
        "not_using": "No longer using it",
        "technical_issue": "Technical issue",
        "other": "Other",
    },
    "problem": {
        "cannot_download": "Cannot download the product",
        "cannot_login": "Cannot log in",
        "not_received": "Product not received",
        "not_working": "Product not working",
        "other": "Other",
    },
    "close_reason": {
        "by_customer": "closed by the customer",
        "by_vendor": "closed by the vendor",
        "by_staff": "closed by customer service",
        "processed": "processed",
        "inactive": "closed after inactivity",
    },
    "refund_kind": {
        "full": "Full refund",
        "amount": "Partial refund (amount)",
        "percent": "Partial refund (percent)",
        "quantity": "Partial refund (quantity)",
    },
}

WORDS: Final[Mapping[str, str]] = {
    "colon": ": ",
    "date": "%Y-%m-%d %H:%M",
    "newest_comment": "Newest comment",
    "open_ticket": "View and answer the ticket",
    "reply_hint": "You can also reply to this email: your answer is added to the ticket.",
    "ticket_details": "Ticket details",
    "order_details": "Order details",
    "history": "Comment history (oldest first)",
    "ticket": "Ticket",
    "type": "Type",
    "status": "Status",
    "opened": "Opened",
    "by": "by",
    "reason": "Reason",
    "problem": "Problem",
    "refund_kind": "Refund type",
    "refund_amount": "Refund amount",
    "process_at": "To be processed",
    "closed": "Closed",
    "escalated": "Escalated",
    "yes": "Yes",
    "receipt": "Receipt",
    "product": "Product",
    "quantity": "Quantity",
    "amount": "Amount",
    "purchased": "Purchased",
    "customer": "Customer",
    "vendor": "Vendor",
    "refunded": "Refunded",
    "attachments": "Attachments",
    "not_attached": "not attached, see the ticket",
    "due": "Unless it is closed or changed first, it will be processed on {when}.",
    "dispute_text": "If you did not agree to this, use the link below: your request will be"
    " reopened and processed within 5 minutes.",
    "dispute_link": "I did not agree",
    "to_refund_link": "Change to a refund request",
    "confirm_link": "Confirm my request",
    "receipt_link": "Your receipt page",
    "download_link": "Download the product",
    "explanation": "Explanation",
}

DIGEST_INTRO: Final = (
    "To keep your inbox calm, {count} updates on this ticket were held back and are"
    " summed up in this one email:"
)
