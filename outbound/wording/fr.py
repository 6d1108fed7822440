"""Outbound mail in French ("fr"): subjects, code labels, layout words, digest intro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SUBJECTS: Final[Mapping[str, str]] = {
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
}

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
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
}

WORDS: Final[Mapping[str, str]] = {
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
}

DIGEST_INTRO: Final = (
    "Pour ne pas encombrer votre boîte, {count} mises à jour de ce ticket ont été"
    " regroupées dans ce seul courriel :"
)
