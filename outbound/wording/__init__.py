"""The fixed words of outbound mail: subjects and the digest's first line, said in the reader's
language through the message catalogue (`gateway.services.i18n`).

The English below are the catalogue's msgids; each locale's words are in its `.po` file.
Subjects are part of the outside contract (vendors filter on them; the four tables are in
docs/emails.md and a golden test pins every one). `[Ticket #N]` stays literal in every locale:
inbound matching and vendors' filters both look for it.

A locale given here is one of `LOCALES`, picked once per mail where its outbox row is read
(`outbound.compose`) or by the renderer for a caller's raw tag; nothing here picks it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from gateway.domain.labels import LABELS
from gateway.domain.locales import LOCALES
from gateway.domain.texts import N_
from gateway.services import i18n

__all__ = ["COLON", "LABELS", "SUBJECTS", "digest_summary", "subject_for",
           "type_name"]

# Subject patterns (English msgids). `%(type)s` is the ticket type's label, `%(n)s` the ticket
# number, `%(receipt)s` the order's receipt number.
SUBJECTS: Final[Mapping[str, str]] = {
    "opened": N_("Ticket Opened - %(type)s [Ticket #%(n)s]"),
    "reply": N_("Ticket Reply - %(type)s [Ticket #%(n)s]"),
    "changed": N_("Ticket Changed - %(type)s [Ticket #%(n)s]"),
    "closed": N_("Ticket Closed - %(type)s [Ticket #%(n)s]"),
    "inactivity_warning": N_("Ticket Inactivity Warning - %(type)s [Ticket #%(n)s]"),
    "processed.refund": N_("Refund Processed [Ticket #%(n)s]"),
    "processed.cancellation": N_("Cancellation Processed [Ticket #%(n)s]"),
    "escalated": N_("Ticket Escalated - %(type)s [Ticket #%(n)s]"),
    "notice": N_("Ticket Notice [Ticket #%(n)s]"),
    "notice.no_ticket": N_("Request Not Processed"),
    "receipt": N_("Your Order Receipt %(receipt)s"),
    "sale": N_("Sale Notification %(receipt)s"),
    "disputed": N_("Ticket Disputed [Ticket #%(n)s]"),
    "revoked": N_("Right to Respond Revoked"),
    "signin": N_("Your Sign-in Link"),
}

# The colon after a label: typography, not words, so not in the catalogue. (Instants are
# Babel's, as on pages: `i18n.format_when`.)
COLON: Final[Mapping[str, str]] = {loc: i18n.colon(loc) for loc in LOCALES}



def type_name(ticket_type: str | None, locale: str) -> str:
    """The label of a ticket type (`Refund Request`); an unknown code is shown as it is."""
    return i18n.label("type", ticket_type, locale)


def subject_for(
    event: str,
    locale: str,
    *,
    ticket_number: int | None = None,
    ticket_type: str | None = None,
    receipt: str | None = None,
) -> str:
    """The fixed subject of one event in one locale.

    `processed` picks the refund or cancellation line by `ticket_type`; `notice` without a
    ticket number is the "Request Not Processed" line.
    """
    key = event
    if event == "processed":
        key = "processed.cancellation" if ticket_type == "cancellation" else "processed.refund"
    elif event == "notice" and ticket_number is None:
        key = "notice.no_ticket"
    if key not in SUBJECTS:
        raise ValueError(f"no subject for event {event!r}")
    pattern = i18n.gettext(SUBJECTS[key], locale=locale)
    values = {"type": type_name(ticket_type, locale),
              "n": ticket_number if ticket_number is not None else "", "receipt": receipt or ""}
    return pattern % values if "%(" in pattern else pattern


def digest_summary(subjects: Sequence[str], locale: str) -> str:
    """What a digest says first: how many updates it carries, then their subjects, one a line."""
    intro = i18n.ngettext(
        "To keep your inbox calm, %(num)d update on this ticket was held back and is summed up"
        " in this email:",
        "To keep your inbox calm, %(num)d updates on this ticket were held back and are summed"
        " up in this one email:", len(subjects), locale=locale) % {"num": len(subjects)}
    return intro + "\n" + "\n".join("- " + subject for subject in subjects)
