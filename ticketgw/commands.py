"""What each `ticketgw` command does (the parser and the exit codes are in `cli.py`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.domain import rules
from gateway.domain.clock import format_instant
from gateway.domain.errors import UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.redaction import redact
from gateway.services import apikeys, deadlines, inbox, metrics, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import status_view, ticket_view
from store.db import migrate
from store.models import Order, Ticket, Vendor
from ticketgw.app import build_reader, build_runtime, load_settings
from ticketgw.output import CliError, emit, human_ticket, read_order_lines

EXIT_ERROR = 1


def runtime_for(args: argparse.Namespace) -> Runtime:
    """The runtime of a command that writes: the schema is created or migrated first."""
    return build_runtime(load_settings(getattr(args, "config", None)))


def read_runtime(args: argparse.Namespace) -> Runtime:
    """The runtime of a command that only reads: it never creates a database."""
    return build_reader(load_settings(getattr(args, "config", None)))


_runtime = runtime_for


def cmd_init(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    revision = migrate(runtime.engine)
    emit(args, {"revision": revision, "database": runtime.engine.url.render_as_string()},
          lambda: f"database ready at revision {revision}")


def cmd_vendor(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    ctx = runtime.context()
    actor = Actor(Role.STAFF, source="cli")
    with runtime.sessions.begin() as session:
        if args.action == "add":
            vendor = vendors.add_vendor(
                session, ctx, actor, args.nickname, args.email, cs_email=args.cs_email,
                timezone=args.timezone, locale=args.locale,
                partial_refunds=bool(args.partial_refunds))
        elif args.action == "update":
            vendor = vendors.update_vendor(
                session, ctx, actor, args.nickname, email=args.email, cs_email=args.cs_email,
                timezone=args.timezone, locale=args.locale, partial_refunds=args.partial_refunds)
        else:
            vendor = vendors.set_privilege(session, ctx, actor, args.nickname,
                                           args.action == "restore")
        view = _vendor_view(vendor)
    emit(args, view, lambda: " ".join(f"{k}={v}" for k, v in view.items()))


def _vendor_view(vendor: Vendor) -> dict[str, Any]:
    return {"nickname": vendor.nickname, "email": vendor.account_email,
            "cs_email": vendor.cs_email, "timezone": vendor.timezone, "locale": vendor.locale,
            "partial_refunds": vendor.partial_refunds_enabled,
            "may_respond": vendor.may_respond, "dispute_count": vendor.dispute_count}


def cmd_orders_import(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    ctx = runtime.context()
    created = updated = 0
    errors: list[dict[str, Any]] = []
    show_progress = sys.stderr.isatty() and not getattr(args, "json", False)
    done = 0
    for number, value, error in read_order_lines(Path(args.file)):
        done += 1
        if value is not None:
            try:
                line, problems = orders.read_line(value)
                with runtime.sessions.begin() as session:  # each line its own transaction
                    _, was_created = orders.upsert_order(session, ctx, line, notify=args.notify,
                                                         problems=problems)
                created += was_created
                updated += not was_created
            except UserError as exc:
                error = exc.message
        if error is not None:
            errors.append({"line": number, "message": error})
        if show_progress and done % 100 == 0:
            print(f"\r{done} lines read, {created} created, {updated} updated, "
                  f"{len(errors)} errors", end="", file=sys.stderr, flush=True)
    if show_progress and done >= 100:
        print(file=sys.stderr)
    result = {"created": created, "updated": updated, "errors": errors}
    emit(args, result, lambda: "\n".join(
        [f"{created} created, {updated} updated, {len(errors)} errors"]
        + [f"  line {e['line']}: {e['message']}" for e in errors]))
    if errors:
        raise SystemExit(EXIT_ERROR)


def _actor(role: str) -> Actor:
    return Actor(Role(role), source="cli")


def cmd_ticket(args: argparse.Namespace) -> None:
    at = getattr(args, "at", None)
    runtime = read_runtime(args) if args.action == "show" else runtime_for(args)
    ctx = runtime.context(at)
    if at is not None:
        rules.check_request_time(ctx.now, ctx.recorded_at)
    with runtime.sessions.begin() as session:
        if args.action == "open":
            ticket = tickets.open_ticket(session, ctx, args.receipt, TicketType(args.type),
                                         _actor(args.role), reason=args.reason,
                                         comment=args.comment)
            view = ticket_view(ticket)
        elif args.action == "act":
            value = args.value
            action = Action(args.ticket_action)
            if action is Action.ESCALATE and value is None:
                value = args.comment
            if action in (Action.PARTIAL, Action.PERCENT, Action.QUANTITY) and value is None:
                raise UserError(f"{action.value} needs a value, e.g. `ticket act N "
                                f"{action.value} 10`", code="missing_value")
            ticket = tickets.act(session, ctx, args.number, action, _actor(args.role),
                                 comment=args.comment, value=value)
            view = ticket_view(ticket)
        elif args.action == "show":
            view = ticket_view(tickets.find_ticket(session, args.number))
        else:
            query = select(Ticket).order_by(Ticket.number)
            if args.open:
                query = query.where(Ticket.status == "open")
            if args.vendor:
                query = query.join(Order).join(Vendor).where(
                    Vendor.nickname == args.vendor.lower())
            found = session.execute(query).unique().scalars().all()
            items = [ticket_view(t, full=False) for t in found]
            emit(args, items, lambda: "\n".join(
                f"#{i['number']:<6} {i['type']:<13} {i['status']:<6} {i['receipt']:<12} "
                f"{i['vendor']:<12} {i['process_at'] or ''}" for i in items) or "no tickets")
            return
    emit(args, view, lambda: human_ticket(view))


def cmd_deadlines(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    show = sys.stderr.isatty() and not getattr(args, "json", False)

    def progress(result: deadlines.SweepResult) -> None:
        if show:
            print(f"\r{result.total} done, {len(result.failed)} failed", end="",
                  file=sys.stderr, flush=True)

    result = deadlines.run_due(runtime.sessions, lambda: runtime.context(args.at),
                               runtime.refunds, progress=progress)
    if show:
        print(file=sys.stderr)
    data = {"at": format_instant(runtime.context(args.at).now), "processed": result.processed,
            "warnings": result.warnings, "closed": result.closed,
            "not_processed": [{"number": n, "reason": why} for n, why in result.skipped],
            "failed": [{"number": n, "error": e} for n, e in result.failed]}
    emit(args, data, lambda: "\n".join(
        [f"{result.processed} processed, {result.warnings} warnings, {result.closed} closed, "
         f"{len(result.skipped)} not processed, {len(result.failed)} failed"]
        + [f"  #{n} not processed (escalated to staff): {why}" for n, why in result.skipped]
        + [f"  #{n} failed: {error}" for n, error in result.failed]))
    if result.failed:
        raise SystemExit(EXIT_ERROR)


def cmd_status(args: argparse.Namespace) -> None:
    runtime = read_runtime(args)
    with runtime.sessions() as session:
        view = status_view(session)
    emit(args, view, lambda: "\n".join(f"{k}: {v}" for k, v in view.items()))


def cmd_apikey(args: argparse.Namespace) -> None:
    """`apikey create --vendor NICK | --staff`: the key is printed here once, never again."""
    runtime = _runtime(args)
    with runtime.sessions.begin() as session:
        key, row, vendor = apikeys.create_key(session, runtime.context(),
                                              vendor_nick=args.vendor, staff=bool(args.staff))
        view = {"key": key, "prefix": row.prefix,
                "vendor": vendor.nickname if vendor else None, "staff": row.staff}
    who = f"vendor {view['vendor']}" if vendor else "staff"
    emit(args, view, lambda: f"API key for {who} (shown only this once; keep it secret):\n"
          f"{key}")


def cmd_mail(args: argparse.Namespace) -> None:
    """`mail why MESSAGE-ID` (the decisions taken on a mail) and `mail replay` (the spool)."""
    runtime = read_runtime(args) if args.action == "why" else runtime_for(args)
    if args.action == "why":
        with runtime.sessions() as session:
            rows = redact(inbox.why(session, args.message_id))  # reply+TOKEN@, errors
        if not rows:
            raise CliError("not_found", f"no inbound mail with Message-ID {args.message_id}")
        emit(args, rows, lambda: "\n".join(
            f"{r['received_at']} {r['sender']} -> {r['recipient']}: {r['state']} "
            f"({r['decision']}) {r['reason']}"
            + (f" [ticket #{r['ticket']}]" if r["ticket"] else "")
            + (f" error: {r['error']}" if r["error"] else "") for r in rows))
        return
    from inbound import intake  # the edges load only for the commands that use them

    outcomes = intake.replay(runtime)
    failed = sum(1 for o in outcomes if o.state == "failed")
    data = {"replayed": len(outcomes), "failed": failed,
            "items": [{"inbound_id": o.inbound_id, "state": o.state, "reply": o.reply,
                       "ticket": o.ticket_number} for o in outcomes]}
    emit(args, data, lambda: f"{len(outcomes)} replayed, {failed} still failing")
    if failed:
        raise SystemExit(EXIT_ERROR)


def cmd_outbox_retry(args: argparse.Namespace) -> None:
    """`outbox retry`: failed outbound mail is queued again with a fresh retry budget."""
    runtime = _runtime(args)
    from outbound.deliver import retry_failed

    count = retry_failed(runtime)
    emit(args, {"requeued": count}, lambda: f"{count} failed mail(s) queued again")


def _role(name: str) -> Callable[[argparse.Namespace], None]:
    """A long-running role on a runtime of its own, closed when the role returns.

    The roles (and with them the SMTP, IMAP, web and broker libraries) are imported when one
    runs: a one-shot command starts in about half the time without them."""

    def command(args: argparse.Namespace) -> None:
        from ticketgw import roles

        run: Callable[[Runtime], None] = getattr(roles, name)
        runtime = _runtime(args)
        if runtime.settings.metrics_dir:  # the machine's processes sum their counts there
            metrics.use_directory(Path(runtime.settings.metrics_dir).resolve())
        if runtime.settings.metrics_listen is not None:  # roles without the web edge
            metrics.serve_http(runtime.settings.metrics_listen.host,
                               runtime.settings.metrics_listen.port)
        try:
            run(runtime)
        finally:
            runtime.close()

    return command


def cmd_orders(args: argparse.Namespace) -> None:
    cmd_orders_import(args)


def cmd_outbox(args: argparse.Namespace) -> None:
    cmd_outbox_retry(args)


HANDLERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "init": cmd_init,
    "vendor": cmd_vendor,
    "orders": cmd_orders,
    "ticket": cmd_ticket,
    "deadlines": cmd_deadlines,
    "status": cmd_status,
    "mail": cmd_mail,
    "outbox": cmd_outbox,
    "apikey": cmd_apikey,
    "serve": _role("serve"),
    "smtp": _role("smtp"),
    "imap": _role("imap"),
    "web": _role("web"),
    "worker": _role("worker"),
    "scheduler": _role("scheduler"),
}
