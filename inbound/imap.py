"""Poll one IMAP mailbox: take each new mail in, and move it aside only once it is committed.

The order of every step is the durability promise (SPEC 8, STYLE 2): the mail is fetched with
`BODY.PEEK[]` (so it is not even marked \\Seen), handed to `intake.receive()`, which commits
the mail and all its effects, and only then moved to `Processed`, `Rejected` or, after
`max_tries` temporary failures, `Failed`. A crash anywhere in between leaves the mail in the
mailbox, and taking it in again changes nothing (intake de-duplicates by Message-ID and
sender, or by the bytes). Tries are counted in the database before each one, so a mail that
stops the poller itself goes to `Failed` after `max_tries` restarts. Roundup's `do_imap`
sets \\Deleted first, and loses mail.

`ImapState` keeps, per account and mailbox, the UIDVALIDITY and a watermark: every UID up to
`last_uid` has left the mailbox. A new UIDVALIDITY (RFC 3501 section 2.3.1.1: the old UIDs
mean nothing any more) rescans the whole mailbox from UID 1.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from imapclient import IMAPClient

from gateway.services import by_mail, imap_health, inbox, metrics
from gateway.services.runtime import Runtime
from inbound.imap_client import (
    CONNECTION_ERRORS,
    FAILED,
    IDLE_SECONDS,
    PASSWORD,
    POLL_SECONDS,
    PROCESSED,
    REJECTED,
    Backoff,
    ImapAccount,
    LoginFailed,
    connect,
    ensure_folders,
    imap_accounts,
    move_message,
    wait_for_mail,
)
from inbound.imap_oauth import RefreshFailed, TokenKeeper
from inbound.imap_state import count_try, forget_tries, load_state, save_watermark
from inbound.intake import Outcome, check_recipient, receive

log = logging.getLogger("ticketgw.imap")

DEFAULT_MAX_TRIES = 3
BATCH_SIZE = 10  # bodies fetched per round trip; mail may be up to 25 MB each
# Headers naming the address the mail was delivered to, most specific first.
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


@dataclass
class PollResult:
    """What one pass did: mails moved to each folder, and mails left for another try."""

    processed: int = 0
    rejected: int = 0
    failed: int = 0
    retrying: int = 0
    uidvalidity_changed: bool = False
    highest_uid: int = 0  # the highest UID this pass looked at (or the watermark)

    def count(self, folder: str | None) -> None:
        if folder == PROCESSED:
            self.processed += 1
        elif folder == REJECTED:
            self.rejected += 1
        elif folder == FAILED:
            self.failed += 1
        else:
            self.retrying += 1

    @property
    def counts(self) -> dict[str, int]:
        return {"processed": self.processed, "rejected": self.rejected, "failed": self.failed,
                "retrying": self.retrying}


def poll_once(runtime: Runtime, client: IMAPClient, *, max_tries: int = DEFAULT_MAX_TRIES,
              batch_size: int = BATCH_SIZE, account: ImapAccount | None = None) -> PollResult:
    """Take in every mail above the watermark once, oldest UID first however old (after an
    outage nothing is skipped). Each mail's tries are counted in the database (ImapAttempt)
    before each try, across passes and restarts. `account`: the first of TICKETGW_IMAP_URL."""
    account = account or imap_accounts(runtime.settings.imap_urls)[0]
    ensure_folders(client)
    selected = client.select_folder(account.mailbox)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    last_uid, changed = load_state(runtime, account.key, uidvalidity)
    result = PollResult(uidvalidity_changed=changed)
    uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*", "NOT", "DELETED"])
                  if u > last_uid)
    result.highest_uid = max([last_uid, *uids])
    watermark, blocked = last_uid, False
    for start in range(0, len(uids), batch_size):
        chunk = uids[start:start + batch_size]
        bodies = client.fetch(chunk, ["BODY.PEEK[]"])
        for uid in chunk:
            data = bodies.get(uid)
            if data is None or b"BODY[]" not in data:
                left = False  # gone since the search (another client took it)
            else:
                left = _handle(runtime, client, account, uidvalidity, uid,
                               bytes(data[b"BODY[]"]), max_tries, result)
            blocked = blocked or left
            if not blocked:
                watermark = uid
        if watermark > last_uid:
            save_watermark(runtime, account.key, uidvalidity, watermark)
            last_uid = watermark
    # Nothing left behind: every UID below UIDNEXT (as of SELECT) was taken or is gone.
    uidnext = int(selected.get(b"UIDNEXT") or 0)
    if not blocked and uidnext - 1 > last_uid:
        save_watermark(runtime, account.key, uidvalidity, uidnext - 1)
    return result


def _handle(runtime: Runtime, client: IMAPClient, account: ImapAccount, uidvalidity: int,
            uid: int, raw: bytes, max_tries: int, result: PollResult) -> bool:
    """Take one mail in and move it; True when it stays in the mailbox for another try."""
    headers = _headers(raw)
    where = (account.key, uidvalidity, uid)
    attempt = count_try(runtime, where)
    if attempt is None:  # the database cannot even count: it is down, try again later
        outcome = Outcome(inbox.FAILED, "451 4.3.0 database unavailable", "", None, None)
        folder: str | None = None
    elif attempt > max_tries:  # the tries before never finished: the poller stopped in them
        outcome = Outcome(inbox.FAILED, "451 4.3.0 stopped the poller", "", None, None)
        folder = FAILED
    else:
        outcome = _receive(runtime, raw, headers)
        folder = _folder_for(outcome)
        if folder == REJECTED and not _explain(runtime, outcome):
            folder = None  # the explanation is part of the answer: try the mail again later
        # A deferral (the sender's rate limit, 450) is no fault: it waits, as an SMTP
        # sender would, and never counts towards `Failed`.
        if outcome.state == inbox.REJECTED and outcome.reply.startswith("4"):
            forget_tries(runtime, where, one=True)
        elif folder is None and attempt >= max_tries:
            folder = FAILED
    # only now, after receive() committed, may the mail leave the mailbox
    if folder is not None:
        move_message(client, uid, folder)
        forget_tries(runtime, where)
    result.count(folder)
    log.info("imap mail %s", folder or "kept for retry", extra={
        "mailbox": account.mailbox, "uid": uid, "uidvalidity": uidvalidity,
        "message_id": _first(headers, "Message-ID"), "state": outcome.state,
        "reply": outcome.reply, "folder": folder, "attempt": attempt,
        "ticket": outcome.ticket_number, "inbound_id": outcome.inbound_id,
    })
    return folder is None


def _receive(runtime: Runtime, raw: bytes, headers: Message) -> Outcome:
    try:
        return receive(runtime, raw, envelope_from=_envelope_from(headers),
                       recipient=_recipient(runtime, headers), channel="imap")
    except Exception as exc:  # noqa: BLE001 - receive() promises not to raise; if it does,
        # the mail stays in the mailbox and is tried again, like any temporary failure
        log.exception("intake raised; mail kept in the mailbox")
        return Outcome(inbox.FAILED, "451 4.3.0 internal error", type(exc).__name__, None, None)


def _folder_for(outcome: Outcome) -> str | None:
    """Where a mail goes once intake answered; None: it stays for another try."""
    if outcome.state in (inbox.APPLIED, inbox.IGNORED, "duplicate"):
        return PROCESSED
    if outcome.state == inbox.REJECTED and outcome.reply.startswith("5"):
        return REJECTED
    return None  # failed, or a 4xx such as a rate limit: the sender would retry; so do we


def _explain(runtime: Runtime, outcome: Outcome) -> bool:
    """One explanatory reply for a refused mail (SPEC 8: over IMAP there is no 5xx to give).
    False when it could not be written."""
    if outcome.inbound_id is None:
        return True
    try:
        with runtime.sessions.begin() as session:
            by_mail.explain_refusal(session, runtime.context(), outcome.inbound_id,
                                    outcome.reason, own_domain=runtime.settings.mail_domain)
    except Exception:  # noqa: BLE001 - the database again: keep the mail, try it later
        log.exception("could not record the explanation for a refused mail")
        return False
    return True


def _headers(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _first(headers: Message, name: str) -> str | None:
    value = headers.get(name)
    return str(value).strip() if value is not None else None


def _envelope_from(headers: Message) -> str | None:
    """The Return-Path the delivering server wrote (RFC 5321 section 4.4); `<>` is the null
    sender, which intake reads as a delivery notice. None when there is none."""
    value = _first(headers, "Return-Path")
    if value is None:
        return None
    return value.strip().strip("<>").strip()


def _recipient(runtime: Runtime, headers: Message) -> str:
    """The first of our addresses the mail names, else support@ (the mailbox is ours)."""
    for name in _RECIPIENT_HEADERS:
        values = [str(v) for v in headers.get_all(name, [])]
        for _name, address in getaddresses(values):
            address = address.strip().lower()
            if address and check_recipient(runtime, address) is None:
                return address
    return runtime.settings.address("support")


def run_imap(runtime: Runtime, stop: threading.Event, *, max_tries: int = DEFAULT_MAX_TRIES,
             poll_seconds: float = POLL_SECONDS, idle_seconds: float = IDLE_SECONDS,
             backoff: Backoff | None = None) -> None:
    """The `imap` role: every mailbox of TICKETGW_IMAP_URL polled in its own thread until
    `stop`, so one that fails (a refused login, a revoked token) never holds up another."""
    accounts = imap_accounts(runtime.settings.imap_urls)
    with runtime.sessions.begin() as session:
        imap_health.forget_others(session, [account.key for account in accounts])
    pattern = backoff or Backoff()
    pollers = [MailboxPoller(runtime, account, max_tries=max_tries, poll_seconds=poll_seconds,
                             idle_seconds=idle_seconds,
                             backoff=copy.copy(pattern))  # each its own pace
               for account in accounts]
    if len(pollers) == 1:
        pollers[0].run(stop)
        return
    threads = [threading.Thread(target=poller.run, args=(stop,), daemon=True,
                                name=f"imap-{number}") for number, poller in enumerate(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class MailboxPoller:
    """One mailbox: connect (OAuth2 or password), poll, wait for mail, repeat; reconnect after
    a fault, saying at which stage (`login`, `refresh`, `fetch`) it failed."""

    def __init__(self, runtime: Runtime, account: ImapAccount, *, max_tries: int,
                 poll_seconds: float, idle_seconds: float, backoff: Backoff) -> None:
        self.runtime, self.account, self.max_tries = runtime, account, max_tries
        self.poll_seconds, self.idle_seconds, self.backoff = poll_seconds, idle_seconds, backoff
        self.seen_uid = 0
        self.token: TokenKeeper | None = (
            None if account.auth == PASSWORD else
            TokenKeeper(account, runtime.settings, runtime.clock))

    def run(self, stop: threading.Event) -> None:
        account = self.account
        log.info("imap poller started", extra={"server": f"{account.host}:{account.port}",
                                               "mailbox": account.key, "auth": account.auth})
        while not stop.is_set():
            stage = "login"
            try:
                with connect(account, token=self.token) as client:
                    stage = "fetch"
                    while not stop.is_set():
                        self._pass(client)
                        wait_for_mail(client, stop, seen_uid=self.seen_uid,
                                      poll_seconds=self.poll_seconds,
                                      idle_seconds=self.idle_seconds)
            except RefreshFailed as exc:
                self.failed("refresh", str(exc))
            except LoginFailed as exc:
                self.failed("login", str(exc))
            except CONNECTION_ERRORS as exc:
                self.failed(stage, f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - the poller survives a database outage
                log.exception("imap pass failed; reconnecting", extra={"mailbox": account.key})
                metrics.worker_error("imap")
                self.failed(stage, f"{type(exc).__name__}: {exc}")
            stop.wait(self.backoff.next())
        try:
            with self.runtime.sessions.begin() as session:
                imap_health.forget(session, account.key)
        except Exception:  # noqa: BLE001 - a row left behind only shows as silent later
            log.exception("could not remove the imap heartbeat row")
        log.info("imap poller stopped", extra={"mailbox": account.key})

    def _pass(self, client: IMAPClient) -> None:
        result = poll_once(self.runtime, client, max_tries=self.max_tries, account=self.account)
        self.seen_uid = result.highest_uid
        self.backoff.reset()
        now = self.runtime.clock.now()
        with self.runtime.sessions.begin() as session:
            since = imap_health.succeeded(session, self.account.key, now)
        metrics.imap_succeeded(self.account.key, now.timestamp())
        if since is not None:  # every mail that waited was taken, by UID, in this pass
            log.warning("imap mailbox works again; took %d waiting mails",
                        sum(result.counts.values()) - result.retrying, extra={
                            "mailbox": self.account.key, "failing_since": since.isoformat(),
                            **result.counts})
        elif any(result.counts.values()):
            log.info("imap pass", extra={"mailbox": self.account.key, **result.counts})

    def failed(self, stage: str, error: str) -> None:
        """Counted, shown by /healthz, and the operator mailed once, then once a day."""
        account, settings = self.account, self.runtime.settings
        log.warning("imap %s failed; trying again", stage,
                    extra={"mailbox": account.key, "stage": stage, "error": error})
        metrics.imap_failed(account.key, stage)
        try:
            with self.runtime.sessions.begin() as session:
                mailed = imap_health.failed(
                    session, account.key, stage, error, self.runtime.clock.now(),
                    operator=settings.operator_address, domain=settings.mail_domain)
        except Exception:  # noqa: BLE001 - the database is down too: the log and metric stay
            log.exception("could not record an imap failure", extra={"mailbox": account.key})
            return
        if mailed:
            log.warning("imap failure mailed to the operator",
                        extra={"mailbox": account.key, "to": settings.operator_address})
