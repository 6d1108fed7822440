"""The workplace (`/w/...`): a signed-in vendor's tickets and orders, or every vendor's for
staff; each ticket is worked on the same page a party's mail link opens.

A vendor reads only its own: any other ticket or order answers 404, exactly as one that does
not exist. Every POST carries its CSRF field (`web.pages.Csrf`). Standing, settings, the
vendor list and the review queue are in `web.workplace_account`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import TicketType
from gateway.domain.rules import reason_codes
from gateway.domain.texts import _
from gateway.domain.tokens import Claim
from gateway.services import vendors, workplace, workplace_actions
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.signin import Who
from web import ticket
from web.pages import Web, checked_form
from web.signin import ask_to_sign_in, who_of

Handler = Callable[[Request, Who], Awaitable[Response]]
_OPENED = "opened"
_REQUESTS = (("tech_support", _("Open a Tech Support Ticket")),
             ("refund", _("Open a Refund Ticket")),
             ("cancellation", _("Open a Cancellation Ticket")))


def signed_in(web: Web, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A workplace endpoint: the signed-in person, or off to the sign-in page."""
    async def endpoint(request: Request) -> Response:
        who = await who_of(web, request)
        if who is None:
            return ask_to_sign_in(web, request)
        try:
            return await handler(request, who)
        except NotFound:
            return web.problem(404, _("Not found"), _("There is no such page in your workplace."),
                               back="/w/tickets", back_label=_("Your tickets"),
                               locale=who.locale)
    return endpoint


def show(web: Web, request: Request, who: Who, template: str, context: dict[str, Any],
         here: str, status: int = 200) -> Response:
    """A workplace page: the navigation (with the sign-out form) above its own content."""
    nav = {"name": who.nickname or "", "staff": who.staff, "here": here,
           "address": who.address, "zone": "UTC" if who.staff else who.zone}
    return web.page(request, template, {**context, "nav": nav}, status, locale=who.locale)


def number_param(request: Request, name: str, default: int = 1) -> int:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 7 else default


def actor_of(who: Who) -> Actor:
    """Who acts, by the address they signed in with (the event log keeps it)."""
    return Actor(who.party, who.address, source="web")


def scope_of(runtime: Runtime, who: Who, nickname: str | None) -> int | None:
    """The vendor a page reads: the signed-in vendor's own; staff's pick, or every vendor."""
    if not who.staff:
        return who.vendor_id
    if not nickname:
        return None
    with runtime.sessions() as session:
        return vendors.find_vendor(session, nickname).id


def _tickets(runtime: Runtime, who: Who, params: dict[str, str], page: int
             ) -> workplace.Page[workplace.TicketLine]:
    search = workplace.TicketSearch(
        vendor_id=scope_of(runtime, who, params.get("vendor")), text=params.get("q", ""),
        status=params.get("status", "open") if params.get("status") in workplace.STATUSES
        else "open",
        type=params.get("type") if params.get("type") in workplace.TYPES else None, page=page)
    with runtime.sessions() as session:
        return workplace.list_tickets(session, search)


def _ticket_page(runtime: Runtime, who: Who, number: int) -> dict[str, Any]:
    with runtime.sessions() as session:
        workplace.find_ticket_in(session, who.vendor_id, number)
    claim = Claim("ticket", number, who.party, None)
    return ticket.load_page(runtime, claim, runtime.clock.now())


def _act(runtime: Runtime, who: Who, number: int, form: dict[str, str]) -> int:
    with runtime.sessions() as session:
        workplace.find_ticket_in(session, who.vendor_id, number)
    return ticket.apply(runtime, Claim("ticket", number, who.party, None), form)


def _orders(runtime: Runtime, who: Who, params: dict[str, str], page: int
            ) -> workplace.Page[workplace.OrderLine]:
    vendor_id = scope_of(runtime, who, params.get("vendor"))
    with runtime.sessions() as session:
        return workplace.list_orders(session, vendor_id, params.get("q", ""), page)


def _order(runtime: Runtime, who: Who, receipt: str) -> dict[str, Any]:
    with runtime.sessions() as session:
        order = workplace.find_order_in(session, who.vendor_id, receipt)
        active = order.product.recurring and order.subscription == "active"
        return {"order": order, "product": order.product, "vendor": order.vendor,
                "zone": order.vendor.timezone,
                "tickets": workplace.order_tickets(session, order.id),
                "requests": [(t, label, reason_codes(runtime.policy, TicketType(t), who.party))
                             for t, label in _REQUESTS if t != "cancellation" or active]}


def _open(runtime: Runtime, who: Who, receipt: str, form: dict[str, str]) -> int:
    actor = actor_of(who)
    with runtime.sessions.begin() as session:
        return workplace_actions.open_from_order(
            session, runtime.context(), who.vendor_id, actor, receipt, form.get("type", ""),
            form.get("reason") or None, form.get("comment", "").strip() or None)


def routes(web: Web) -> list[Route]:
    rt = web.runtime

    async def home(request: Request, who: Who) -> Response:
        return RedirectResponse("/w/tickets", 303)

    async def tickets(request: Request, who: Who) -> Response:
        params = dict(request.query_params)
        found = await web.run(_tickets, rt, who, params, number_param(request, "page"))
        return show(web, request, who, "workplace/tickets.html.j2",
                    {"found": found, "params": params}, "tickets")

    async def one_ticket(request: Request, who: Who) -> Response:
        number = int(request.path_params["number"])
        if request.method == "POST":
            form = await checked_form(web, request)
            if isinstance(form, Response):
                return form
            try:
                landed = await web.run(_act, rt, who, number, form)
            except UserError as exc:
                if isinstance(exc, NotFound):
                    raise
                return web.refused(exc.message, request.url.path, locale=who.locale)
            action = form.get("action", "")
            done = f"?done={action}" if action in ticket.DONE else ""
            return RedirectResponse(f"/w/tickets/{landed}{done}", 303)
        context = await web.run(_ticket_page, rt, who, number)
        done = request.query_params.get("done", "")
        message = _("The ticket is open and both parties were mailed.") if done == _OPENED else (
            ticket.DONE.get(done))
        return show(web, request, who, "ticket.html.j2", {**context, "done": message},
                    "tickets")

    async def orders(request: Request, who: Who) -> Response:
        params = dict(request.query_params)
        found = await web.run(_orders, rt, who, params, number_param(request, "page"))
        return show(web, request, who, "workplace/orders.html.j2",
                    {"found": found, "params": params}, "orders")

    async def one_order(request: Request, who: Who) -> Response:
        receipt = str(request.path_params["receipt"])
        if request.method == "POST":
            form = await checked_form(web, request)
            if isinstance(form, Response):
                return form
            try:
                number = await web.run(_open, rt, who, receipt, form)
            except UserError as exc:
                if isinstance(exc, NotFound):
                    raise
                return web.refused(exc.message, request.url.path, locale=who.locale)
            return RedirectResponse(f"/w/tickets/{number}?done={_OPENED}", 303)
        context = await web.run(_order, rt, who, receipt)
        return show(web, request, who, "workplace/order.html.j2", context, "orders")

    return [
        Route("/w", signed_in(web, home), methods=["GET"]),
        Route("/w/tickets", signed_in(web, tickets), methods=["GET"]),
        Route("/w/tickets/{number:int}", signed_in(web, one_ticket), methods=["GET", "POST"]),
        Route("/w/orders", signed_in(web, orders), methods=["GET"]),
        Route("/w/orders/{receipt}", signed_in(web, one_order), methods=["GET", "POST"]),
    ]

