"""Policy profiles: the numbers of SPEC 3-7 as data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.domain.errors import ConfigError
from gateway.domain.policy import PROFILES, InactivityTrack, Policy, Window, policy_for


def test_clickbank_numbers() -> None:
    policy = policy_for("clickbank")
    assert policy.name == "clickbank"
    assert policy.customer_window == Window(60, "days")
    assert policy.vendor_window == Window(90, "days")
    assert policy.review_delay == timedelta(hours=24)
    assert policy.quick_delay == timedelta(minutes=5)
    assert policy.shipped_delay == timedelta(days=19)
    assert (policy.percent_min, policy.percent_max) == (1, 80)
    assert policy.weekend_pause is True
    assert policy.dispute_limit == 2
    assert policy.inactivity_customer_last == InactivityTrack(
        warnings=(timedelta(hours=48), timedelta(days=4)), close_after=timedelta(days=6))
    assert policy.inactivity_vendor_last == InactivityTrack(
        warnings=(timedelta(days=7),), close_after=timedelta(days=14))
    assert not policy.tech_support_needs_support_subscription
    assert not policy.refund_ends_support
    assert not policy.dollar_reply_approves_refund


def test_addons_numbers() -> None:
    policy = policy_for("addons")
    assert policy.customer_window == Window(1, "months")
    assert policy.vendor_window == Window(6, "months")
    assert policy.tech_support_needs_support_subscription
    assert policy.refund_ends_support
    assert policy.dollar_reply_approves_refund
    # the rest follows the clickbank numbers
    assert policy.review_delay == PROFILES["clickbank"].review_delay
    assert policy.inactivity_customer_last == PROFILES["clickbank"].inactivity_customer_last


def test_profiles_are_data() -> None:
    assert set(PROFILES) == {"clickbank", "addons"}
    assert all(isinstance(p, Policy) and p.name == name for name, p in PROFILES.items())


def test_settings_are_applied() -> None:
    policy = policy_for(" Addons ", weekend_pause=False, dispute_limit=5)
    assert (policy.name, policy.weekend_pause, policy.dispute_limit) == ("addons", False, 5)
    assert PROFILES["addons"].weekend_pause is True  # the profile itself is untouched


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="addons or clickbank"):
        policy_for("amazon")


def test_dispute_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        policy_for("clickbank", dispute_limit=0)


@pytest.mark.parametrize(
    ("window", "start", "last"),
    [
        (Window(60, "days"), date(2026, 9, 1), date(2026, 10, 31)),
        (Window(90, "days"), date(2026, 9, 1), date(2026, 11, 30)),
        (Window(1, "months"), date(2026, 1, 31), date(2026, 2, 28)),
        (Window(1, "months"), date(2028, 1, 31), date(2028, 2, 29)),
        (Window(1, "months"), date(2026, 1, 15), date(2026, 2, 15)),
        (Window(6, "months"), date(2026, 8, 31), date(2027, 2, 28)),
        (Window(6, "months"), date(2026, 1, 31), date(2026, 7, 31)),
    ],
)
def test_window_last_date(window: Window, start: date, last: date) -> None:
    assert window.last_date(start) == last


@pytest.mark.parametrize(
    ("window", "text"),
    [(Window(60, "days"), "60 days"), (Window(1, "months"), "1 month"),
     (Window(6, "months"), "6 months"), (Window(1, "days"), "1 day")],
)
def test_window_reads_like_prose(window: Window, text: str) -> None:
    assert str(window) == text
