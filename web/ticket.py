"""The ticket page of one party (`/t/TOKEN`): details, history, and that party's actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.domain import actions
from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.texts import _
from gateway.domain.tokens import Claim
from gateway.services import journal, tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.snapshots import order_facts, ticket_facts, vendor_facts
from store.models import Ticket
from web import file_links, reply_form
from web.pages import Web, checked_form

KIND_FORM = "kind"  # the one form behind `Change Refund Type`
_KIND_ACTIONS = {
    "full": Action.FULL,
    "partial": Action.PARTIAL,
    "percent": Action.PERCENT,
    "quantity": Action.QUANTITY,
}
_KIND_LABELS = {
    "full": _("Full refund"),
    "partial": _("Partial: an amount"),
    "percent": _("Partial: a percentage (1–80)"),
    "quantity": _("Partial: a number of items"),
}
# (form action, label), in page order. The labels are the seeds' own (CONTRACT "HTTP").
_VENDOR_BUTTONS: tuple[tuple[str, str], ...] = (
    ("reply", _("Reply")),
    ("close", _("Close Ticket")),
    ("techsupport", _("Change to Tech Support")),
    ("refund", _("Please Refund")),
    (KIND_FORM, _("Change Refund Type")),
    ("escalate", _("Escalate")),
    ("returned", _("Acknowledge Return")),
)
_CUSTOMER_BUTTONS: tuple[tuple[str, str], ...] = (
    ("reply", _("Reply")),
    ("close", _("Close Ticket")),
    ("techsupport", _("Change to Tech Support")),
    ("refund", _("Change to Refund")),
    ("dispute", _("I Did Not Agree")),
    ("agree", _("I Agree")),
)
_STAFF_BUTTONS = (*_VENDOR_BUTTONS, ("reopen", _("Reopen Ticket")))
DONE = {
    "reply": _("Your reply was added and mailed to the other party."),
    "close": _("The ticket is closed."),
    "techsupport": _("The ticket is now a tech-support ticket."),
    "refund": _("Done: the refund is on its way as described below."),
    KIND_FORM: _("The refund type was changed."),
    "escalate": _("The ticket was escalated to the marketplace's staff."),
    "returned": _("The return is acknowledged; the refund runs now."),
    "dispute": _("Your disagreement is recorded; the request will be processed."),
    "agree": _("Thank you; your agreement is recorded."),
    "reopen": _("The ticket is open again."),
}


@dataclass(frozen=True)
class Button:
    action: str
    label: str
    comment_required: bool = False
    kinds: tuple[tuple[str, str], ...] = ()


def buttons(party: Role, ticket_type: TicketType, allowed: frozenset[Action]) -> list[Button]:
    """The forms the page offers: exactly the actions `party` may take now."""
    table = {Role.VENDOR: _VENDOR_BUTTONS, Role.CUSTOMER: _CUSTOMER_BUTTONS,
             Role.STAFF: _STAFF_BUTTONS}.get(party, ())
    shown = []
    for action, label in table:
        if action == KIND_FORM:
            kinds = tuple((k, _KIND_LABELS[k]) for k, a in _KIND_ACTIONS.items() if a in allowed)
            if kinds:
                shown.append(Button(action, label, kinds=kinds))
            continue
        if Action(action) not in allowed:
            continue
        if party is Role.STAFF and action == "refund" and ticket_type is TicketType.TECH_SUPPORT:
            label = _("Change to Refund")
        shown.append(Button(action, label, comment_required=action in ("reply", "escalate")))
    return shown


def _party_email(ticket: Ticket, party: Role, runtime: Runtime) -> str:
    return journal.party_address(ticket, party, runtime.settings.staff_email)[0]


def party_locale(ticket: Ticket, party: Role) -> str | None:
    """The language the party chose: the order's for the customer, the vendor's own for the
    vendor; staff read the page in their browser's."""
    if party is Role.CUSTOMER:
        return ticket.order.locale
    if party is Role.VENDOR:
        return ticket.order.vendor.locale
    return None


def viewer_locale(runtime: Runtime, claim: Claim) -> str | None:
    """`party_locale` of the link's ticket, for a page that did not load it (None: gone)."""
    with runtime.sessions() as session:
        try:
            return party_locale(tickets.find_ticket(session, claim.subject_id), claim.party)
        except NotFound:
            return None


def load_page(runtime: Runtime, claim: Claim, now: datetime) -> dict[str, Any]:
    """Everything the page shows, read in one transaction that changes nothing."""
    with runtime.sessions() as session:
        ticket = tickets.find_ticket(session, claim.subject_id)
        order = ticket.order
        allowed = actions.allowed_actions(
            runtime.policy, claim.party, ticket_facts(session, ticket), order_facts(order),
            vendor_facts(order.vendor), now)
        return {
            "ticket": ticket,
            "order": order,
            "vendor": order.vendor,
            "product": order.product,
            "zone": order.vendor.timezone,
            "party": claim.party.value,
            "messages": list(ticket.messages),
            "events": list(ticket.events),
            "buttons": buttons(claim.party, TicketType(ticket.type), allowed),
            "expires_at": claim.expires_at,
            "party_locale": party_locale(ticket, claim.party),
            **reply_form.choices(runtime, session, ticket, claim.party, allowed),
            **file_links.page_files(runtime, session, claim, now, ticket.messages),
        }


def apply(runtime: Runtime, claim: Claim, form: dict[str, str]) -> int:
    """Apply the posted action as the link's party; returns the ticket it landed on."""
    name = form.get("action", "")
    comment = form.get("comment", "").strip() or None
    value: str | None = None
    if name == KIND_FORM:
        kind = form.get("kind", "")
        if kind not in _KIND_ACTIONS:
            raise UserError(_("choose a refund type: full, an amount, a percentage or a "
                              "quantity"))
        action = _KIND_ACTIONS[kind]
        value = form.get("value", "").strip() or None
    else:
        try:
            action = Action(name)
        except ValueError:
            raise UserError(_("the page sent an unknown action %(action)r; open it again",
                              action=name)) from None
    action, value, template = reply_form.read(form, action, value)
    if action is Action.ESCALATE and not comment:
        raise UserError(_("an escalation needs an explanation for the staff; write one and "
                          "press Escalate again"))
    with runtime.sessions.begin() as session:
        ticket = tickets.find_ticket(session, claim.subject_id)
        actor = Actor(claim.party, _party_email(ticket, claim.party, runtime), source="web")
        landed = tickets.act(session, runtime.context(), ticket.number, action, actor,
                             comment=comment, value=value, template=template)
        return landed.number


def routes(web: Web) -> list[Route]:
    async def show(request: Request) -> Response:
        claim = web.claim(request.path_params["token"], "ticket")
        if isinstance(claim, Response):
            return claim
        try:
            context = await web.run(load_page, web.runtime, claim, web.now())
        except NotFound:
            return web.problem(404, _("No such ticket"),
                               _("This ticket does not exist any more. Reply to the mail "
                                 "instead."))
        done = DONE.get(request.query_params.get("done", ""))
        return web.page(request, "ticket.html.j2", {**context, "done": done},
                        locale=context["party_locale"])

    async def post(request: Request) -> Response:
        path = request.url.path
        claim = web.claim(request.path_params["token"], "ticket")
        if isinstance(claim, Response):
            return claim
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        try:
            landed = await web.run(apply, web.runtime, claim, form)
        except NotFound as exc:
            return web.problem(404, _("No such ticket"), exc.message)
        except UserError as exc:
            locale = await web.run(viewer_locale, web.runtime, claim)
            return web.refused_for(exc, path, claim, locale=locale)
        target = path if landed == claim.subject_id else web.sign_ticket_page(landed, claim)
        action = form.get("action", "")
        return RedirectResponse(f"{target}?done={action}" if action in DONE else target, 303)

    return [Route("/t/{token}", show, methods=["GET"]),
            Route("/t/{token}", post, methods=["POST"])]
