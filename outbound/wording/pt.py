"""Outbound mail in Portuguese ("pt"): subjects, code labels, layout words, digest intro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SUBJECTS: Final[Mapping[str, str]] = {
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
}

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
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
}

WORDS: Final[Mapping[str, str]] = {
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
}

DIGEST_INTRO: Final = (
    "Para não lotar sua caixa de entrada, {count} atualizações deste tíquete foram"
    " reunidas neste único e-mail:"
)
