"""What a REST API request says, checked at the edge: the JSON body, its fields, the query.

Everything here answers a malformed request (400) or an invalid field (422) before any
database work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.domain.clock import parse_instant
from gateway.domain.facts import Action, RefundKind, Status, TicketType
from web import api_docs

BODY_LIMIT = 1024 * 1024  # bytes of a request body; attachments go by mail, not here
MAX_PER_PAGE = 100
# The actions the API offers (CONTRACT); a reply has its own call, consent is the customer's.
ACTIONS = tuple(api_docs.ACTIONS)
_VALUE_OF = {Action.PARTIAL: "amount", Action.PERCENT: "percent", Action.QUANTITY: "quantity"}
_ACTION_OF_KIND = {RefundKind.AMOUNT: Action.PARTIAL, RefundKind.PERCENT: Action.PERCENT,
                   RefundKind.QUANTITY: Action.QUANTITY}
_LIST_QUERY = ("type", "status", "receipt", "created_from", "created_to", "page", "per_page")


def _sentence(message: str) -> str:
    text = message.strip()
    text = text[:1].upper() + text[1:]
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": _sentence(message)}},
                        status_code=status, headers=headers)


class ApiError(Exception):
    """An answer decided at the edge: bad JSON, no key, rate limit."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def invalid(message: str, code: str = "invalid_field") -> ApiError:
    return ApiError(422, code, message)


# --- body and fields -------------------------------------------------------------------------

def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; numbers with a fraction arrive as Decimal, never float."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_LIMIT:
        raise ApiError(413, "too_large", f"the body is over {BODY_LIMIT} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > BODY_LIMIT:
            raise ApiError(413, "too_large", f"the body is over {BODY_LIMIT} bytes")
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal,
                           parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ApiError(400, "not_an_object", "the body must be a JSON object")
    return value


def only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(f"unknown field(s) {', '.join(unknown)}; this call takes "
                      + ", ".join(allowed))


def text_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise invalid(f"field {name!r} is missing", "missing_field")
        return None
    if not isinstance(value, str):
        raise invalid(f"field {name!r} must be a string")
    return value.strip()


def choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def number_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A number given as JSON number or decimal string, handed on as its exact text."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"field {name!r} is missing", "missing_field")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise invalid(f"{name} must be a number such as 12.50")
    text = str(value).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise invalid(f"{name} {value!r} is not a number such as 12.50") from None
    if not number.is_finite():
        raise invalid(f"{name} {value!r} is not a number such as 12.50")
    return text


# --- what each call asks for ----------------------------------------------------------------

@dataclass(frozen=True)
class TicketQuery:
    type: str | None
    status: str | None
    receipt: str | None
    created_from: datetime | None
    created_to: datetime | None
    page: int
    per_page: int


@dataclass(frozen=True)
class OpenRequest:
    receipt: str
    type: TicketType
    reason: str | None
    comment: str | None
    kind_action: Action | None
    value: str | None


def ticket_query(params: QueryParams) -> TicketQuery:
    unknown = sorted(set(params) - set(_LIST_QUERY))
    if unknown:
        raise invalid(f"unknown query parameter(s) {', '.join(unknown)}; filters are "
                      + ", ".join(_LIST_QUERY))

    def whole(name: str, default: int, low: int, high: int) -> int:
        text = params.get(name)
        if text is None or text == "":
            return default
        try:
            number = int(text)
        except ValueError:
            raise invalid(f"{name} must be a whole number, not {text!r}") from None
        if not low <= number <= high:
            raise invalid(f"{name} must be from {low} to {high}, not {number}")
        return number

    def instant(name: str) -> datetime | None:
        text = params.get(name)
        if not text:
            return None
        try:
            return parse_instant(text)
        except ValueError as exc:
            raise invalid(f"{name}: {exc}") from None

    receipt = params.get("receipt")
    return TicketQuery(
        type=choice(params.get("type") or None, "type", tuple(t.value for t in TicketType)),
        status=choice(params.get("status") or None, "status", tuple(s.value for s in Status)),
        receipt=receipt.strip().upper() if receipt else None,
        created_from=instant("created_from"),
        created_to=instant("created_to"),
        page=whole("page", 1, 1, 1_000_000),
        per_page=whole("per_page", 20, 1, MAX_PER_PAGE),
    )


def open_request(body: dict[str, Any]) -> OpenRequest:
    only(body, ("receipt", "type", "reason", "comment", "refund_kind", "refund_value"))
    receipt = text_field(body, "receipt", required=True)
    kind_name = choice(text_field(body, "type", required=True), "type",
                        tuple(t.value for t in TicketType))
    refund_kind = choice(text_field(body, "refund_kind"), "refund_kind",
                          tuple(k.value for k in RefundKind))
    assert receipt is not None and kind_name is not None
    ticket_type = TicketType(kind_name)
    kind_action: Action | None = None
    value: str | None = None
    if refund_kind is not None and ticket_type is not TicketType.REFUND:
        raise invalid("refund_kind is for refund tickets only")
    if refund_kind is not None and refund_kind != RefundKind.FULL.value:
        kind_action = _ACTION_OF_KIND[RefundKind(refund_kind)]
        value = number_field(body, "refund_value")
    elif body.get("refund_value") is not None:
        raise invalid("refund_value goes with refund_kind amount, percent or quantity")
    return OpenRequest(receipt=receipt, type=ticket_type, reason=text_field(body, "reason"),
                       comment=text_field(body, "comment"), kind_action=kind_action, value=value)


def action_request(body: dict[str, Any]) -> tuple[Action, str | None, str | None]:
    only(body, ("action", "comment", "amount", "percent", "quantity", "reason"))
    name = choice(text_field(body, "action", required=True), "action", ACTIONS)
    assert name is not None
    action = Action(name)
    comment = text_field(body, "comment")
    wanted = _VALUE_OF.get(action)
    for other in ("amount", "percent", "quantity"):
        if other != wanted and body.get(other) is not None:
            raise invalid(f"{other} does not go with the action {name!r}")
    if action is not Action.REFUND and body.get("reason") is not None:
        raise invalid(f"reason goes with the action 'refund', not {name!r}")
    # a refund's reason code: a vendor's approval, a customer's conversion (SPEC 7)
    value = number_field(body, wanted) if wanted else text_field(body, "reason")
    if action is Action.ESCALATE:
        if comment is None:
            raise invalid("an escalation needs a comment explaining it to staff",
                          "missing_field")
        value = comment
    return action, comment, value


def preview_query(params: QueryParams) -> tuple[RefundKind, str | None]:
    unknown = sorted(set(params) - {"kind", "value"})
    if unknown:
        raise invalid(f"unknown query parameter(s) {', '.join(unknown)}; use kind and value")
    kind = choice(params.get("kind") or "full", "kind",
                  tuple(k.value for k in RefundKind)) or "full"
    return RefundKind(kind), number_field(dict(params), "value", required=kind != "full")
