"""Outbound mail in German ("de"): subjects, code labels, layout words, digest intro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SUBJECTS: Final[Mapping[str, str]] = {
    "opened": "Ticket eröffnet - {type} [Ticket #{n}]",
    "reply": "Ticket-Antwort - {type} [Ticket #{n}]",
    "changed": "Ticket geändert - {type} [Ticket #{n}]",
    "closed": "Ticket geschlossen - {type} [Ticket #{n}]",
    "inactivity_warning": "Ticket-Inaktivitätswarnung - {type} [Ticket #{n}]",
    "processed.refund": "Rückerstattung durchgeführt [Ticket #{n}]",
    "processed.cancellation": "Stornierung durchgeführt [Ticket #{n}]",
    "escalated": "Ticket eskaliert - {type} [Ticket #{n}]",
    "notice": "Ticket-Hinweis [Ticket #{n}]",
    "notice.no_ticket": "Anfrage nicht bearbeitet",
    "receipt": "Ihre Bestellrechnung {receipt}",
    "sale": "Verkaufsbenachrichtigung {receipt}",
}

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "type": {
        "refund": "Rückerstattungsantrag",
        "cancellation": "Stornierungsantrag",
        "tech_support": "Antrag auf technische Unterstützung",
    },
    "status": {"open": "Offen", "closed": "Geschlossen"},
    "role": {
        "customer": "Kunde",
        "vendor": "Vendor",
        "staff": "Kundenservice",
        "system": "System",
    },
    "refund_reason": {
        "not_received": "Produkt nicht erhalten",
        "not_as_described": "Produkt entspricht nicht der Beschreibung",
        "technical_issue": "Technisches Problem",
        "not_satisfied": "Mit dem Produkt nicht zufrieden",
        "unauthorized": "Nicht autorisierter Kauf",
        "duplicate": "Doppelter Kauf",
        "other": "Sonstiges",
    },
    "cancellation_reason": {
        "too_expensive": "Zu teuer",
        "not_using": "Wird nicht mehr genutzt",
        "technical_issue": "Technisches Problem",
        "other": "Sonstiges",
    },
    "problem": {
        "cannot_download": "Produkt kann nicht heruntergeladen werden",
        "cannot_login": "Anmeldung nicht möglich",
        "not_received": "Produkt nicht erhalten",
        "not_working": "Produkt funktioniert nicht",
        "other": "Sonstiges",
    },
    "close_reason": {
        "by_customer": "vom Kunden geschlossen",
        "by_vendor": "vom Vendor geschlossen",
        "by_staff": "vom Kundenservice geschlossen",
        "processed": "bearbeitet",
        "inactive": "wegen Inaktivität geschlossen",
    },
    "refund_kind": {
        "full": "Vollständige Rückerstattung",
        "amount": "Teilrückerstattung (Betrag)",
        "percent": "Teilrückerstattung (Prozent)",
        "quantity": "Teilrückerstattung (Menge)",
    },
}

WORDS: Final[Mapping[str, str]] = {
    "colon": ": ",
    "date": "%d.%m.%Y %H:%M",
    "newest_comment": "Neuester Kommentar",
    "open_ticket": "Ticket ansehen und beantworten",
    "reply_hint": "Sie können auch auf diese E-Mail antworten: Ihre Antwort wird dem Ticket"
    " hinzugefügt.",
    "ticket_details": "Ticketdetails",
    "order_details": "Auftragsdetails",
    "history": "Verlauf der Kommentare (älteste zuerst)",
    "ticket": "Ticket",
    "type": "Tickettyp",
    "status": "Status",
    "opened": "Eröffnet",
    "by": "von",
    "reason": "Grund",
    "problem": "Problem",
    "refund_kind": "Art der Rückerstattung",
    "refund_amount": "Rückerstattungsbetrag",
    "process_at": "Bearbeitung am",
    "closed": "Geschlossen",
    "escalated": "Eskaliert",
    "yes": "Ja",
    "receipt": "Rechnungsnummer",
    "product": "Produkt",
    "quantity": "Menge",
    "amount": "Betrag",
    "purchased": "Gekauft",
    "customer": "Kunde",
    "vendor": "Vendor",
    "refunded": "Rückerstattet",
    "attachments": "Anhänge",
    "not_attached": "nicht angehängt, siehe Ticket",
    "due": "Sofern es nicht vorher geschlossen oder geändert wird, wird es am {when}"
    " bearbeitet.",
    "dispute_text": "Wenn Sie dem nicht zugestimmt haben, nutzen Sie den Link unten: Ihr Antrag"
    " wird wieder geöffnet und innerhalb von 5 Minuten bearbeitet.",
    "dispute_link": "Ich habe nicht zugestimmt",
    "to_refund_link": "In einen Rückerstattungsantrag umwandeln",
    "confirm_link": "Meinen Antrag bestätigen",
    "receipt_link": "Ihre Bestellaufrufseite",
    "download_link": "Das Produkt herunterladen",
    "explanation": "Begründung",
}

DIGEST_INTRO: Final = (
    "Damit Ihr Posteingang nicht überläuft, wurden {count} Aktualisierungen dieses"
    " Tickets in dieser einen E-Mail zusammengefasst:"
)
