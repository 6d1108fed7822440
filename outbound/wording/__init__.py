"""The fixed words of outbound mail, one module per locale: subjects, labels, words, digests.

Subjects are part of the outside contract (vendors filter on them; the four tables are in
docs/emails.md and a golden test pins every one). `[Ticket #N]` stays literal in every locale:
inbound matching and vendors' filters both look for it.

A locale given here is one of `LOCALES`, picked once per mail where its outbox row is read
(`outbound.compose`) or by the renderer for a caller's raw tag; nothing here picks it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from outbound.wording import de, en, fr, pt

# Subject patterns. `{type}` is the ticket type's label, `{n}` the ticket number, `{receipt}`
# the order's receipt number.
SUBJECTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": en.SUBJECTS, "fr": fr.SUBJECTS, "de": de.SUBJECTS, "pt": pt.SUBJECTS,
}
# Labels of codes. Each locale has every key of "en" (a test holds this).
LABELS: Final[Mapping[str, Mapping[str, Mapping[str, str]]]] = {
    "en": en.LABELS, "fr": fr.LABELS, "de": de.LABELS, "pt": pt.LABELS,
}
# The words of the shared layout. `date` is the strftime pattern for times shown in mail.
WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": en.WORDS, "fr": fr.WORDS, "de": de.WORDS, "pt": pt.WORDS,
}
# The line a digest starts with (SPEC 11.10: capped mail is held, then sent as one).
DIGEST_INTRO: Final[Mapping[str, str]] = {
    "en": en.DIGEST_INTRO, "fr": fr.DIGEST_INTRO, "de": de.DIGEST_INTRO, "pt": pt.DIGEST_INTRO,
}


def type_name(ticket_type: str | None, locale: str) -> str:
    """The label of a ticket type (`Refund Request`); an unknown code is shown as it is."""
    return LABELS[locale]["type"].get(ticket_type or "", ticket_type or "")


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
    table = SUBJECTS[locale]
    key = event
    if event == "processed":
        key = "processed.cancellation" if ticket_type == "cancellation" else "processed.refund"
    elif event == "notice" and ticket_number is None:
        key = "notice.no_ticket"
    if key not in table:
        raise ValueError(f"no subject for event {event!r}")
    return table[key].format(
        type=type_name(ticket_type, locale),
        n=ticket_number if ticket_number is not None else "",
        receipt=receipt or "",
    )


def digest_summary(subjects: Sequence[str], locale: str) -> str:
    """What a digest says first: how many updates it carries, then their subjects, one a line."""
    intro = DIGEST_INTRO[locale].format(count=len(subjects))
    return intro + "\n" + "\n".join("- " + subject for subject in subjects)
