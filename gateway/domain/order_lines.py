"""What an order line from the marketplace may say: its own dates and amounts, and what we did.

Pure, like the other rules: each function is handed the instant it judges and returns every
problem it finds (an import reports all of a line's errors at once, not only the first).

Decisions where the spec is silent:
- Nothing is imported from the future: `purchased_at`, a bill's `at` and `shipped_at` must not
  be after the instant of the import; a bill or a shipment never comes before the purchase.
- A bill is never more than the order's amount (a recurring product's bill is one period's
  price); the bills of a one-time purchase together are not more than its amount either.
- What we recorded wins over an import (SPEC 3: a cancellation stops future bills): a
  subscription a processed ticket of ours cancelled stays cancelled whatever the line says;
  a bill dated after that cancellation is refused; a bill we refunded may not be removed or
  changed; the amount may not drop below what we refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway.domain.clock import format_instant


@dataclass(frozen=True)
class Recorded:
    """What our own processed tickets did to one order."""

    cancelled_at: datetime | None = None  # when one of our tickets stopped the subscription
    cancelled_by: int | None = None  # that ticket's number
    refunded_amount: Decimal = Decimal("0")
    refunded_by: tuple[int, ...] = ()  # numbers of the tickets that refunded it
    # (at, amount, refunded) of each bill we refunded part or all of
    refunded_bills: tuple[tuple[datetime, Decimal, Decimal], ...] = ()


def _at(instant: datetime) -> str:
    return format_instant(instant) or ""


def _tickets(numbers: tuple[int, ...]) -> str:
    return ", ".join(f"#{n}" for n in numbers) or "our records"


def line_problems(*, purchased_at: datetime, amount: Decimal, recurring: bool,
                  payments: list[tuple[datetime, Decimal]], shipped_at: datetime | None,
                  now: datetime) -> list[str]:
    """Every way the line's dates and amounts contradict each other or `now`."""
    problems = []
    if purchased_at > now:
        problems.append(f"purchased_at {_at(purchased_at)} is in the future (it is now "
                        f"{_at(now)})")
    for at, paid in payments:
        if at > now:
            problems.append(f"the payment of {_at(at)} is in the future (it is now "
                            f"{_at(now)})")
        if at < purchased_at:
            problems.append(f"the payment of {_at(at)} is before purchased_at "
                            f"{_at(purchased_at)}")
        if paid > amount:
            problems.append(f"the payment of {_at(at)} ({paid:.2f}) is more than the order's "
                            f"amount ({amount:.2f})")
    total = sum((paid for _, paid in payments), Decimal("0"))
    if not recurring and len(payments) > 1 and total > amount:
        problems.append(f"the payments add up to {total:.2f}, more than the order's amount "
                        f"({amount:.2f})")
    if shipped_at is not None and shipped_at > now:
        problems.append(f"shipped_at {_at(shipped_at)} is in the future (it is now "
                        f"{_at(now)})")
    elif shipped_at is not None and shipped_at < purchased_at:
        problems.append(f"shipped_at {_at(shipped_at)} is before purchased_at "
                        f"{_at(purchased_at)}")
    return problems


def recorded_problems(recorded: Recorded, *, amount: Decimal,
                      payments: list[tuple[datetime, Decimal]],
                      stored_bills: frozenset[datetime]) -> list[str]:
    """Every way a re-imported line would undo a cancellation or refund we recorded.
    `stored_bills`: the dates of the bills the order has now."""
    problems = []
    if recorded.cancelled_at is not None:
        for at, _ in payments:
            if at > recorded.cancelled_at and at not in stored_bills:
                problems.append(
                    f"the payment of {_at(at)} comes after the subscription was cancelled on "
                    f"{_at(recorded.cancelled_at)} (ticket #{recorded.cancelled_by}), and a "
                    "cancelled subscription takes no further bills")
    kept = set(payments)
    for at, paid, refunded in recorded.refunded_bills:
        if (at, paid) not in kept:
            problems.append(
                f"the payment of {_at(at)} ({paid:.2f}) was refunded ({refunded:.2f}, ticket "
                f"{_tickets(recorded.refunded_by)}) and must stay in the line unchanged")
    if amount < recorded.refunded_amount:
        problems.append(
            f"amount {amount:.2f} is less than the {recorded.refunded_amount:.2f} already "
            f"refunded (ticket {_tickets(recorded.refunded_by)})")
    return problems


def subscription_after_import(line_says: str | None, recorded: Recorded) -> str | None:
    """The subscription state an import leaves: ours when one of our tickets cancelled it."""
    return "cancelled" if recorded.cancelled_at is not None else line_says
