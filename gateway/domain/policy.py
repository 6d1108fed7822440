"""Policy profiles: the numbers of the refund and support rules, held as data (SPEC 7)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from gateway.domain.calendar import add_months
from gateway.domain.errors import ConfigError
from gateway.domain.reasons import REFUND_REASONS


@dataclass(frozen=True)
class Window:
    """How long after the sale (or bill) a refund may be asked for or granted.

    Windows count calendar dates in the vendor's zone with the start day as day 0
    (SPEC 11.3): with 60 days, day 60 is allowed and day 61 is not; "1 month" is the
    same date next month, clamped to the month's end (Jan 31 + 1 month = Feb 28).
    """

    count: int
    unit: Literal["days", "months"]

    def last_date(self, start: date) -> date:
        """The last local date inside the window that starts on `start`."""
        if self.unit == "days":
            return start + timedelta(days=self.count)
        return add_months(start, self.count)

    def __str__(self) -> str:
        singular = self.unit[:-1]
        return f"{self.count} {singular if self.count == 1 else self.unit}"


@dataclass(frozen=True)
class InactivityTrack:
    """Tech-support inactivity for one side having spoken last: business time since then."""

    warnings: tuple[timedelta, ...]
    close_after: timedelta


@dataclass(frozen=True)
class Policy:
    name: str
    customer_window: Window
    vendor_window: Window  # vendors and staff
    review_delay: timedelta = timedelta(hours=24)  # business time
    quick_delay: timedelta = timedelta(minutes=5)  # real time
    shipped_delay: timedelta = timedelta(days=19)  # real (calendar) time
    weekend_pause: bool = True
    dispute_limit: int = 2
    percent_min: int = 1
    percent_max: int = 80
    # the customer spoke last (the vendor has not answered)
    inactivity_customer_last: InactivityTrack = InactivityTrack(
        warnings=(timedelta(hours=48), timedelta(days=4)), close_after=timedelta(days=6)
    )
    # the vendor (or staff) spoke last (the customer has not answered)
    inactivity_vendor_last: InactivityTrack = InactivityTrack(
        warnings=(timedelta(days=7),), close_after=timedelta(days=14)
    )
    tech_support_needs_support_subscription: bool = False
    refund_ends_support: bool = False
    # a vendor's refund in a reply approves it: the customer and staff are told (seed's "$")
    dollar_reply_approves_refund: bool = False
    # refund reason codes: what vendors and staff may give, and the customer's own list
    # (None: the same); a customer's reason in `reasons_after_support` needs an earlier
    # tech-support ticket on the order; `reason_required`: a customer must give one
    refund_reasons: tuple[str, ...] = REFUND_REASONS
    customer_refund_reasons: tuple[str, ...] | None = None
    reasons_after_support: tuple[str, ...] = ()
    reason_required: bool = False
    # the seed's communication tips in the vendor's copy of `opened` mails (addons)
    vendor_tips: bool = False
    # an order line's `shop_url` is where the product is downloaded (clickbank: the vendor's
    # page); under addons it is the customer's own shop the module runs on, never a download
    shop_url_is_download: bool = True


PROFILES: dict[str, Policy] = {
    "clickbank": Policy(
        name="clickbank",
        customer_window=Window(60, "days"),
        vendor_window=Window(90, "days"),
    ),
    "addons": Policy(
        name="addons",
        customer_window=Window(1, "months"),
        vendor_window=Window(6, "months"),
        tech_support_needs_support_subscription=True,
        refund_ends_support=True,
        dollar_reply_approves_refund=True,
        # seed 004: "le produit n'a pas été téléchargé"; "le produit présente des
        # dysfonctionnements techniques (sous condition que le Client vous ait préalablement
        # sollicité au titre du SAV)"; a vendor granting one may also say `other`
        refund_reasons=("not_downloaded", "malfunction", "other"),
        customer_refund_reasons=("not_downloaded", "malfunction"),
        reasons_after_support=("malfunction",),
        reason_required=True,
        vendor_tips=True,
        shop_url_is_download=False,
    ),
}


def policy_for(name: str, *, weekend_pause: bool = True, dispute_limit: int = 2) -> Policy:
    """The named profile with the marketplace's own settings applied."""
    try:
        profile = PROFILES[name.strip().lower()]
    except KeyError:
        known = " or ".join(sorted(PROFILES))
        raise ConfigError(f"unknown policy {name!r}: use {known}") from None
    if dispute_limit < 1:
        raise ConfigError(f"dispute_limit must be at least 1, not {dispute_limit}")
    return dataclasses.replace(profile, weekend_pause=weekend_pause, dispute_limit=dispute_limit)
