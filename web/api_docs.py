"""The REST API's OpenAPI 3.1 document, written by hand beside the routes in `api.py`."""

from __future__ import annotations

from typing import Any

ACTIONS = ["close", "reopen", "techsupport", "refund", "partial", "full", "percent", "quantity",
           "escalate", "returned"]
TICKET_TYPES = ["refund", "cancellation", "tech_support"]
REFUND_KINDS = ["full", "amount", "percent", "quantity"]

_TIME = {"type": ["string", "null"], "format": "date-time",
         "description": "UTC, whole seconds: YYYY-MM-DDTHH:MM:SSZ"}
_MONEY = {"type": ["string", "null"], "pattern": r"^\d+\.\d{2}$", "examples": ["47.00"]}
_NUMBER = {"type": ["number", "string"], "description": "a JSON number or a decimal string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None,
         extra: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": extra}
    if required:
        schema["required"] = required
    return schema


_TICKET_FIELDS: dict[str, Any] = {
    "number": {"type": "integer"},
    "type": {"enum": TICKET_TYPES},
    "status": {"enum": ["open", "closed"]},
    "receipt": {"type": "string"},
    "vendor": {"type": "string"},
    "customer_email": {"type": "string"},
    "created_by": {"enum": ["customer", "vendor", "staff"]},
    "created_at": _TIME,
    "reason": {"type": ["string", "null"]},
    "problem": {"type": ["string", "null"]},
    "process_at": _TIME,
    "awaiting_confirmation": {"type": "boolean"},
    "closed_at": _TIME,
    "close_reason": {"type": ["string", "null"]},
    "refund_kind": {"enum": [*REFUND_KINDS, None]},
    "refund_value": {"type": ["string", "null"]},
    "refund_amount": _MONEY,
    "currency": {"type": "string"},
    "escalated": {"type": "boolean"},
    "disputable_until": _TIME,
    "follows": {"type": ["integer", "null"]},
    "order_refunded_amount": _MONEY,
    "subscription": {"type": ["string", "null"]},
}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}},
                                 ["code", "message"])}, ["error"]),
    "Attachment": _obj({"id": {"type": "integer"}, "filename": {"type": "string"},
                        "content_type": {"type": "string"}, "size": {"type": "integer"}}),
    "Message": _obj({
        "author_role": {"type": "string"}, "author_email": {"type": ["string", "null"]},
        "text": {"type": "string"}, "source": {"type": "string"},
        "message_id": {"type": ["string", "null"]}, "created_at": _TIME,
        "attachments": {"type": "array", "items": _ref("Attachment")},
    }),
    "Event": _obj({
        "at": _TIME, "recorded_at": _TIME, "actor_role": {"type": "string"},
        "kind": {"type": "string"}, "old": {"type": ["string", "null"]},
        "new": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]},
    }),
    "TicketSummary": _obj(_TICKET_FIELDS, extra=True),
    "Ticket": _obj({**_TICKET_FIELDS,
                    "messages": {"type": "array", "items": _ref("Message")},
                    "events": {"type": "array", "items": _ref("Event")}}, extra=True),
    "TicketPage": _obj({"items": {"type": "array", "items": _ref("TicketSummary")},
                        "page": {"type": "integer"}, "per_page": {"type": "integer"},
                        "total": {"type": "integer"}}, ["items", "page", "per_page", "total"]),
    "OrderInput": _obj({
        "receipt": {"type": "string"}, "vendor": {"type": "string"},
        "sku": {"type": "string"}, "title": {"type": "string"},
        "kind": {"enum": ["digital", "physical", "support"]}, "recurring": {"type": "boolean"},
        "customer_email": {"type": "string"}, "customer_name": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1}, "amount": _NUMBER,
        "currency": {"type": "string"}, "purchased_at": _TIME,
        "payments": {"type": "array", "items": _obj({"at": _TIME, "amount": _NUMBER})},
        "shipped": {"type": "boolean"}, "shipped_at": _TIME, "locale": {"enum": [
            "en", "fr", "de", "pt"]}, "shop_url": {"type": "string"},
        "subscription": {"enum": ["active", "cancelled"]}, "return_info": {"type": "boolean"},
        "covers_sku": {"type": "string", "description": "kind support: the product it covers"},
        "valid_until": {"type": "string", "description": "kind support: its last instant, "
                        "or a date (the end of that day, UTC)"},
        "notify": {"type": "boolean", "default": True,
                   "description": "a new order gets its receipt and sale mails"},
    }, ["receipt", "vendor", "sku", "customer_email", "amount", "purchased_at"]),
    "Order": _obj({"receipt": {"type": "string"}, "vendor": {"type": "string"},
                   "amount": _MONEY, "refunded_amount": _MONEY, "currency": {"type": "string"},
                   "created_at": _TIME, "updated_at": _TIME}, extra=True),
    "OpenTicket": _obj({
        "receipt": {"type": "string"}, "type": {"enum": TICKET_TYPES},
        "reason": {"type": "string"}, "comment": {"type": "string"},
        "refund_kind": {"enum": REFUND_KINDS}, "refund_value": _NUMBER,
    }, ["receipt", "type"]),
    "Reply": _obj({"text": {"type": "string", "minLength": 1},
                   "template": {"type": "string", "description": "a reply template of the "
                                "vendor's, before the text (text then optional)"}}),
    "TicketAction": _obj({
        "action": {"enum": ACTIONS}, "comment": {"type": "string",
                                                 "description": "required for escalate"},
        "amount": _NUMBER, "percent": _NUMBER, "quantity": _NUMBER,
        "reason": {"type": "string", "description": "refund only: the refund's reason code "
                   "(a vendor's approves the refund)"},
    }, ["action"]),
    "TemplateInput": _obj({"body": {"type": "string", "description": "Jinja2 over customer_name, "
                                    "product, receipt, ticket, deadline, vendor"}}, ["body"]),
    "Template": _obj({"name": {"type": "string"}, "updated_at": _TIME,
                      "body": {"type": "string"}}, ["name", "updated_at"]),
    "TemplateList": _obj({"items": {"type": "array", "items": _ref("Template")}}, ["items"]),
    "SignatureInput": _obj({"text": {"type": "string"}}, ["text"]),
    "Signature": _obj({"signature": {"type": ["string", "null"]}}, ["signature"]),
    "RefundPreview": _obj({"amount": _MONEY, "currency": {"type": "string"}},
                          ["amount", "currency"]),
}

_ERRORS = {
    "400": "the body is not valid JSON, or not a JSON object",
    "401": "no API key, or an unknown or revoked one",
    "403": "the key's role may not do this",
    "404": "no such ticket or order (or it belongs to another vendor)",
    "409": "the ticket's or order's state does not allow it",
    "422": "a field or query parameter is missing or invalid",
    "429": "too many requests with this key; see Retry-After",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, answers: dict[str, tuple[str, str]], *, body: str | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = (),
        empty: dict[str, str] | None = None) -> Any:
    """`empty`: answers without a body (status: description)."""
    responses: dict[str, Any] = {
        status: {"description": text, **_json(_ref(schema))}
        for status, (text, schema) in answers.items()}
    responses.update({status: {"description": text} for status, text in (empty or {}).items()})
    for status in ("401", "429", *errors):
        responses[status] = {"description": _ERRORS[status], **_json(_ref("Error"))}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = {"required": True, **_json(_ref(body))}
    if params:
        op["parameters"] = params
    return op


def _param(name: str, where: str, schema: dict[str, Any], text: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": text}


_NUMBER_PARAM = _param("number", "path", {"type": "integer"}, "the ticket number")
_TICKET_ERRORS = ("400", "403", "404", "409", "422")


def _vendor_text_paths() -> dict[str, Any]:
    nick = _param("nickname", "path", {"type": "string"}, "the vendor (a vendor key: its own)")
    name = _param("name", "path", {"type": "string"}, "the template's name")
    refused = ("400", "404", "422")
    return {
        "/vendors/{nickname}/templates": {"get": _op(
            "The vendor's reply templates", {"200": ("names", "TemplateList")},
            params=[nick], errors=("404",))},
        "/vendors/{nickname}/templates/{name}": {
            "get": _op("One reply template", {"200": ("the template", "Template")},
                       params=[nick, name], errors=("404",)),
            "put": _op("Add or replace a reply template (refused with its line when it would "
                       "fail)", {"201": ("added", "Template"), "200": ("replaced", "Template")},
                       body="TemplateInput", params=[nick, name], errors=refused),
            "delete": _op("Remove a reply template", {}, params=[nick, name],
                          errors=("404",), empty={"204": "removed"}),
        },
        "/vendors/{nickname}/signature": {
            method: _op(summary, {"200": ("the signature", "Signature")},
                        body="SignatureInput" if method == "put" else None, params=[nick],
                        errors=refused)
            for method, summary in (("get", "The signature under the vendor's replies"),
                                    ("put", "Set the signature"),
                                    ("delete", "No signature any more"))},
    }


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/orders": {"post": _op(
            "Create or update one order (the fields of an import line, plus notify)",
            {"201": ("created", "Order"), "200": ("updated", "Order")}, body="OrderInput",
            errors=("400", "403", "409", "422"))},
        "/orders/{receipt}/refund-preview": {"get": _op(
            "The money a refund of this kind would return", {"200": ("preview", "RefundPreview")},
            params=[_param("receipt", "path", {"type": "string"}, "the order's receipt"),
                    _param("kind", "query", {"enum": REFUND_KINDS, "default": "full"},
                           "refund kind"),
                    _param("value", "query", {"type": "string"},
                           "the amount, percent or quantity; not for full")],
            errors=("404", "409", "422"))},
        "/tickets": {
            "get": _op("List tickets, newest number last", {"200": ("a page", "TicketPage")},
                       params=[
                           _param("type", "query", {"enum": TICKET_TYPES}, "ticket type"),
                           _param("status", "query", {"enum": ["open", "closed"]}, "status"),
                           _param("receipt", "query", {"type": "string"}, "order receipt"),
                           _param("created_from", "query", {"type": "string",
                                  "format": "date-time"}, "created at or after (ISO-8601)"),
                           _param("created_to", "query", {"type": "string",
                                  "format": "date-time"}, "created at or before (ISO-8601)"),
                           _param("page", "query", {"type": "integer", "minimum": 1,
                                                    "default": 1}, "page, from 1"),
                           _param("per_page", "query", {"type": "integer", "minimum": 1,
                                  "maximum": 100, "default": 20}, "tickets a page")],
                       errors=("422",)),
            "post": _op("Open a ticket as the key's role (vendor or staff)",
                        {"201": ("the ticket", "Ticket")}, body="OpenTicket",
                        errors=_TICKET_ERRORS),
        },
        "/tickets/{number}": {"get": _op("One ticket with messages and events",
                                         {"200": ("the ticket", "Ticket")},
                                         params=[_NUMBER_PARAM], errors=("404",))},
        "/tickets/{number}/replies": {"post": _op(
            "Reply on a ticket", {"201": ("the new message", "Message")}, body="Reply",
            params=[_NUMBER_PARAM], errors=_TICKET_ERRORS)},
        "/tickets/{number}/actions": {"post": _op(
            "Act on a ticket", {"200": ("the ticket after the action", "Ticket")},
            body="TicketAction", params=[_NUMBER_PARAM], errors=_TICKET_ERRORS)},
        "/tickets/{number}/attachments/{attachment}": {"get": {
            "summary": "One attachment's bytes (a message's `attachments[].id`)",
            "parameters": [_NUMBER_PARAM, _param("attachment", "path", {"type": "integer"},
                                                 "the attachment's id")],
            "responses": {
                "200": {"description": "the file: PNG, JPEG, GIF and WebP with their type, "
                        "anything else as application/octet-stream; Content-Disposition "
                        "names it"},
                **{status: {"description": text, **_json(_ref("Error"))} for status, text in (
                    ("401", _ERRORS["401"]), ("404", "no such ticket or attachment (or it "
                                              "belongs to another vendor)"),
                    ("410", "too large to keep when the mail came: only its name and size "
                     "are stored"), ("429", _ERRORS["429"]))}}}},
        **_vendor_text_paths(),
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticketgw REST API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a key from `ticketgw apikey create --vendor NICK` or `--staff`",
            }},
        },
    }
