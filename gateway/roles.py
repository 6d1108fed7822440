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


def run_worker_role(args: argparse.Namespace) -> None:
    """`ticketgw worker`: deliver outbox mail and run sweeps until SIGTERM/SIGINT."""
    from gateway.broker import run_worker

    runtime = runtime_for(args)
    try:
        run_worker(runtime)
    finally:
        runtime.close()


def run_scheduler_role(args: argparse.Namespace) -> None:
    """`ticketgw scheduler`: enqueue the outbox and deadline sweeps until SIGTERM/SIGINT."""
    from gateway.broker import run_scheduler

    runtime = runtime_for(args)
    try:
        run_scheduler(runtime)
    finally:
        runtime.close()


HANDLERS["worker"] = run_worker_role
HANDLERS["scheduler"] = run_scheduler_role


def run_web_role(args: argparse.Namespace) -> None:
    """`ticketgw web`: the web pages on TICKETGW_HTTP_LISTEN until SIGTERM/SIGINT."""
    from gateway.web import run_web

    runtime = runtime_for(args)
    try:
        listen = runtime.settings.http_listen
        run_web(runtime, listen.host, listen.port)
    finally:
        runtime.close()


HANDLERS["web"] = run_web_role
