"""Prometheus metrics: defined once here, counted by one-line calls at the edges, read by /metrics.

Counts belong to the process, as in the Prometheus client itself. Roles that run as several
processes on one machine (forked SMTP listeners; `smtp`, `worker` and `web` side by side) keep
them in one directory (`use_directory`: the client's multiprocess mode), and a scrape of any of
those processes sums the files of all of them. Without a directory (one-shot commands, tests)
they live in this process's memory only.

Counting is a side effect, which is why this is a service module and not part of the pure
domain; it never raises into its caller, because a lost count is better than a lost mail.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import ParamSpec

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = logging.getLogger("ticketgw.metrics")

# The labels an operator's alerts name are there from the start, at 0: `rate()` of a series
# that does not exist yet is nothing, not 0.
LISTENERS = ("smtp", "imap", "replay")
DECISIONS = ("applied", "ignored", "rejected", "failed")
SMTP_CODES = ("250", "421", "450", "451", "452", "550", "552")
DELIVERY_RESULTS = ("sent", "retry", "failed", "deferred", "skipped")
DEADLINE_KINDS = ("processed", "warning", "closed")
TASKS = ("deliver", "sweep_outbox", "sweep_deadlines", "imap")
# The rules' decisions that stop a mail loop: our own mail back, a mail that went round too
# many servers, an auto-responder, a sender flooding us (inbound/rules).
LOOP_STOPS = {"ignored_own_mail": "own_mail", "ignored_loop": "too_many_hops",
              "ignored_auto_reply": "auto_reply", "deferred_rate_limit": "rate_limit"}

INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
DELIVERY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0,
                    24 * 3600.0)

_FILE = re.compile(r"^[a-z]+(?:_[a-z]+)?_(\d+)\.db$")  # counter_123.db, gauge_livesum_123.db
_P = ParamSpec("_P")
# prometheus_client leaves these unannotated: typed once here
_close_files: Callable[[], None] = values.close_all_multiprocess_files
_file_values: Callable[[], type] = values.MultiProcessValue
_forget_pid: Callable[[int, str], None] = mark_process_dead
_collect_files: Callable[[CollectorRegistry, str], object] = MultiProcessCollector


class _Metrics:
    """The metric objects of this process, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "ticketgw_mails_received", "Inbound mails taken in, by listener and decision.",
            ("listener", "decision"), registry=r)
        self.loops = Counter(
            "ticketgw_mail_loops_stopped", "Inbound mails ignored or deferred because they "
            "would make a mail loop (own mail, hops, auto-responders, floods).",
            ("reason",), registry=r)
        self.smtp_answers = Counter(
            "ticketgw_smtp_answers", "SMTP answers: 250 to each mail accepted at the end of "
            "DATA, and every temporary (4xx) or permanent (5xx) refusal at any stage.",
            ("code",), registry=r)
        self.intake_seconds = Histogram(
            "ticketgw_intake_seconds", "From the end of a mail's DATA to its SMTP answer.",
            buckets=INTAKE_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "ticketgw_intake_batch_size", "Mails committed together in one intake transaction.",
            buckets=BATCH_BUCKETS, registry=r)
        self.deliveries = Counter(
            "ticketgw_deliveries", "Outbox delivery attempts by result.", ("result",),
            registry=r)
        self.delivery_seconds = Histogram(
            "ticketgw_delivery_seconds", "From an outbound mail's outbox row to its sending.",
            buckets=DELIVERY_BUCKETS, registry=r)
        self.deadlines_due = Counter(
            "ticketgw_deadlines_due", "Deadlines the sweeps found due.", registry=r)
        self.deadlines_executed = Counter(
            "ticketgw_deadlines_executed", "Deadlines executed, by kind.", ("kind",), registry=r)
        self.deadlines_failed = Counter(
            "ticketgw_deadlines_failed", "Due deadlines that failed (retried next sweep).",
            registry=r)
        self.worker_errors = Counter(
            "ticketgw_worker_errors", "Unexpected errors in background work, by task.",
            ("task",), registry=r)
        self.intake_restarts = Counter(
            "ticketgw_intake_restarts", "Intake threads restarted after they died.", registry=r)
        self.imap_failures = Counter(
            "ticketgw_imap_failures", "IMAP mailbox failures, by mailbox and stage (login, "
            "refresh of an OAuth2 token, fetch).", ("mailbox", "stage"), registry=r)
        self.imap_success = Gauge(
            "ticketgw_imap_last_success_timestamp_seconds", "When each IMAP mailbox last "
            "completed a pass (Unix time).", ("mailbox",), registry=r, multiprocess_mode="max")
        self._zero()

    def _zero(self) -> None:
        for listener in LISTENERS:
            for decision in DECISIONS:
                self.received.labels(listener, decision)
        for reason in LOOP_STOPS.values():
            self.loops.labels(reason)
        for code in SMTP_CODES:
            self.smtp_answers.labels(code)
        for result in DELIVERY_RESULTS:
            self.deliveries.labels(result)
        for kind in DEADLINE_KINDS:
            self.deadlines_executed.labels(kind)
        for task in TASKS:
            self.worker_errors.labels(task)


_current = _Metrics()
_directory: Path | None = None


def _quiet(count: Callable[_P, None]) -> Callable[_P, None]:
    """A count that fails (a full disk under the metrics directory) is logged, never raised."""

    @functools.wraps(count)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            count(*args, **kwargs)
        except Exception:  # noqa: BLE001 - see the module docstring
            log.warning("a metric could not be counted", exc_info=True)

    return run


# --- the counting calls, one line at each edge ------------------------------------------------

@_quiet
def mail_received(listener: str, state: str, decision: str = "") -> None:
    """One inbound mail's outcome (`state`: applied, ignored, duplicate, rejected, failed) and
    the rule's `decision` code, which says when a loop was stopped."""
    _current.received.labels(listener, "ignored" if state == "duplicate" else state).inc()
    reason = LOOP_STOPS.get(decision)
    if reason is not None:
        _current.loops.labels(reason).inc()


@_quiet
def mail_answered(reply: str, seconds: float) -> None:
    """The SMTP answer to one mail at the end of DATA, `seconds` after DATA ended. Refusals
    are counted where every answer passes (`smtp_replied`), so only acceptances here."""
    _current.intake_seconds.observe(seconds)
    if reply[:1] == "2":
        _current.smtp_answers.labels(reply[:3]).inc()


@_quiet
def smtp_replied(reply: str | bytes) -> None:
    """Any SMTP reply line; 4xx and 5xx ones are counted by code."""
    code = reply[:3].decode("ascii", "replace") if isinstance(reply, bytes) else reply[:3]
    if code[:1] in ("4", "5"):
        _current.smtp_answers.labels(code).inc()


@_quiet
def intake_batch(size: int) -> None:
    _current.batch_size.observe(size)


@_quiet
def delivered(result: str) -> None:
    """One outbox delivery attempt's result (sent, retry, failed, deferred, skipped)."""
    _current.deliveries.labels(result).inc()


@_quiet
def mail_sent(waited: timedelta) -> None:
    """An outbound mail went out `waited` after its outbox row was written."""
    _current.delivery_seconds.observe(max(waited.total_seconds(), 0.0))


@_quiet
def deadlines_swept(processed: int, warnings: int, closed: int, failed: int) -> None:
    _current.deadlines_due.inc(processed + warnings + closed + failed)
    for kind, count in (("processed", processed), ("warning", warnings), ("closed", closed)):
        if count:
            _current.deadlines_executed.labels(kind).inc(count)
    if failed:
        _current.deadlines_failed.inc(failed)


@_quiet
def worker_error(task: str) -> None:
    """Background work (`task`: deliver, sweep_outbox, sweep_deadlines, imap) hit an error."""
    _current.worker_errors.labels(task).inc()


@_quiet
def intake_restarted() -> None:
    """An intake thread died and was started again."""
    _current.intake_restarts.inc()


@_quiet
def imap_failed(mailbox: str, stage: str) -> None:
    """An IMAP mailbox failed at `stage` (login, refresh, fetch)."""
    _current.imap_failures.labels(mailbox, stage).inc()


@_quiet
def imap_succeeded(mailbox: str, at: float) -> None:
    """An IMAP mailbox completed a pass at `at` (Unix time)."""
    _current.imap_success.labels(mailbox).set(at)


# --- the directory shared by a machine's processes --------------------------------------------

def use_directory(directory: Path) -> None:
    """From now on this process keeps its counts in `directory`, beside the machine's other
    ticketgw processes (forked children too). At the first start of a run (no process that
    wrote there is alive) what is there is old and goes: counts restart at zero, which
    Prometheus reads as a restart. Otherwise the files of dead processes keep their counts,
    so totals never go back while the others run; only their live gauges go."""
    global _current, _directory
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        _forget_the_dead(directory)
        _close_files()  # a previous directory of this process
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        # the client picks its value class when it is imported, from that variable; the
        # program learns the directory from its settings later, so it is set here, before
        # the metrics are made again (their first values create this process's files, under
        # the lock, so a second process starting now sees this one alive)
        values.ValueClass = _file_values()
        _current, _directory = _Metrics(), directory


def use_memory() -> None:
    """Back to counts in this process's memory (and fresh ones)."""
    global _current, _directory
    _close_files()
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    values.ValueClass = values.MutexValue
    _current, _directory = _Metrics(), None


def process_exited(pid: int | None) -> None:
    """A process that counted into the directory has exited (its live gauges go)."""
    if _directory is not None and pid is not None:
        _forget_pid(pid, str(_directory))


def scrape(*collectors: Collector) -> bytes:
    """The Prometheus text of every process sharing the directory (or of this one), with
    `collectors` (the database's gauges) after them."""
    # auto_describe off: registering must not collect (the database's gauges would query)
    registry = CollectorRegistry(auto_describe=False)
    for collector in (_Sums(), *collectors):
        registry.register(collector)
    return generate_latest(registry)


class _Sums(Collector):
    """What `scrape` shows, read again at each request of `serve_http`."""

    def collect(self) -> Iterator[Metric]:
        if _directory is None:
            yield from _current.registry.collect()
        else:
            registry = CollectorRegistry()
            _collect_files(registry, str(_directory))
            yield from registry.collect()


def serve_http(host: str, port: int) -> bool:
    """Serve `scrape()` at http://host:port/metrics from a daemon thread, for the roles that
    have no web edge (an MX machine's listeners and workers). False when the port is taken:
    another process of the machine serves the same sums from the shared directory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Sums())
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.info("metrics: %s:%d is taken (%s); another process of this machine serves them",
                 host, port, exc)
        return False
    log.info("metrics served on http://%s:%d/metrics", host, port)
    return True


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _forget_the_dead(directory: Path) -> None:
    files = {path: int(found[1]) for path in directory.glob("*.db")
             if (found := _FILE.match(path.name)) is not None}
    alive = {pid for pid in set(files.values()) if pid != os.getpid() and _alive(pid)}
    if not alive:
        for path in files:
            path.unlink(missing_ok=True)
        return
    for pid in set(files.values()) - alive:
        _forget_pid(pid, str(directory))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
