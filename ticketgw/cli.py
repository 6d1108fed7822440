"""The `ticketgw` command line: the contract's commands, for people and (`--json`) programs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gateway.domain.clock import parse_instant
from gateway.domain.errors import GatewayError
from gateway.domain.facts import Action, TicketType
from gateway.domain.locales import LOCALES
from ticketgw.app import setup_logging
from ticketgw.commands import EXIT_ERROR, HANDLERS
from ticketgw.output import CliError


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
        p.add_argument("--locale", choices=LOCALES)
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
        HANDLERS[args.command](args)
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
