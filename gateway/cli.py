"""The `ticketgw` command line: the contract's commands, for people and (`--json`) programs."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gateway.app import build_runtime, load_settings, setup_logging
from gateway.domain.clock import format_instant, parse_instant
from gateway.domain.errors import GatewayError, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import apikeys, deadlines, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import status_view, ticket_view
from store.models import Order, Ticket, Vendor

EXIT_ERROR = 1


class CliError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="TOML configuration file (environment variables override it)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")


def _instant_arg(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Parser(argparse.ArgumentParser):
    """Usage errors follow the contract too: with `--json`, a JSON error on standard error."""

    def error(self, message: str) -> NoReturn:
        if "--json" in sys.argv[1:]:
            print(json.dumps({"error": {"code": "usage", "message": f"{self.prog}: {message}"}}),
                  file=sys.stderr)
            raise SystemExit(2)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ticketgw", description=__doc__)
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, into: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = into.add_parser(name, help=help_text, description=help_text)
        _common(p)
        return p

    command("init", "create or migrate the database schema")
    for role in ("serve", "smtp", "imap", "web", "worker", "scheduler"):
        command(role, f"run the {role} role")

    vendor = command("vendor", "manage vendors").add_subparsers(dest="action", required=True)
    for name in ("add", "update"):
        p = command(name, f"{name} a vendor", vendor)
        p.add_argument("nickname")
        p.add_argument("--email", required=name == "add")
        p.add_argument("--cs-email")
        p.add_argument("--timezone")
        p.add_argument("--locale", choices=orders.LOCALES)
        p.add_argument("--partial-refunds", action="store_true", default=None)
        if name == "update":
            p.add_argument("--no-partial-refunds", dest="partial_refunds",
                           action="store_false")
    for name in ("revoke", "restore"):
        command(name, f"{name} a vendor's right to respond", vendor).add_argument("nickname")

    orders_p = command("orders", "orders").add_subparsers(dest="action", required=True)
    p = command("import", "import orders from JSON Lines or CSV", orders_p)
    p.add_argument("file")
    p.add_argument("--notify", action="store_true", help="mail receipt and sale for new orders")

    ticket = command("ticket", "tickets").add_subparsers(dest="action", required=True)
    p = command("open", "open a ticket", ticket)
    p.add_argument("receipt")
    p.add_argument("--type", required=True, choices=[t.value for t in TicketType])
    p.add_argument("--as", dest="role", required=True, choices=["customer", "vendor", "staff"])
    p.add_argument("--reason")
    p.add_argument("--comment")
    p.add_argument("--at", type=_instant_arg)
    command("show", "show a ticket", ticket).add_argument("number", type=int)
    p = command("list", "list tickets", ticket)
    p.add_argument("--open", action="store_true")
    p.add_argument("--vendor")
    p = command("act", "act on a ticket", ticket)
    p.add_argument("number", type=int)
    p.add_argument("ticket_action", metavar="ACTION", choices=[a.value for a in Action])
    p.add_argument("value", nargs="?", help="amount, percent or quantity")
    p.add_argument("--as", dest="role", required=True, choices=["customer", "vendor", "staff"])
    p.add_argument("--comment")
    p.add_argument("--at", type=_instant_arg)

    dl = command("deadlines", "deadlines").add_subparsers(dest="action", required=True)
    command("run", "execute everything due", dl).add_argument("--at", type=_instant_arg)
    command("status", "counts and the next deadline")
    mail = command("mail", "inbound mail").add_subparsers(dest="action", required=True)
    command("why", "the decision taken on a mail", mail).add_argument("message_id")
    command("replay", "re-run the unprocessable spool", mail)
    outbox = command("outbox", "outbound mail").add_subparsers(dest="action", required=True)
    command("retry", "re-queue failed outbound mail", outbox)
    apikey = command("apikey", "API keys").add_subparsers(dest="action", required=True)
    p = command("create", "create an API key (printed once)", apikey)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--vendor")
    group.add_argument("--staff", action="store_true")
    return parser


# --- output -----------------------------------------------------------------------------

def _emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=None))
    else:
        print(human())


def _human_ticket(view: dict[str, Any]) -> str:
    lines = [
        f"Ticket #{view['number']}  {view['type']}  {view['status']}"
        + (f" ({view['close_reason']})" if view.get("close_reason") else ""),
        f"  receipt {view['receipt']}  vendor {view['vendor']}  customer {view['customer_email']}",
        f"  created {view['created_at']} by {view['created_by']}",
    ]
    if view.get("refund_kind"):
        lines.append(f"  refund {view['refund_kind']} {view.get('refund_amount') or ''} "
                     f"{view.get('currency', '')}".rstrip())
    if view.get("awaiting_confirmation"):
        lines.append("  awaiting the sender's confirmation")
    if view.get("process_at"):
        lines.append(f"  process_at {view['process_at']}")
    if view.get("closed_at"):
        lines.append(f"  closed {view['closed_at']}")
    for message in view.get("messages", []):
        lines.append(f"  [{message['created_at']}] {message['author_role']}: "
                     + message["text"].strip().replace("\n", "\n    "))
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------

def _runtime(args: argparse.Namespace) -> Runtime:
    return build_runtime(load_settings(getattr(args, "config", None)))


def cmd_init(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    from store.db import migrate

    revision = migrate(runtime.engine)
    _emit(args, {"revision": revision, "database": runtime.engine.url.render_as_string()},
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
    _emit(args, view, lambda: " ".join(f"{k}={v}" for k, v in view.items()))


def _vendor_view(vendor: Vendor) -> dict[str, Any]:
    return {"nickname": vendor.nickname, "email": vendor.account_email,
            "cs_email": vendor.cs_email, "timezone": vendor.timezone, "locale": vendor.locale,
            "partial_refunds": vendor.partial_refunds_enabled,
            "may_respond": vendor.may_respond, "dispute_count": vendor.dispute_count}


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, parsed object or None, error) for each non-empty line or CSV row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError("not_found", f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise CliError("invalid_file", f"{path} is not UTF-8 text ({exc.reason})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, None, "more cells than the header has columns"
                continue
            yield line, {k: v for k, v in row.items() if v not in (None, "")}, None
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield number, None, "each line must be a JSON object"
            continue
        yield number, value, None


def cmd_orders_import(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    ctx = runtime.context()
    created = updated = 0
    errors: list[dict[str, Any]] = []
    show_progress = sys.stderr.isatty() and not getattr(args, "json", False)
    done = 0
    for number, value, error in _read_lines(Path(args.file)):
        done += 1
        if value is not None:
            try:
                line = orders.parse_line(value)
                with runtime.sessions.begin() as session:  # each line its own transaction
                    _, was_created = orders.upsert_order(session, ctx, line, notify=args.notify)
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
    _emit(args, result, lambda: "\n".join(
        [f"{created} created, {updated} updated, {len(errors)} errors"]
        + [f"  line {e['line']}: {e['message']}" for e in errors]))
    if errors:
        raise SystemExit(EXIT_ERROR)


def _actor(role: str) -> Actor:
    return Actor(Role(role), source="cli")


def cmd_ticket(args: argparse.Namespace) -> None:
    at = getattr(args, "at", None)
    runtime = _runtime(args)
    ctx = runtime.context(at)
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
            _emit(args, items, lambda: "\n".join(
                f"#{i['number']:<6} {i['type']:<13} {i['status']:<6} {i['receipt']:<12} "
                f"{i['vendor']:<12} {i['process_at'] or ''}" for i in items) or "no tickets")
            return
    _emit(args, view, lambda: _human_ticket(view))


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
            "failed": [{"ticket_id": t, "error": e} for t, e in result.failed]}
    _emit(args, data, lambda: f"{result.processed} processed, {result.warnings} warnings, "
          f"{result.closed} closed, {len(result.failed)} failed")
    if result.failed:
        raise SystemExit(EXIT_ERROR)


def cmd_status(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    with runtime.sessions() as session:
        view = status_view(session)
    _emit(args, view, lambda: "\n".join(f"{k}: {v}" for k, v in view.items()))


def cmd_apikey(args: argparse.Namespace) -> None:
    """`apikey create --vendor NICK | --staff`: the key is printed here once, never again."""
    runtime = _runtime(args)
    with runtime.sessions.begin() as session:
        key, row, vendor = apikeys.create_key(session, runtime.context(),
                                              vendor_nick=args.vendor, staff=bool(args.staff))
        view = {"key": key, "prefix": row.prefix,
                "vendor": vendor.nickname if vendor else None, "staff": row.staff}
    who = f"vendor {view['vendor']}" if vendor else "staff"
    _emit(args, view, lambda: f"API key for {who} (shown only this once; keep it secret):\n"
          f"{key}")


def cmd_not_built(args: argparse.Namespace) -> None:
    raise CliError("not_built", f"`ticketgw {args.command}` is not built yet in this version")


HANDLERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "init": cmd_init,
    "vendor": cmd_vendor,
    "ticket": cmd_ticket,
    "deadlines": cmd_deadlines,
    "status": cmd_status,
    "apikey": cmd_apikey,
}


def cmd_mail(args: argparse.Namespace) -> None:
    """`mail why MESSAGE-ID` (the decisions taken on a mail) and `mail replay` (the spool)."""
    from gateway.services import inbox
    from inbound import intake

    runtime = _runtime(args)
    if args.action == "why":
        with runtime.sessions() as session:
            rows = inbox.why(session, args.message_id)
        if not rows:
            raise CliError("not_found", f"no inbound mail with Message-ID {args.message_id}")
        _emit(args, rows, lambda: "\n".join(
            f"{r['received_at']} {r['sender']} -> {r['recipient']}: {r['state']} "
            f"({r['decision']}) {r['reason']}"
            + (f" [ticket #{r['ticket']}]" if r["ticket"] else "")
            + (f" error: {r['error']}" if r["error"] else "") for r in rows))
        return
    outcomes = intake.replay(runtime)
    failed = sum(1 for o in outcomes if o.state == "failed")
    data = {"replayed": len(outcomes), "failed": failed,
            "items": [{"inbound_id": o.inbound_id, "state": o.state, "reply": o.reply,
                       "ticket": o.ticket_number} for o in outcomes]}
    _emit(args, data, lambda: f"{len(outcomes)} replayed, {failed} still failing")
    if failed:
        raise SystemExit(EXIT_ERROR)


def cmd_outbox_retry(args: argparse.Namespace) -> None:
    """`outbox retry`: failed outbound mail is queued again with a fresh retry budget."""
    from outbound.deliver import retry_failed

    runtime = _runtime(args)
    count = retry_failed(runtime)
    _emit(args, {"requeued": count}, lambda: f"{count} failed mail(s) queued again")


def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "outbox":
        cmd_outbox_retry(args)
        return
    if args.command == "orders":
        cmd_orders_import(args)
        return
    if args.command == "mail":
        cmd_mail(args)
        return
    handler = HANDLERS.get(args.command)
    if handler is None:
        from gateway import roles

        handler = roles.HANDLERS.get(args.command, cmd_not_built)
    handler(args)


def _fail(args: argparse.Namespace, code: str, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    else:
        print(f"ticketgw: error: {message}", file=sys.stderr)
    return EXIT_ERROR


LONG_RUNNING = ("serve", "smtp", "imap", "web", "worker", "scheduler")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the long-running roles log what happens to every mail; one-shot commands only warnings
    setup_logging(logging.INFO if args.command in LONG_RUNNING else logging.WARNING)
    try:
        _dispatch(args)
    except CliError as exc:
        return _fail(args, exc.code, exc.message)
    except GatewayError as exc:
        return _fail(args, exc.code, exc.message)
    except OperationalError as exc:
        return _fail(args, "database_unavailable",
                     f"the database cannot be reached: {str(exc.orig).strip()}")
    except SQLAlchemyError as exc:
        return _fail(args, "database_error", f"database error: {type(exc).__name__}")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
