"""The `ticketgw` command line: the contract's commands, for people and (`--json`) programs."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from gateway.domain.clock import parse_instant
from gateway.domain.errors import GatewayError
from gateway.domain.facts import Action, TicketType
from gateway.domain.locales import LOCALES
from ticketgw import vendor_texts
from ticketgw.app import load_settings, setup_logging
from ticketgw.commands import EXIT_ERROR, HANDLERS
from ticketgw.operator import SUBCOMMANDS
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


def _filters(p: argparse.ArgumentParser, *, ticket: bool = True) -> None:
    if ticket:
        p.add_argument("--ticket", type=int, metavar="N", help="only mail of ticket #N")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help="at most N lines, newest first (default 100)")


def _vendor_options(p: argparse.ArgumentParser, *, adding: bool) -> None:
    p.add_argument("nickname", help="the vendor's nickname (lower case letters, digits, -)")
    p.add_argument("--email", required=adding, help="the vendor's account address")
    p.add_argument("--cs-email", help="customer-service address; vendor mail goes there")
    p.add_argument("--timezone", help="IANA time zone of business hours, e.g. Europe/Paris")
    p.add_argument("--locale", choices=LOCALES, help="language of the vendor's mail")
    p.add_argument("--partial-refunds", action="store_true", default=None,
                   help="let customers ask for partial refunds")
    if not adding:
        p.add_argument("--no-partial-refunds", dest="partial_refunds", action="store_false",
                       help="full refunds only")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ticketgw", description=__doc__)
    _common(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, into: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = into.add_parser(name, help=help_text, description=help_text)
        _common(p)
        return p

    def group(name: str, help_text: str) -> Any:
        return command(name, help_text).add_subparsers(dest="action", required=True,
                                                       metavar="ACTION")

    command("init", "create or migrate the database schema")
    command("demo", "seed a small demo marketplace and print what to try next")
    for role in ("serve", "smtp", "imap", "web", "worker", "scheduler"):
        command(role, f"run the {role} role")

    vendor = group("vendor", "manage vendors")
    vendor_texts.add_parsers(command, vendor)
    for name in ("add", "update"):
        _vendor_options(command(name, f"{name} a vendor", vendor), adding=name == "add")
    for name in ("revoke", "restore"):
        command(name, f"{name} a vendor's right to respond", vendor).add_argument(
            "nickname", help="the vendor's nickname")
    command("list", "list vendors", vendor)
    command("show", "show one vendor, its disputes and right to respond", vendor).add_argument(
        "nickname", help="the vendor's nickname")
    command("link", "mail the vendor a sign-in link to its workplace and print it",
            vendor).add_argument("nickname", help="the vendor's nickname")

    p = command("import", "import orders from JSON Lines or CSV", group("orders", "orders"))
    p.add_argument("file", help="a .jsonl file, or a .csv file with the same columns")
    p.add_argument("--notify", action="store_true", help="mail receipt and sale for new orders")

    _ticket_commands(command, group("ticket", "tickets"))

    dl = group("deadlines", "deadlines")
    command("run", "execute everything due", dl).add_argument(
        "--at", type=_instant_arg, help="the instant to run at (ISO-8601; default now)")
    command("status", "counts and the next deadline")

    mail = group("mail", "inbound mail")
    command("why", "the decision taken on a mail", mail).add_argument(
        "message_id", help="the mail's Message-ID, with or without <>")
    command("replay", "re-run the unprocessable spool", mail)
    p = command("list", "recorded inbound mail and the decision on each", mail)
    p.add_argument("--decision", choices=("applied", "ignored", "rejected", "failed"),
                   help="only mail with this decision")
    p.add_argument("--sender", metavar="ADDRESS", help="only mail from this address")
    p.add_argument("--since", type=_instant_arg, metavar="TIME",
                   help="only mail received at or after TIME (ISO-8601)")
    _filters(p)

    outbox = group("outbox", "outbound mail")
    command("retry", "re-queue failed outbound mail", outbox)
    p = command("list", "outbound mail, with why a mail is deferred or failed", outbox)
    p.add_argument("--state", choices=("pending", "sent", "failed", "deferred"),
                   help="only mail in this state")
    p.add_argument("--to", metavar="ADDRESS", help="only mail to this address")
    _filters(p)

    address = group("address", "what the gateway knows of a mail address")
    command("show", "bouncing, suppressed, mail sent and received", address).add_argument(
        "address", help="the mail address")
    command("unsuppress", "send mail to a suppressed address again", address).add_argument(
        "address", help="the mail address")

    apikey = group("apikey", "API keys")
    p = command("create", "create an API key (printed once)", apikey)
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--vendor", metavar="NICK", help="a key that acts as this vendor")
    owner.add_argument("--staff", action="store_true", help="a key that acts as staff")
    command("list", "API keys by prefix, revoked or not", apikey)
    command("revoke", "revoke an API key", apikey).add_argument(
        "prefix", metavar="ID", help="the key's ID or prefix, as `apikey list` shows it")
    return parser


def _ticket_commands(command: Any, ticket: Any) -> None:
    roles = ["customer", "vendor", "staff"]
    p = command("open", "open a ticket", ticket)
    p.add_argument("receipt", help="the order's receipt")
    p.add_argument("--type", required=True, choices=[t.value for t in TicketType],
                   help="the ticket's type")
    p.add_argument("--as", dest="role", required=True, choices=roles, help="who asks")
    p.add_argument("--reason", help="reason code (refunds)")
    p.add_argument("--comment", help="the request's text")
    p.add_argument("--at", type=_instant_arg,
                   help="when the request was made (ISO-8601, not in the future)")
    command("show", "show a ticket", ticket).add_argument("number", type=int,
                                                          help="the ticket's number")
    p = command("list", "list tickets (first line names the columns)", ticket)
    p.add_argument("--open", action="store_true", help="only open tickets")
    p.add_argument("--vendor", metavar="NICK", help="only this vendor's tickets")
    p.add_argument("--type", choices=[t.value for t in TicketType], help="only this type")
    p.add_argument("--status", choices=["open", "closed"], help="only this status")
    p.add_argument("--escalated", action="store_true", help="only escalated tickets")
    p.add_argument("--receipt", help="only tickets on this order")
    p.add_argument("--since", type=_instant_arg, metavar="TIME",
                   help="only tickets created at or after TIME (ISO-8601)")
    p.add_argument("--until", type=_instant_arg, metavar="TIME",
                   help="only tickets created before TIME (ISO-8601)")
    p = command("act", "act on a ticket", ticket)
    p.add_argument("number", type=int, help="the ticket's number")
    p.add_argument("ticket_action", metavar="ACTION", choices=[a.value for a in Action],
                   help=", ".join(a.value for a in Action))
    p.add_argument("value", nargs="?", help="amount, percent or quantity")
    p.add_argument("--as", dest="role", required=True, choices=roles, help="who acts")
    p.add_argument("--comment", help="text added to the ticket with the action")
    p.add_argument("--at", type=_instant_arg, help="when the action was taken (ISO-8601)")


def _version() -> str:
    try:
        return importlib.metadata.version("ticketgw")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _fail(args: argparse.Namespace, code: str, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    else:
        print(f"ticketgw: error: {message}", file=sys.stderr)
    return EXIT_ERROR


LONG_RUNNING = ("serve", "smtp", "imap", "web", "worker", "scheduler")


def _database_named(args: argparse.Namespace) -> str:
    """The configured database, its password hidden, for error messages."""
    try:
        url = load_settings(getattr(args, "config", None)).database_url
        return make_url(url).render_as_string(hide_password=True)
    except (GatewayError, ArgumentError, ValueError):
        return "the configured database"


_SCHEMA_MARKERS = ("no such table", "no such column", "has no column named",
                   "UndefinedTable", "UndefinedColumn")
_UNREACHABLE_MARKERS = ("connect", "unable to open database file", "Connection refused",
                        "does not exist")


def _database_failure(args: argparse.Namespace, exc: SQLAlchemyError) -> int:
    where = _database_named(args)
    first = (str(getattr(exc, "orig", "") or "").strip().splitlines() or [""])[0]
    if any(marker in first for marker in _SCHEMA_MARKERS) or (
            "relation" in first and "does not exist" in first):
        return _fail(args, "database_not_ready",
                     f"the database {where} does not have this version's tables ({first}): "
                     "run `ticketgw init` first")
    if isinstance(exc, OperationalError) and any(m in first for m in _UNREACHABLE_MARKERS):
        return _fail(args, "database_unavailable",
                     f"the database {where} cannot be reached: {first}")
    if isinstance(exc, OperationalError):
        return _fail(args, "database_unavailable", f"the database {where} failed: {first}")
    return _fail(args, "database_error", f"database error on {where}: {type(exc).__name__}")


def _quiet_broken_pipe() -> int:
    """`ticketgw … | head`: the reader left; end quietly, as a program killed by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
    return 141


def _demo(command: str) -> Any:
    """`ticketgw demo`, imported only when asked for (it brings the whole ticket core)."""
    if command != "demo":
        return None
    from ticketgw import demo

    return demo.command


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the long-running roles log what happens to every mail; one-shot commands only warnings
    setup_logging(logging.INFO if args.command in LONG_RUNNING else logging.WARNING)
    handler = (SUBCOMMANDS.get((args.command, getattr(args, "action", "")))
               or vendor_texts.SUBCOMMANDS.get((args.command, getattr(args, "action", "")))
               or _demo(args.command) or HANDLERS[args.command])
    try:
        handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except CliError as exc:
        return _fail(args, exc.code, exc.message)
    except GatewayError as exc:
        return _fail(args, exc.code, exc.message)
    except SQLAlchemyError as exc:
        return _database_failure(args, exc)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
