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


def run_imap_role(args: argparse.Namespace) -> None:
    """`ticketgw imap`: poll TICKETGW_IMAP_URL until SIGTERM/SIGINT."""
    import signal
    import threading

    from gateway.domain.errors import ConfigError
    from inbound.imap import run_imap

    runtime = runtime_for(args)
    if not runtime.settings.imap_url:
        runtime.close()
        raise ConfigError("TICKETGW_IMAP_URL is empty: set it to imap://user:password@host/INBOX "
                          "(or imaps://) to run the IMAP poller")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run_imap(runtime, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()


HANDLERS["imap"] = run_imap_role


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


def run_serve_role(args: argparse.Namespace) -> None:
    """`ticketgw serve`: every role in one process on the embedded defaults."""
    from gateway.serve import run_serve

    runtime = runtime_for(args)
    try:
        run_serve(runtime)
    finally:
        runtime.close()


HANDLERS["serve"] = run_serve_role
