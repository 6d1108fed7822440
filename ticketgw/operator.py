"""The operator's reading tools: `mail list`, `outbox list`, `address show|unsuppress`,
`vendor list|show`, `apikey list|revoke` and the filtered `ticket list`; and `vendor link`,
which mails a vendor a sign-in link to its workplace and prints it.

Each prints a table whose first line names the columns (`--json`: the rows as objects).
Commands that only read never create a database or a key (see `commands.read_runtime`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from gateway.domain.clock import format_instant
from gateway.domain.facts import Role
from gateway.domain.links import Links
from gateway.domain.redaction import redact
from gateway.services import apikeys, listings, signin
from gateway.services.context import Actor
from gateway.services.vendors import find_vendor
from ticketgw.commands import read_runtime, runtime_for
from ticketgw.output import emit

Columns = Sequence[tuple[str, str, int]]  # (heading, key, width; 0 = the rest of the line)


def table(items: list[dict[str, Any]], columns: Columns, empty: str) -> str:
    """A header line naming the columns, then one line an item."""
    if not items:
        return empty

    def line(cells: Sequence[str]) -> str:
        parts = [cell if width == 0 else cell.ljust(width)
                 for cell, (_, _, width) in zip(cells, columns, strict=True)]
        return " ".join(parts).rstrip()

    def cell(item: dict[str, Any], key: str) -> str:
        value = item.get(key)
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if key == "ticket" or key == "number":
            return f"#{value}"
        return str(value).replace("\n", " ")

    rows = [line([heading for heading, _, _ in columns])]
    rows += [line([cell(item, key) for _, key, _ in columns]) for item in items]
    return "\n".join(rows)


TICKET_COLUMNS: Columns = (("NUMBER", "number", 7), ("TYPE", "type", 13),
                           ("STATUS", "status", 6), ("RECEIPT", "receipt", 12),
                           ("VENDOR", "vendor", 12), ("ESCALATED", "escalated", 9),
                           ("CREATED", "created_at", 20), ("PROCESS_AT", "process_at", 0))
MAIL_COLUMNS: Columns = (("RECEIVED", "received_at", 20), ("DECISION", "decision", 8),
                         ("TICKET", "ticket", 7), ("SENDER", "sender", 28),
                         ("RECIPIENT", "recipient", 24), ("REASON", "reason", 0))
OUTBOX_COLUMNS: Columns = (("ID", "id", 7), ("CREATED", "created_at", 20),
                           ("STATE", "state", 8), ("TICKET", "ticket", 7),
                           ("EVENT", "event", 18), ("TO", "to", 28), ("REASON", "reason", 0))
VENDOR_COLUMNS: Columns = (("NICKNAME", "nickname", 14), ("EMAIL", "email", 28),
                           ("TIMEZONE", "timezone", 18), ("LOCALE", "locale", 6),
                           ("MAY_RESPOND", "may_respond", 11), ("DISPUTES", "dispute_count", 8),
                           ("OPEN", "open_tickets", 0))
KEY_COLUMNS: Columns = (("ID", "id", 5), ("PREFIX", "prefix", 12), ("VENDOR", "vendor", 14),
                        ("STAFF", "staff", 5), ("CREATED", "created_at", 20),
                        ("REVOKED", "revoked_at", 0))


def _details(data: dict[str, Any]) -> str:
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in data.items())


def ticket_list(args: argparse.Namespace) -> None:
    wanted = listings.TicketFilter(
        open_only=args.open, vendor=args.vendor, type=args.type, status=args.status,
        escalated=args.escalated, receipt=args.receipt, since=args.since, until=args.until)
    with read_runtime(args).sessions() as session:
        items = listings.list_tickets(session, wanted)
    emit(args, items, lambda: table(items, TICKET_COLUMNS, "no tickets"))


def mail_list(args: argparse.Namespace) -> None:
    wanted = listings.MailFilter(decision=args.decision, sender=args.sender,
                                 ticket=args.ticket, since=args.since, limit=args.limit)
    with read_runtime(args).sessions() as session:
        items = redact(listings.list_inbound(session, wanted))  # reply+TOKEN@ recipients
    emit(args, items, lambda: table(items, MAIL_COLUMNS, "no inbound mail"))


def outbox_list(args: argparse.Namespace) -> None:
    wanted = listings.OutboxFilter(state=args.state, to=args.to, ticket=args.ticket,
                                   limit=args.limit)
    with read_runtime(args).sessions() as session:
        items = redact(listings.list_outbox(session, wanted))  # errors may quote addresses
    emit(args, items, lambda: table(items, OUTBOX_COLUMNS, "no outbound mail"))


def address(args: argparse.Namespace) -> None:
    if args.action == "show":
        with read_runtime(args).sessions() as session:
            view = listings.address_view(session, args.address)
        emit(args, view, lambda: _details(view))
        return
    runtime = runtime_for(args)
    with runtime.sessions.begin() as session:
        view = listings.unsuppress(session, runtime.context(), Actor(Role.STAFF, source="cli"),
                                   args.address)
    emit(args, view, lambda: f"{view['address']}: mail is sent to it again")


def vendor_list(args: argparse.Namespace) -> None:
    with read_runtime(args).sessions() as session:
        items = listings.list_vendors(session)
    emit(args, items, lambda: table(items, VENDOR_COLUMNS, "no vendors"))


def vendor_show(args: argparse.Namespace) -> None:
    with read_runtime(args).sessions() as session:
        view = listings.vendor_view(session, find_vendor(session, args.nickname))
    emit(args, view, lambda: _details(view))


def vendor_link(args: argparse.Namespace) -> None:
    runtime = runtime_for(args)
    links = Links(runtime.tokens, runtime.settings.base_url, runtime.settings.mail_domain)
    with runtime.sessions.begin() as session:
        issued = signin.vendor_link(session, runtime.context(), args.nickname)
        mailed = sorted(find_vendor(session, args.nickname).addresses)
    view = {"vendor": issued.nickname, "mailed_to": mailed,
            "link": links.signin_page(issued.signin_id, issued.party, issued.expires_at),
            "expires_at": format_instant(issued.expires_at)}
    emit(args, view, lambda: f"{view['link']}\nmailed to {', '.join(mailed)}; it works once, "
                             f"until {view['expires_at']}")


def apikey_list(args: argparse.Namespace) -> None:
    with read_runtime(args).sessions() as session:
        items = listings.list_keys(session)
    emit(args, items, lambda: table(items, KEY_COLUMNS, "no API keys"))


def apikey_revoke(args: argparse.Namespace) -> None:
    runtime = runtime_for(args)
    with runtime.sessions.begin() as session:
        row = apikeys.revoke_key(session, runtime.context(), args.prefix)
        view = {"id": row.id, "prefix": row.prefix, "revoked_at": row.revoked_at.isoformat()
                if row.revoked_at else None}
    emit(args, view, lambda: f"API key {view['prefix']} revoked; requests with it answer 401")


SUBCOMMANDS: dict[tuple[str, str], Callable[[argparse.Namespace], None]] = {
    ("ticket", "list"): ticket_list,
    ("mail", "list"): mail_list,
    ("outbox", "list"): outbox_list,
    ("address", "show"): address,
    ("address", "unsuppress"): address,
    ("vendor", "list"): vendor_list,
    ("vendor", "show"): vendor_show,
    ("vendor", "link"): vendor_link,
    ("apikey", "list"): apikey_list,
    ("apikey", "revoke"): apikey_revoke,
}
