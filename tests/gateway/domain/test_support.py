"""Support subscriptions and refund reasons under the addons profile (seed 004), as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain import rules
from gateway.domain.errors import Conflict, UserError
from gateway.domain.facts import OrderFacts, Role, TicketType, VendorFacts
from gateway.domain.policy import policy_for
from gateway.domain.support import (
    SupportLine,
    SupportNeed,
    SupportRequired,
    check_support,
    shop_key,
    to_end,
)

ADDONS = policy_for("addons")
CLICKBANK = policy_for("clickbank")
NOW = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
SHOP = "https://shop-a.example"


def line(receipt: str = "BC1", *, sku: str = "module-1", shop: str | None = SHOP,
         starts: datetime = NOW - timedelta(days=30), until: datetime = NOW + timedelta(days=1),
         ended: bool = False) -> SupportLine:
    return SupportLine(receipt, sku, shop, starts, until, ended, Decimal("20.00"))


@pytest.mark.parametrize(("a", "b"), [
    ("https://www.Shop-A.example/", "shop-a.example"),
    ("http://shop-a.example", "https://shop-a.example/"),
    ("https://shop-a.example/fr/", "shop-a.example/fr"),
])
def test_shop_urls_name_the_same_shop(a: str, b: str) -> None:
    assert shop_key(a) == shop_key(b)


def test_different_shops_and_paths_differ() -> None:
    assert shop_key("https://shop-a.example") != shop_key("https://shop-b.example")
    assert shop_key("https://shop-a.example/fr") != shop_key("https://shop-a.example/de")


def test_a_valid_subscription_for_that_product_and_shop_covers() -> None:
    need = SupportNeed("module-1", "https://www.shop-a.example/", (line(),))
    assert check_support(need, NOW).receipt == "BC1"


def test_valid_until_is_the_last_instant_covered() -> None:
    need = SupportNeed("module-1", SHOP, (line(until=NOW),))
    check_support(need, NOW)
    with pytest.raises(SupportRequired, match=r"\(BC1\) expired on 2026-11-19T09:00:00Z"):
        check_support(need, NOW + timedelta(seconds=1))


def test_an_expired_subscription_says_to_renew_it() -> None:
    need = SupportNeed("module-1", SHOP, (line(until=NOW - timedelta(days=2)),))
    with pytest.raises(SupportRequired) as refused:
        check_support(need, NOW)
    assert refused.value.code == "support_required" and isinstance(refused.value, Conflict)
    assert "renew Business Care for module-1 (https://shop-a.example)" in (
        refused.value.message)


def test_a_subscription_for_another_shop_does_not_cover() -> None:
    need = SupportNeed("module-1", "https://shop-b.example", (line(),))
    with pytest.raises(SupportRequired) as refused:
        check_support(need, NOW)
    assert "yours covers https://shop-a.example" in refused.value.message
    assert "buy Business Care for module-1 (https://shop-b.example)" in refused.value.message


def test_a_subscription_for_another_product_does_not_cover() -> None:
    need = SupportNeed("module-2", SHOP, (line(),))
    with pytest.raises(SupportRequired, match="this order has none"):
        check_support(need, NOW)


def test_a_refunded_subscription_covers_nothing() -> None:
    need = SupportNeed("module-1", SHOP, (line(ended=True),))
    with pytest.raises(SupportRequired, match="was ended by a refund"):
        check_support(need, NOW)


def test_the_newest_of_several_covers() -> None:
    old = line("BC1", until=NOW - timedelta(days=1))
    new = line("BC2", starts=NOW - timedelta(days=1), until=NOW + timedelta(days=300))
    assert check_support(SupportNeed("module-1", SHOP, (old, new)), NOW).receipt == "BC2"


def test_no_shop_on_the_product_line_any_of_the_customers_subscriptions_covers() -> None:
    assert check_support(SupportNeed("module-1", None, (line(),)), NOW).receipt == "BC1"


def test_the_gate_is_the_addons_profiles_only() -> None:
    bare = OrderFacts(purchased_at=NOW - timedelta(days=3), amount=Decimal("47.00"),
                      support=SupportNeed("module-1", SHOP, ()))
    rules.check_open(CLICKBANK, TicketType.TECH_SUPPORT, Role.CUSTOMER, bare, VendorFacts(),
                     NOW, frozenset())
    with pytest.raises(SupportRequired):
        rules.check_open(ADDONS, TicketType.TECH_SUPPORT, Role.CUSTOMER, bare, VendorFacts(),
                         NOW, frozenset())


def test_a_product_refund_ends_its_subscriptions_on_that_shop_only() -> None:
    mine, other, done = line("BC1"), line("BC2", shop="https://shop-b.example"), line(
        "BC3", ended=True)
    assert [x.receipt for x in to_end("module-1", SHOP, [mine, other, done])] == ["BC1"]


# --- refund reasons ------------------------------------------------------------------------


def test_addons_customers_give_one_of_two_reasons() -> None:
    assert rules.refund_reasons(ADDONS, Role.CUSTOMER) == ("not_downloaded", "malfunction")
    assert rules.refund_reasons(ADDONS, Role.VENDOR) == ("not_downloaded", "malfunction", "other")
    assert rules.check_refund_reason(ADDONS, Role.CUSTOMER, "Not_Downloaded",
                                     asked_support=False) == "not_downloaded"
    with pytest.raises(UserError, match="needs a reason, one of: not_downloaded, malfunction"):
        rules.check_refund_reason(ADDONS, Role.CUSTOMER, None, asked_support=False)
    with pytest.raises(UserError, match="unknown reason 'not_satisfied'"):
        rules.check_refund_reason(ADDONS, Role.CUSTOMER, "not_satisfied", asked_support=True)


def test_a_malfunction_needs_an_earlier_tech_support_request() -> None:
    with pytest.raises(Conflict) as refused:
        rules.check_refund_reason(ADDONS, Role.CUSTOMER, "malfunction", asked_support=False)
    assert refused.value.code == "support_first"
    assert rules.check_refund_reason(ADDONS, Role.CUSTOMER, "malfunction",
                                     asked_support=True) == "malfunction"
    # the vendor grants it whatever the customer asked first
    assert rules.check_refund_reason(ADDONS, Role.VENDOR, "malfunction",
                                     asked_support=False) == "malfunction"


def test_a_conversion_without_a_reason_is_for_the_malfunction() -> None:
    assert rules.check_refund_reason(ADDONS, Role.CUSTOMER, None, asked_support=True,
                                     converting=True) == "malfunction"
    assert rules.check_refund_reason(CLICKBANK, Role.CUSTOMER, None, asked_support=True,
                                     converting=True) == "other"


def test_clickbank_reasons_are_unchanged() -> None:
    assert rules.check_refund_reason(CLICKBANK, Role.CUSTOMER, None,
                                     asked_support=False) == "other"
    assert rules.check_refund_reason(CLICKBANK, Role.CUSTOMER, "not_satisfied",
                                     asked_support=False) == "not_satisfied"
    assert rules.reason_codes(CLICKBANK, TicketType.REFUND, Role.CUSTOMER)[0] == "not_received"
