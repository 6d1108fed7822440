"""The fixed words of outbound mail per locale: subjects (vendors filter on them) and code labels.

Subjects are contract (CONTRACT.md "Outbound mail"; the four tables are in docs/emails.md and a
golden test pins every one). `[Ticket #N]` stays literal in every locale: inbound matching and
vendors' filters both look for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LOCALES: Final = ("en", "fr", "de", "pt")
DEFAULT_LOCALE: Final = "en"

# Subject patterns. `{type}` is the ticket type's name below, `{n}` the ticket number,
# `{receipt}` the order's receipt number.
SUBJECTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
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
    },
    "fr": {
        "opened": "Ticket ouvert - {type} [Ticket #{n}]",
        "reply": "Réponse au ticket - {type} [Ticket #{n}]",
        "changed": "Ticket modifié - {type} [Ticket #{n}]",
        "closed": "Ticket fermé - {type} [Ticket #{n}]",
        "inactivity_warning": "Avertissement pour non-traitement du ticket - {type} [Ticket #{n}]",
        "processed.refund": "Remboursement traité [Ticket #{n}]",
        "processed.cancellation": "Annulation traitée [Ticket #{n}]",
        "escalated": "Ticket escaladé - {type} [Ticket #{n}]",
        "notice": "Avis concernant le ticket [Ticket #{n}]",
        "notice.no_ticket": "Demande non traitée",
        "receipt": "Reçu de votre commande {receipt}",
        "sale": "Notification de vente {receipt}",
    },
    "de": {
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
    },
    "pt": {
        "opened": "Tíquete aberto - {type} [Ticket #{n}]",
        "reply": "Resposta ao tíquete - {type} [Ticket #{n}]",
        "changed": "Tíquete alterado - {type} [Ticket #{n}]",
        "closed": "Tíquete encerrado - {type} [Ticket #{n}]",
        "inactivity_warning": "Advertência de inatividade de tíquete - {type} [Ticket #{n}]",
        "processed.refund": "Reembolso processado [Ticket #{n}]",
        "processed.cancellation": "Cancelamento processado [Ticket #{n}]",
        "escalated": "Tíquete escalado - {type} [Ticket #{n}]",
        "notice": "Aviso sobre o tíquete [Ticket #{n}]",
        "notice.no_ticket": "Solicitação não processada",
        "receipt": "Recibo do seu pedido {receipt}",
        "sale": "Notificação de venda {receipt}",
    },
}

# Labels of codes. Each locale has every key of "en" (a test holds this).
LABELS: Final[Mapping[str, Mapping[str, Mapping[str, str]]]] = {
    "en": {
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
    },
    "fr": {
        "type": {
            "refund": "Demande de remboursement",
            "cancellation": "Demande d'annulation",
            "tech_support": "Demande de support technique",
        },
        "status": {"open": "Ouvert", "closed": "Fermé"},
        "role": {
            "customer": "Client",
            "vendor": "Vendeur",
            "staff": "Service clientèle",
            "system": "Système",
        },
        "refund_reason": {
            "not_received": "Produit non reçu",
            "not_as_described": "Produit non conforme à la description",
            "technical_issue": "Problème technique",
            "not_satisfied": "Pas satisfait du produit",
            "unauthorized": "Achat non autorisé",
            "duplicate": "Achat en double",
            "other": "Autre",
        },
        "cancellation_reason": {
            "too_expensive": "Trop cher",
            "not_using": "Je ne l'utilise plus",
            "technical_issue": "Problème technique",
            "other": "Autre",
        },
        "problem": {
            "cannot_download": "Impossible de télécharger le produit",
            "cannot_login": "Impossible de se connecter",
            "not_received": "Produit non reçu",
            "not_working": "Le produit ne fonctionne pas",
            "other": "Autre",
        },
        "close_reason": {
            "by_customer": "fermé par le client",
            "by_vendor": "fermé par le vendeur",
            "by_staff": "fermé par le service clientèle",
            "processed": "traité",
            "inactive": "fermé pour inactivité",
        },
        "refund_kind": {
            "full": "Remboursement total",
            "amount": "Remboursement partiel (montant)",
            "percent": "Remboursement partiel (pourcentage)",
            "quantity": "Remboursement partiel (quantité)",
        },
    },
    "de": {
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
    },
    "pt": {
        "type": {
            "refund": "Solicitação de reembolso",
            "cancellation": "Solicitação de cancelamento",
            "tech_support": "Solicitação de suporte técnico",
        },
        "status": {"open": "Aberto", "closed": "Encerrado"},
        "role": {
            "customer": "Consumidor",
            "vendor": "Fornecedor",
            "staff": "Serviço ao consumidor",
            "system": "Sistema",
        },
        "refund_reason": {
            "not_received": "Produto não recebido",
            "not_as_described": "Produto diferente da descrição",
            "technical_issue": "Problema técnico",
            "not_satisfied": "Não satisfeito com o produto",
            "unauthorized": "Compra não autorizada",
            "duplicate": "Compra duplicada",
            "other": "Outro",
        },
        "cancellation_reason": {
            "too_expensive": "Muito caro",
            "not_using": "Não estou mais usando",
            "technical_issue": "Problema técnico",
            "other": "Outro",
        },
        "problem": {
            "cannot_download": "Não consigo fazer o download do produto",
            "cannot_login": "Não consigo me conectar",
            "not_received": "Produto não recebido",
            "not_working": "O produto não funciona",
            "other": "Outro",
        },
        "close_reason": {
            "by_customer": "encerrado pelo consumidor",
            "by_vendor": "encerrado pelo fornecedor",
            "by_staff": "encerrado pelo serviço ao consumidor",
            "processed": "processado",
            "inactive": "encerrado por inatividade",
        },
        "refund_kind": {
            "full": "Reembolso total",
            "amount": "Reembolso parcial (valor)",
            "percent": "Reembolso parcial (percentual)",
            "quantity": "Reembolso parcial (quantidade)",
        },
    },
}

# The words of the shared layout. `date` is the strftime pattern for times shown in mail.
WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
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
    },
    "fr": {
        "colon": " : ",
        "date": "%d/%m/%Y %H:%M",
        "newest_comment": "Dernier commentaire",
        "open_ticket": "Voir le ticket et y répondre",
        "reply_hint": "Vous pouvez aussi répondre à ce courriel : votre réponse sera ajoutée au"
        " ticket.",
        "ticket_details": "Détails du ticket",
        "order_details": "Détails de la commande",
        "history": "Historique des commentaires (du plus ancien au plus récent)",
        "ticket": "Ticket",
        "type": "Type",
        "status": "Statut",
        "opened": "Ouvert le",
        "by": "par",
        "reason": "Motif",
        "problem": "Problème",
        "refund_kind": "Type de remboursement",
        "refund_amount": "Montant du remboursement",
        "process_at": "Traitement prévu le",
        "closed": "Fermé le",
        "escalated": "Escaladé",
        "yes": "Oui",
        "receipt": "Reçu",
        "product": "Produit",
        "quantity": "Quantité",
        "amount": "Montant",
        "purchased": "Acheté le",
        "customer": "Client",
        "vendor": "Vendeur",
        "refunded": "Remboursé",
        "attachments": "Pièces jointes",
        "not_attached": "non jointe, voir le ticket",
        "due": "Sauf s'il est fermé ou modifié d'ici là, il sera traité le {when}.",
        "dispute_text": "Si vous n'étiez pas d'accord, utilisez le lien ci-dessous : votre demande"
        " sera rouverte et traitée dans les 5 minutes.",
        "dispute_link": "Je n'étais pas d'accord",
        "to_refund_link": "Changer en demande de remboursement",
        "confirm_link": "Confirmer ma demande",
        "receipt_link": "La page de votre reçu",
        "download_link": "Télécharger le produit",
        "explanation": "Explication",
    },
    "de": {
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
    },
    "pt": {
        "colon": ": ",
        "date": "%d/%m/%Y %H:%M",
        "newest_comment": "Comentário mais recente",
        "open_ticket": "Ver e responder ao tíquete",
        "reply_hint": "Você também pode responder a este e-mail: sua resposta será adicionada ao"
        " tíquete.",
        "ticket_details": "Detalhes do tíquete",
        "order_details": "Detalhes do pedido",
        "history": "Histórico de comentários (do mais antigo ao mais recente)",
        "ticket": "Tíquete",
        "type": "Tipo",
        "status": "Status",
        "opened": "Aberto em",
        "by": "por",
        "reason": "Motivo",
        "problem": "Problema",
        "refund_kind": "Tipo de reembolso",
        "refund_amount": "Valor do reembolso",
        "process_at": "Processamento em",
        "closed": "Encerrado em",
        "escalated": "Escalado",
        "yes": "Sim",
        "receipt": "Recibo",
        "product": "Produto",
        "quantity": "Quantidade",
        "amount": "Valor",
        "purchased": "Comprado em",
        "customer": "Consumidor",
        "vendor": "Fornecedor",
        "refunded": "Reembolsado",
        "attachments": "Anexos",
        "not_attached": "não anexado, veja o tíquete",
        "due": "A menos que seja encerrado ou alterado antes, será processado em {when}.",
        "dispute_text": "Se você não concordou com isso, use o link abaixo: sua solicitação será"
        " reaberta e processada em até 5 minutos.",
        "dispute_link": "Eu não concordei",
        "to_refund_link": "Alterar para solicitação de reembolso",
        "confirm_link": "Confirmar minha solicitação",
        "receipt_link": "Sua página de recibo",
        "download_link": "Fazer o download do produto",
        "explanation": "Explicação",
    },
}


def pick_locale(locale: str | None) -> str:
    """The locale to write in: a known one, else English."""
    if locale in LOCALES:
        return str(locale)
    short = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return short if short in LOCALES else DEFAULT_LOCALE


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
    table = SUBJECTS[pick_locale(locale)]
    key = event
    if event == "processed":
        key = "processed.cancellation" if ticket_type == "cancellation" else "processed.refund"
    elif event == "notice" and ticket_number is None:
        key = "notice.no_ticket"
    if key not in table:
        raise ValueError(f"no subject for event {event!r}")
    types = LABELS[pick_locale(locale)]["type"]
    return table[key].format(
        type=types.get(ticket_type or "", ticket_type or ""),
        n=ticket_number if ticket_number is not None else "",
        receipt=receipt or "",
    )
