"""`ticketgw vendor template add|list|show|remove` and `ticketgw vendor signature`: a vendor's
reply templates and signature, from files (UTF-8 text, Jinja2 over the ticket's fields)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.domain.facts import Role
from gateway.services import vendor_texts
from gateway.services.context import Actor
from gateway.services.reply_texts import FIELDS
from gateway.services.vendors import find_vendor
from ticketgw.commands import read_runtime, runtime_for
from ticketgw.output import CliError, emit

STAFF = Actor(Role.STAFF, source="cli")
_FIELDS_HELP = "Jinja2 over the ticket's fields: " + ", ".join(FIELDS)


def add_parsers(command: Callable[..., argparse.ArgumentParser], vendor: Any) -> None:
    """The parser entries, under `ticketgw vendor` (`command` makes one, as cli.py's does)."""
    template = command("template", "a vendor's reply templates", vendor).add_subparsers(
        dest="template_action", required=True, metavar="ACTION")
    for name, text in (("add", "add a reply template, or replace the one of that name"),
                       ("show", "print a reply template"),
                       ("remove", "remove a reply template")):
        p = command(name, text, template)
        p.add_argument("nickname", help="the vendor's nickname")
        p.add_argument("name", help="the template's name, used as `#template NAME`")
        if name == "add":
            p.add_argument("--file", required=True, metavar="F",
                           help=f"the template, UTF-8 text ({_FIELDS_HELP})")
    command("list", "list a vendor's reply templates", template).add_argument(
        "nickname", help="the vendor's nickname")
    p = command("signature", "set, clear or print the signature under the vendor's replies",
                vendor)
    p.add_argument("nickname", help="the vendor's nickname")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--file", metavar="F", help=f"the signature, UTF-8 text ({_FIELDS_HELP})")
    given.add_argument("--clear", action="store_true", help="no signature any more")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError("not_found", f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise CliError("invalid_file", f"{path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise CliError("invalid_file", f"{path} cannot be read: {exc.strerror}") from None


def template(args: argparse.Namespace) -> None:
    action = args.template_action
    if action in ("list", "show"):
        with read_runtime(args).sessions() as session:
            if action == "list":
                items = [vendor_texts.template_view(t, body=False)
                         for t in vendor_texts.list_templates(session, args.nickname)]
                emit(args, items, lambda: "\n".join(
                    ["NAME                 UPDATED"]
                    + [f"{i['name']:<20} {i['updated_at']}" for i in items])
                    if items else "no reply templates")
                return
            view = vendor_texts.template_view(
                vendor_texts.find_template(session, args.nickname, args.name))
        emit(args, view, lambda: str(view["body"]).rstrip("\n"))
        return
    runtime = runtime_for(args)
    with runtime.sessions.begin() as session:
        if action == "remove":
            vendor_texts.remove_template(session, runtime.context(), STAFF, args.nickname,
                                         args.name)
            view = {"name": args.name.strip().lower(), "removed": True}
        else:
            saved, created = vendor_texts.save_template(
                session, runtime.context(), STAFF, args.nickname, args.name, _read(args.file))
            view = {**vendor_texts.template_view(saved), "created": created}
    done = "removed" if action == "remove" else "added" if view.get("created") else "replaced"
    emit(args, view, lambda: f"template {view['name']} {done}")


def signature(args: argparse.Namespace) -> None:
    if not args.file and not args.clear:
        with read_runtime(args).sessions() as session:
            text = find_vendor(session, args.nickname).signature
        emit(args, {"signature": text}, lambda: text or "no signature")
        return
    runtime = runtime_for(args)
    with runtime.sessions.begin() as session:
        vendor = vendor_texts.set_signature(session, runtime.context(), STAFF, args.nickname,
                                            None if args.clear else _read(args.file))
        view = {"nickname": vendor.nickname, "signature": vendor.signature}
    emit(args, view, lambda: "signature set" if view["signature"] else "no signature any more")


SUBCOMMANDS: dict[tuple[str, str], Callable[[argparse.Namespace], None]] = {
    ("vendor", "template"): template,
    ("vendor", "signature"): signature,
}
