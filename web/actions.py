"""One-click pages from the mails (`/a/confirm|dispute|to-refund/TOKEN`): GET shows, POST acts.

Mail scanners open every link in a mail, so a GET only says what will happen and offers one
button; the change is made by the POST that button sends, with its CSRF field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.domain import actions, rules
from gateway.domain.errors import Conflict, NotFound, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.links import ACTION_PATHS
from gateway.domain.tokens import Claim
from gateway.services import journal, tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.snapshots import order_facts, ticket_facts, vendor_facts
from store.models import Ticket
from web.pages import Web, checked_form

PURPOSE_OF_PATH = {path: purpose for purpose, path in ACTION_PATHS.items()}
_BUTTON = {"confirm": "Confirm Request", "dispute": "I Did Not Agree",
           "to_refund": "Change to Refund"}
_TYPE = {"refund": "refund", "cancellation": "cancellation", "tech_support": "tech-support"}


@dataclass(frozen=True)
class Outcome:
    """What a one-click page says: before (with its button) or after acting."""

    title: str
    message: str
    number: int
    when: datetime | None = None
    zone: str = "UTC"
    button: str | None = None


def _due(deadline: rules.Deadline | None) -> datetime | None:
    return deadline.due_at if deadline is not None else None


def _check(runtime: Runtime, session: Session, purpose: str, ticket: Ticket, party: Role,
           now: datetime) -> None:
    """Raise what the rules say when the action cannot be taken now."""
    if purpose == "confirm":
        if ticket.status != "open":
            raise Conflict(f"ticket #{ticket.number} is closed; there is nothing to confirm")
        tickets.check_confirmable(ticket)
        return
    action = Action.DISPUTE if purpose == "dispute" else Action.REFUND
    order = ticket.order
    actions.check_action(runtime.policy, action, party, ticket_facts(session, ticket),
                       order_facts(order), vendor_facts(order.vendor), now)


def preview(runtime: Runtime, purpose: str, claim: Claim, now: datetime) -> Outcome:
    with runtime.sessions() as session:
        ticket = tickets.find_ticket(session, claim.subject_id)
        order, zone, number = ticket.order, ticket.order.vendor.timezone, ticket.number
        kind = _TYPE[ticket.type]
        if purpose == "confirm" and not ticket.awaiting_confirmation:
            return Outcome("Already confirmed",
                           f"The {kind} request on ticket #{number} is already confirmed; "
                           "nothing more is needed.", number, ticket.process_at, zone)
        _check(runtime, session, purpose, ticket, claim.party, now)
        if purpose == "confirm":
            due = _due(rules.open_deadline(runtime.policy, TicketType(ticket.type),
                                           Role(ticket.created_by), order_facts(order),
                                           vendor_facts(order.vendor), now))
            return Outcome(
                "Confirm your request",
                f"We received a {kind} request for order {order.receipt} by mail. Confirm "
                "that you sent it; until you do, nothing happens. Once confirmed, it is "
                "processed at the time below unless the vendor answers first.",
                number, due, zone, _BUTTON[purpose])
        if purpose == "dispute":
            restored = _TYPE[ticket.restore_type or ticket.type]
            due = rules.quick_deadline(runtime.policy, now).due_at
            return Outcome(
                "Did you agree?",
                f"The vendor closed or changed your {restored} request on ticket #{number}. "
                "If you did not agree, press the button: the request comes back and is "
                "processed at the time below.", number, due, zone, _BUTTON[purpose])
        due = _due(rules.open_deadline(runtime.policy, TicketType.REFUND, claim.party,
                                       order_facts(order), vendor_facts(order.vendor), now))
        return Outcome(
            "Turn this ticket into a refund request",
            f"Ticket #{number} is a tech-support ticket for order {order.receipt}. Press the "
            "button to ask for a refund instead; it is processed at the time below unless the "
            "vendor answers first.", number, due, zone, _BUTTON[purpose])


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
            title = "Request confirmed" if was_waiting else "Already confirmed"
            message = f"Thank you. Your request on ticket #{ticket.number} is confirmed."
        elif purpose == "dispute":
            ticket = tickets.act(session, ctx, ticket.number, Action.DISPUTE, actor)
            title = "Your request is back"
            message = (f"Your disagreement is recorded and the {_TYPE[ticket.type]} request on "
                       f"ticket #{ticket.number} is open again.")
        else:
            ticket = tickets.act(session, ctx, ticket.number, Action.REFUND, actor)
            title = "Refund requested"
            message = f"Ticket #{ticket.number} is now a refund request."
        if ticket.process_at is not None:
            message += " It will be processed at the time below unless it is settled first."
        return Outcome(title, message, ticket.number, ticket.process_at,
                       ticket.order.vendor.timezone)


def routes(web: Web) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        purpose = PURPOSE_OF_PATH.get(request.path_params["kind"])
        if purpose is None:
            return web.problem(404, "Page not found", "There is no such page. Use the link "
                               "in your mail, or reply to the mail instead.")
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
            return web.problem(404, "No such ticket", "This ticket does not exist any more.")
        except UserError as exc:
            return web.refused(exc.message, ticket_page)
        return web.page(request, "action.html.j2",
                        {"outcome": outcome, "ticket_page": ticket_page})

    return [Route("/a/{kind}/{token}", endpoint, methods=["GET", "POST"])]
