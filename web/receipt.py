"""The customer's receipt page (`/r/TOKEN`): the order, its invoice, and new requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.domain.addresses import normalise_email
from gateway.domain.errors import Conflict, NotFound, UserError
from gateway.domain.facts import Role, TicketType
from gateway.domain.links import link_expiry
from gateway.domain.rules import reason_codes
from gateway.domain.texts import _
from gateway.domain.tokens import Claim
from gateway.services import journal, tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import Order, OutboxMail
from web import order_tickets
from web.pages import Web, checked_form

RESEND_PAUSE = timedelta(minutes=10)  # one receipt mail per order in this time, at most
_REQUESTS = (
    ("tech_support", _("Request Tech Support")),
    ("refund", _("Request a Refund")),
    ("cancellation", _("Request a Cancellation")),
)
_DONE = {
    "resent": _("Your receipt is being mailed to you again."),
    "email": _("Your email address was changed; mail about this order goes there from now "
               "on."),
}


def _order(session: Session, claim: Claim) -> Order:
    order = session.get(Order, claim.subject_id)
    if order is None:
        raise NotFound(_("this order does not exist any more"))
    return order


def safe_download(url: str | None) -> str | None:
    """The vendor's download address, only when it is a plain web address."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def load(runtime: Runtime, claim: Claim) -> dict[str, Any]:
    with runtime.sessions() as session:
        order = _order(session, claim)
        active = order.product.recurring and order.subscription == "active"
        return {
            "order": order,
            "product": order.product,
            "vendor": order.vendor,
            "payments": list(order.payments),
            "zone": order.vendor.timezone,
            "download": safe_download(order.shop_url)
            if runtime.policy.shop_url_is_download else None,
            "party_locale": order.locale,
            "tickets": order_tickets.listed(session, order),
            "requests": [(t, label, reason_codes(runtime.policy, TicketType(t), Role.CUSTOMER))
                         for t, label in _REQUESTS if (t != "cancellation" or active)
                         and (t != "refund" or order_tickets.refundable(order))],
        }


def _resend(runtime: Runtime, claim: Claim) -> None:
    with runtime.sessions.begin() as session:
        order = _order(session, claim)
        ctx = runtime.context()
        recent = session.execute(
            select(func.count()).select_from(OutboxMail).where(
                OutboxMail.order_id == order.id, OutboxMail.event == "receipt",
                OutboxMail.created_at > ctx.recorded_at - RESEND_PAUSE)
        ).scalar_one()
        if recent:
            raise Conflict(_("your receipt was mailed a few minutes ago; check your inbox and "
                             "spam folder, and try again in ten minutes if it has not arrived"))
        journal.notify_order(session, ctx, order, "receipt", Role.CUSTOMER)


def _change_email(runtime: Runtime, claim: Claim, raw: str) -> None:
    email = normalise_email(raw, _("the address"))
    with runtime.sessions.begin() as session:
        order = _order(session, claim)
        if order.customer_email == email:
            return
        ctx = runtime.context()
        old, order.customer_email = order.customer_email, email
        order.updated_at = ctx.now
        journal.record(session, ctx, Actor(Role.CUSTOMER, old, source="web"), "customer_email",
                       vendor_id=order.vendor_id, old=old, new=email,
                       note=f"receipt {order.receipt}")


def _open(runtime: Runtime, claim: Claim, form: dict[str, str]) -> int:
    try:
        ticket_type = TicketType(form.get("type", ""))
    except ValueError:
        raise UserError(_("choose tech support, a refund or a cancellation")) from None
    with runtime.sessions.begin() as session:
        order = _order(session, claim)
        actor = Actor(Role.CUSTOMER, order.customer_email, source="web")
        ticket = tickets.open_ticket(session, runtime.context(), order.receipt, ticket_type,
                                     actor, reason=form.get("reason") or None,
                                     comment=form.get("comment", "").strip() or None)
        return ticket.number


def customer_locale(runtime: Runtime, claim: Claim) -> str | None:
    """The language of the order's customer, for a page that did not load the order."""
    with runtime.sessions() as session:
        order = session.get(Order, claim.subject_id)
        return order.locale if order is not None else None


def routes(web: Web) -> list[Route]:
    def claim_of(request: Request) -> Claim | Response:
        return web.claim(request.path_params["token"], "receipt")

    def customer_link(claim: Claim, number: int) -> str:
        """A freshly signed customer link to one of the order's tickets."""
        expires = claim.expires_at or link_expiry(web.now(), web.runtime.settings.link_ttl_days)
        return "/t/" + web.runtime.tokens.sign("ticket", number, Role.CUSTOMER, expires)

    async def loaded(request: Request) -> dict[str, Any] | Response:
        """The order's page values, or the page that says why there are none."""
        claim = claim_of(request)
        if isinstance(claim, Response):
            return claim
        try:
            return await web.run(load, web.runtime, claim)
        except NotFound as exc:
            return web.problem(404, _("No such order"), exc.message)

    async def show(request: Request) -> Response:
        context = await loaded(request)
        if isinstance(context, Response):
            return context
        done = _DONE.get(request.query_params.get("done", ""))
        claim = claim_of(request)
        assert not isinstance(claim, Response)  # `loaded` checked it
        links = {number: customer_link(claim, number) for number, _t, _s in context["tickets"]}
        return web.page(request, "receipt.html.j2", {**context, "done": done, "links": links},
                        locale=context["party_locale"])

    async def printable(request: Request) -> Response:
        context = await loaded(request)
        if isinstance(context, Response):
            return context
        page = request.url.path.rsplit("/", 1)[-1]
        template = "invoice.html.j2" if page == "invoice" else "download.html.j2"
        receipt_page = "/r/" + str(request.path_params["token"])
        return web.page(request, template, {**context, "receipt_page": receipt_page},
                        locale=context["party_locale"])

    async def post(request: Request) -> Response:
        path = request.url.path
        claim = claim_of(request)
        if isinstance(claim, Response):
            return claim
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        action = form.get("action", "")
        try:
            if action == "resend":
                await web.run(_resend, web.runtime, claim)
                return RedirectResponse(f"{path}?done=resent", 303)
            if action == "email":
                await web.run(_change_email, web.runtime, claim, form.get("email", ""))
                return RedirectResponse(f"{path}?done=email", 303)
            if action == "open":
                number = await web.run(_open, web.runtime, claim, form)
                expires = claim.expires_at or link_expiry(
                    web.now(), web.runtime.settings.link_ttl_days)
                token = web.runtime.tokens.sign("ticket", number, Role.CUSTOMER, expires)
                return RedirectResponse(f"/t/{token}", 303)
        except NotFound as exc:
            return web.problem(404, _("No such order"), exc.message)
        except UserError as exc:
            locale = await web.run(customer_locale, web.runtime, claim)
            return web.refused_for(exc, path, claim, locale=locale)
        return web.refused(_("the page sent an unknown action %(action)r; open it again",
                             action=action), path, status=400)

    return [
        Route("/r/{token}", show, methods=["GET"]),
        Route("/r/{token}", post, methods=["POST"]),
        Route("/r/{token}/invoice", printable, methods=["GET"]),
        Route("/r/{token}/download", printable, methods=["GET"]),
    ]

