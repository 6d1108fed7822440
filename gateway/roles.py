"""The long-running roles (`serve`, `smtp`, `imap`, `web`, `worker`, `scheduler`), wired here."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gateway.app import build_runtime, load_settings
from gateway.services.runtime import Runtime


def runtime_for(args: argparse.Namespace) -> Runtime:
    return build_runtime(load_settings(getattr(args, "config", None)))


HANDLERS: dict[str, Callable[[argparse.Namespace], None]] = {}


def run_smtp_role(args: argparse.Namespace) -> None:
    """`ticketgw smtp`: the inbound SMTP listener until SIGTERM/SIGINT."""
    from inbound.smtp import run_smtp

    run_smtp(runtime_for(args))


HANDLERS["smtp"] = run_smtp_role
