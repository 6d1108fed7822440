"""The REST API under `/api/v1`: bearer API keys, JSON in and out, one transaction a request.

Routes and answers are CONTRACT "REST API"; the OpenAPI document (`api_docs.py`) lists the
same paths. A vendor key sees its own vendor's tickets and orders only: anything else
answers 404, as if it did not exist.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Select, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from gateway.domain import rules
from gateway.domain.errors import Conflict, Forbidden, NotFound, OutsideWindow, UserError
from gateway.domain.facts import Action, RefundKind
from gateway.services import apikeys, attachments, orders, tickets
from gateway.services.apikeys import Principal
from gateway.services.runtime import Runtime
from gateway.services.snapshots import order_facts, vendor_facts
from gateway.services.views import message_view, order_view, ticket_view
from store.models import Message, Order, Ticket
from web import api_docs, api_texts
from web.api_input import (
    ApiError,
    OpenRequest,
    TicketQuery,
    action_request,
    error_response,
    invalid,
    only,
    open_request,
    preview_query,
    read_object,
    text_field,
    ticket_query,
)
from web.files import file_response
from web.rate_limit import RateLimit, TokenBuckets

T = TypeVar("T")

PREFIX = "/api/v1"
__all__ = ["PREFIX", "RateLimit", "error_response", "routes"]


def status_of(exc: UserError) -> int:
    """403 the role may not, 404 not there (or not yours), 409 the state does not allow it,
    422 a field is wrong."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, (Conflict, OutsideWindow)) or exc.code in ("conflict", "product_conflict"):
        return 409
    return 422


# --- the key and the rate limit --------------------------------------------------------------

@dataclass
class Api:
    """What every call shares: the runtime, the key check, the per-key buckets."""

    runtime: Runtime
    limit: RateLimit = field(default_factory=RateLimit)
    buckets: TokenBuckets = field(init=False)

    def __post_init__(self) -> None:
        self.buckets = TokenBuckets(self.limit)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Database work runs in a worker thread: the event loop never blocks on it."""
        return await anyio.to_thread.run_sync(func, *args)

    def _authenticate(self, key: str) -> Principal:
        with self.runtime.sessions() as session:
            return apikeys.authenticate(session, key)

    async def principal(self, request: Request) -> Principal:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthorized",
                           "send an API key as `Authorization: Bearer KEY`; staff create keys "
                           "with `ticketgw apikey create`", {"WWW-Authenticate": "Bearer"})
        try:
            principal = await self.run(self._authenticate, key.strip())
        except apikeys.InvalidKey as exc:
            raise ApiError(401, exc.code, exc.message,
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        wait = self.buckets.take(principal.key_id)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"too many requests with this key; wait "
                           f"{seconds} second(s) and try again", {"Retry-After": str(seconds)})
        return principal


# --- what each call does, in one transaction -------------------------------------------------

def _ticket_for(session: Session, who: Principal, number: int, *, lock: bool = False) -> Ticket:
    ticket = tickets.find_ticket(session, number, lock=lock)
    if not who.staff and ticket.order.vendor_id != who.vendor_id:
        raise NotFound(f"no ticket #{number}")
    return ticket


def attachment_of(rt: Runtime, who: Principal, number: int,
                  attachment_id: int) -> attachments.AttachmentFile:
    """One attachment of a ticket the key may see (another vendor's: not found)."""
    with rt.sessions() as session:
        _ticket_for(session, who, number)
    return attachments.read_ticket_attachment(rt.sessions, number, attachment_id)


def _order_for(session: Session, who: Principal, receipt: str) -> Order:
    order = tickets.find_order(session, receipt)
    if not who.staff and order.vendor_id != who.vendor_id:
        raise NotFound(f"no order with receipt {receipt!r}; check the receipt number")
    return order


def push_order(rt: Runtime, line: orders.OrderLine, notify: bool,
               problems: list[UserError]) -> tuple[dict[str, Any], bool]:
    """`problems`: the line's own errors, reported with any found against the store."""
    with rt.sessions.begin() as session:
        order, created = orders.upsert_order(session, rt.context(), line, notify=notify,
                                             problems=problems)
        return order_view(order), created


def list_tickets(rt: Runtime, who: Principal, q: TicketQuery) -> dict[str, Any]:
    def filtered(query: Select[Any]) -> Select[Any]:
        query = query.join(Order, Ticket.order_id == Order.id)
        if not who.staff:
            query = query.where(Order.vendor_id == who.vendor_id)
        if q.type:
            query = query.where(Ticket.type == q.type)
        if q.status:
            query = query.where(Ticket.status == q.status)
        if q.receipt:
            query = query.where(Order.receipt == q.receipt)
        if q.created_from is not None:
            query = query.where(Ticket.created_at >= q.created_from)
        if q.created_to is not None:
            query = query.where(Ticket.created_at <= q.created_to)
        return query

    with rt.sessions() as session:
        total = session.execute(filtered(select(func.count(Ticket.id)))).scalar_one()
        found = session.execute(
            filtered(select(Ticket)).order_by(Ticket.number)
            .offset((q.page - 1) * q.per_page).limit(q.per_page)
        ).unique().scalars().all()
        return {"items": [ticket_view(t, full=False) for t in found], "page": q.page,
                "per_page": q.per_page, "total": int(total)}


def show_ticket(rt: Runtime, who: Principal, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(_ticket_for(session, who, number))


def open_ticket(rt: Runtime, who: Principal, req: OpenRequest) -> dict[str, Any]:
    ctx = rt.context()
    actor = who.actor()
    with rt.sessions.begin() as session:
        _order_for(session, who, req.receipt)
        ticket = tickets.open_ticket(session, ctx, req.receipt, req.type, actor,
                                     reason=req.reason, comment=req.comment)
        if req.kind_action is not None:
            ticket = tickets.act(session, ctx, ticket.number, req.kind_action, actor,
                                 value=req.value)
        return ticket_view(ticket)


def reply(rt: Runtime, who: Principal, number: int, text: str | None,
          template: str | None = None) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        _ticket_for(session, who, number, lock=True)
        landed = tickets.act(session, rt.context(), number, Action.REPLY, who.actor(),
                             comment=text, template=template)
        session.flush()
        message = session.execute(select(Message).where(Message.ticket_id == landed.id)
                                  .order_by(Message.id.desc()).limit(1)).scalar_one()
        return message_view(message)


def act(rt: Runtime, who: Principal, number: int, action: Action, comment: str | None,
        value: str | None) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        _ticket_for(session, who, number, lock=True)
        landed = tickets.act(session, rt.context(), number, action, who.actor(),
                             comment=comment, value=value)
        return ticket_view(landed)


def preview(rt: Runtime, who: Principal, receipt: str, kind: RefundKind,
            value: str | None) -> dict[str, Any]:
    with rt.sessions() as session:
        order = _order_for(session, who, receipt)
        amount = rules.refund_amount(order_facts(order), kind,
                                     Decimal(value) if value is not None else None,
                                     vendor_facts(order.vendor), policy=rt.policy)
        return {"amount": f"{amount:.2f}", "currency": order.currency}


# --- the routes ------------------------------------------------------------------------------

Handler = Callable[[Request, Principal], Awaitable[Response]]


def _guarded(api: Api, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Key and rate limit first; every refusal is the contract's error JSON."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, await api.principal(request))
        except ApiError as exc:
            return exc.response()
        except UserError as exc:
            return error_response(status_of(exc), exc.code, exc.message)
        except OperationalError:
            return error_response(503, "unavailable", "the database is busy or being "
                                  "maintained, so nothing was changed; try again soon")
    return endpoint


def routes(runtime: Runtime, limit: RateLimit | None = None) -> list[Mount]:
    api = Api(runtime, limit or RateLimit())

    async def post_orders(request: Request, who: Principal) -> Response:
        body = await read_object(request)
        notify = body.pop("notify", True)
        if not isinstance(notify, bool):
            raise invalid("notify must be true or false")
        line, problems = orders.read_line(body)
        if (not who.staff and "vendor" not in line.invalid
                and line.vendor.lower() != who.vendor_nickname):
            raise Forbidden(f"this key pushes orders for vendor {who.vendor_nickname!r} only, "
                            f"not {line.vendor!r}")
        view, created = await api.run(push_order, runtime, line, notify, problems)
        return JSONResponse(view, status_code=201 if created else 200)

    async def get_tickets(request: Request, who: Principal) -> Response:
        query = ticket_query(request.query_params)
        return JSONResponse(await api.run(list_tickets, runtime, who, query))

    async def post_tickets(request: Request, who: Principal) -> Response:
        req = open_request(await read_object(request))
        return JSONResponse(await api.run(open_ticket, runtime, who, req), status_code=201)

    async def get_ticket(request: Request, who: Principal) -> Response:
        number = request.path_params["number"]
        return JSONResponse(await api.run(show_ticket, runtime, who, number))

    async def post_reply(request: Request, who: Principal) -> Response:
        body = await read_object(request)
        only(body, ("text", "template"))
        template = text_field(body, "template")  # a vendor's saved reply, before `text`
        text = text_field(body, "text", required=template is None)
        number = request.path_params["number"]
        return JSONResponse(await api.run(reply, runtime, who, number, text, template),
                            status_code=201)

    async def post_action(request: Request, who: Principal) -> Response:
        action, comment, value = action_request(await read_object(request))
        number = request.path_params["number"]
        return JSONResponse(await api.run(act, runtime, who, number, action, comment, value))

    async def get_preview(request: Request, who: Principal) -> Response:
        kind, value = preview_query(request.query_params)
        found = await api.run(preview, runtime, who, request.path_params["receipt"],
                              kind, value)
        return JSONResponse(found)

    async def get_attachment(request: Request, who: Principal) -> Response:
        found = await api.run(attachment_of, runtime, who, request.path_params["number"],
                              request.path_params["attachment"])
        if found.data is None:
            return error_response(410, "not_kept", f"{found.filename!r} was too large to "
                                  "keep when the mail came: only its name and size are stored")
        return file_response(found, found.data)

    async def openapi(request: Request) -> Response:
        return JSONResponse(api_docs.document())

    table: list[tuple[str, str, Handler]] = [
        ("POST", "/orders", post_orders),
        ("GET", "/orders/{receipt}/refund-preview", get_preview),
        ("GET", "/tickets", get_tickets),
        ("POST", "/tickets", post_tickets),
        ("GET", "/tickets/{number:int}", get_ticket),
        ("POST", "/tickets/{number:int}/replies", post_reply),
        ("POST", "/tickets/{number:int}/actions", post_action),
        ("GET", "/tickets/{number:int}/attachments/{attachment:int}", get_attachment),
    ]
    table += api_texts.handlers(runtime, api.run)
    inner = [Route(path, _guarded(api, handler), methods=[method])
             for method, path, handler in table]
    inner.append(Route("/openapi.json", openapi, methods=["GET"]))
    return [Mount(PREFIX, routes=inner)]

