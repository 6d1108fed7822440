"""One-click pages from the mails (`/a/confirm|dispute|to-refund/TOKEN`): GET shows, POST acts.

Mail scanners open every link in a mail, so a GET only says what will happen and offers one
button; the change is made by the POST that button sends, with its CSRF field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.domain import actions, rules
from gateway.domain.errors import Conflict, NotFound, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.links import ACTION_PATHS
from gateway.domain.texts import Text, _
from gateway.domain.tokens import Claim
from gateway.services import journal, tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.snapshots import order_facts, ticket_facts, vendor_facts
from store.models import Ticket
from web.pages import Web, checked_form

PURPOSE_OF_PATH = {path: purpose for purpose, path in ACTION_PATHS.items()}
_BUTTON = {"confirm": _("Confirm Request"), "dispute": _("I Did Not Agree"),
           "to_refund": _("Change to Refund")}


@dataclass(frozen=True)
class Outcome:
    """What a one-click page says: before (with its button) or after acting."""

    title: Text
    message: Text
    number: int
    when: datetime | None = None
    zone: str = "UTC"
    button: Text | None = None
    locale: str | None = None  # the party's own language
    note: Text | None = None  # a sentence of its own under the message


def _due(deadline: rules.Deadline | None) -> datetime | None:
    return deadline.due_at if deadline is not None else None


def _check(runtime: Runtime, session: Session, purpose: str, ticket: Ticket, party: Role,
           now: datetime) -> None:
    """Raise what the rules say when the action cannot be taken now."""
    if purpose == "confirm":
        if ticket.status != "open":
            raise Conflict(_("ticket #%(n)s is closed; there is nothing to confirm",
                             n=ticket.number))
        tickets.check_confirmable(ticket)
        return
    action = Action.DISPUTE if purpose == "dispute" else Action.REFUND
    order = ticket.order
    actions.check_action(runtime.policy, action, party, ticket_facts(session, ticket),
                       order_facts(order), vendor_facts(order.vendor), now)


def _party_locale(ticket: Ticket, party: Role) -> str | None:
    if party is Role.CUSTOMER:
        return ticket.order.locale
    return ticket.order.vendor.locale if party is Role.VENDOR else None


def viewer_locale(runtime: Runtime, claim: Claim) -> str | None:
    """The language of the link's party, for a page that says why nothing was done."""
    with runtime.sessions() as session:
        try:
            return _party_locale(tickets.find_ticket(session, claim.subject_id), claim.party)
        except NotFound:
            return None


def preview(runtime: Runtime, purpose: str, claim: Claim, now: datetime) -> Outcome:
    with runtime.sessions() as session:
        ticket = tickets.find_ticket(session, claim.subject_id)
        outcome = _preview(runtime, session, purpose, ticket, claim, now)
        return replace(outcome, locale=_party_locale(ticket, claim.party))


def _preview(runtime: Runtime, session: Session, purpose: str, ticket: Ticket, claim: Claim,
             now: datetime) -> Outcome:
    order, zone, number = ticket.order, ticket.order.vendor.timezone, ticket.number
    if purpose == "confirm" and not ticket.awaiting_confirmation:
        return Outcome(_("Already confirmed"), _already_confirmed(ticket.type, number),
                       number, ticket.process_at, zone)
    _check(runtime, session, purpose, ticket, claim.party, now)
    if purpose == "confirm":
        due = _due(rules.open_deadline(runtime.policy, TicketType(ticket.type),
                                       Role(ticket.created_by), order_facts(order),
                                       vendor_facts(order.vendor), now))
        return Outcome(_("Confirm your request"), _received(ticket.type, order.receipt),
                       number, due, zone, _BUTTON[purpose])
    if purpose == "dispute":
        due = rules.quick_deadline(runtime.policy, now).due_at
        return Outcome(_("Did you agree?"),
                       _did_you_agree(ticket.restore_type or ticket.type, number),
                       number, due, zone, _BUTTON[purpose])
    due = _due(rules.open_deadline(runtime.policy, TicketType.REFUND, claim.party,
                                   order_facts(order), vendor_facts(order.vendor), now))
    return Outcome(
        _("Turn this ticket into a refund request"),
        _("Ticket #%(n)s is a tech-support ticket for order %(receipt)s. Press the button "
          "to ask for a refund instead; it is processed at the time below unless the "
          "vendor answers first.", n=number, receipt=order.receipt),
        number, due, zone, _BUTTON[purpose])


def perform(runtime: Runtime, purpose: str, claim: Claim) -> Outcome:
    with runtime.sessions.begin() as session:
        ticket = tickets.find_ticket(session, claim.subject_id, lock=True)
        email = journal.party_address(ticket, claim.party, runtime.settings.staff_email)[0]
        actor = Actor(claim.party, email, source="web")
        ctx = runtime.context()
        if purpose == "confirm":
            was_waiting = ticket.awaiting_confirmation
            if was_waiting:
                _check(runtime, session, purpose, ticket, claim.party, ctx.now)
            ticket = tickets.confirm(session, ctx, ticket, actor)
            title = _("Request confirmed") if was_waiting else _("Already confirmed")
            message = _("Thank you. Your request on ticket #%(n)s is confirmed.",
                        n=ticket.number)
        elif purpose == "dispute":
            ticket = tickets.act(session, ctx, ticket.number, Action.DISPUTE, actor)
            title = _("Your request is back")
            message = _open_again(ticket.type, ticket.number)
        else:
            ticket = tickets.act(session, ctx, ticket.number, Action.REFUND, actor)
            title = _("Refund requested")
            message = _("Ticket #%(n)s is now a refund request.", n=ticket.number)
        later = None if ticket.process_at is None else _(
            "The request will be processed at the time below unless it is settled first.")
        return Outcome(title, message, ticket.number, ticket.process_at,
                       ticket.order.vendor.timezone,
                       locale=_party_locale(ticket, claim.party), note=later)


# One whole sentence per ticket type, so each language says the request its own way.
def _already_confirmed(ticket_type: str, n: int) -> Text:
    if ticket_type == "refund":
        return _("The refund request on ticket #%(n)s is already confirmed; nothing more is "
                 "needed.", n=n)
    if ticket_type == "cancellation":
        return _("The cancellation request on ticket #%(n)s is already confirmed; nothing "
                 "more is needed.", n=n)
    return _("The tech-support request on ticket #%(n)s is already confirmed; nothing more "
             "is needed.", n=n)


def _received(ticket_type: str, receipt: str) -> Text:
    if ticket_type == "refund":
        return _("We received a refund request for order %(receipt)s by mail. Confirm that "
                 "you sent it; until you do, nothing happens. Once confirmed, it is processed "
                 "at the time below unless the vendor answers first.", receipt=receipt)
    if ticket_type == "cancellation":
        return _("We received a cancellation request for order %(receipt)s by mail. Confirm "
                 "that you sent it; until you do, nothing happens. Once confirmed, it is "
                 "processed at the time below unless the vendor answers first.",
                 receipt=receipt)
    return _("We received a tech-support request for order %(receipt)s by mail. Confirm "
             "that you sent it; until you do, nothing happens.", receipt=receipt)


def _did_you_agree(ticket_type: str, n: int) -> Text:
    if ticket_type == "cancellation":
        return _("The vendor closed or changed your cancellation request on ticket #%(n)s. "
                 "If you did not agree, press the button: the request comes back and is "
                 "processed at the time below.", n=n)
    return _("The vendor closed or changed your refund request on ticket #%(n)s. If you did "
             "not agree, press the button: the request comes back and is processed at the "
             "time below.", n=n)


def _open_again(ticket_type: str, n: int) -> Text:
    if ticket_type == "cancellation":
        return _("Your disagreement is recorded and the cancellation request on ticket #%(n)s "
                 "is open again.", n=n)
    return _("Your disagreement is recorded and the refund request on ticket #%(n)s is open "
             "again.", n=n)


def routes(web: Web) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        purpose = PURPOSE_OF_PATH.get(request.path_params["kind"])
        if purpose is None:
            return web.problem(404, _("Page not found"), _("There is no such page. Use the "
                               "link in your mail, or reply to the mail instead."))
        claim = web.claim(request.path_params["token"], purpose)
        if isinstance(claim, Response):
            return claim
        if request.method == "POST":
            form = await checked_form(web, request)
            if isinstance(form, Response):
                return form
        ticket_page = web.sign_ticket_page(claim.subject_id, claim)
        try:
            if request.method == "POST":
                outcome = await web.run(perform, web.runtime, purpose, claim)
            else:
                outcome = await web.run(preview, web.runtime, purpose, claim, web.now())
        except NotFound:
            return web.problem(404, _("No such ticket"),
                               _("This ticket does not exist any more."))
        except UserError as exc:
            locale = await web.run(viewer_locale, web.runtime, claim)
            return web.refused_for(exc, ticket_page, claim, locale=locale)
        return web.page(request, "action.html.j2",
                        {"outcome": outcome, "ticket_page": ticket_page}, locale=outcome.locale)

    return [Route("/a/{kind}/{token}", endpoint, methods=["GET", "POST"])]
