"""Support subscriptions (the addons profile's Business Care): which one covers a request.

A support subscription is an order line of kind `support` for one product (`covers_sku`) on
one shop (`shop_url`), valid from its purchase until `valid_until`. Tech support on a product
needs one valid at the request's instant for that product and that shop (seed 004: "un
abonnement Business Care en cours de validité pour le produit et l'URL correspondants").

Decisions where the seed is silent:
- Shop URLs are compared without their scheme, a leading `www.`, a trailing `/`, and case
  in the host: `https://www.Shop.example/` and `shop.example` are the same shop.
- The shop a product runs on is its order line's `shop_url`. A product line without one is
  covered by a subscription of the same customer for that product, whatever its shop.
- A subscription ended by a refund (of itself or of its product) covers nothing, even
  before its `valid_until`. `valid_until` itself is still inside (the last instant covered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from gateway.domain.clock import format_instant
from gateway.domain.errors import Conflict
from gateway.domain.texts import Text, _

SUPPORT_KIND = "support"  # the order line's (and product's) kind


@dataclass(frozen=True)
class SupportLine:
    """One support subscription as the rules read it."""

    receipt: str
    covers_sku: str
    shop_url: str | None
    starts_at: datetime
    valid_until: datetime
    ended: bool = False  # refunded or ended by us
    amount: Decimal = Decimal("0")

    def valid_at(self, now: datetime) -> bool:
        return not self.ended and self.starts_at <= now <= self.valid_until


@dataclass(frozen=True)
class SupportNeed:
    """What a tech-support request on one order needs: the product and the shop, and the
    subscriptions that could cover it (its SKU's, on that shop or the customer's)."""

    sku: str
    shop_url: str | None
    lines: tuple[SupportLine, ...] = ()


class SupportRequired(Conflict):
    """No valid support subscription covers the request: the message says what to renew."""

    code = "support_required"


def shop_key(url: str | None) -> str:
    """The shop a URL names, for comparing: no scheme, no `www.`, no trailing `/`."""
    if not url:
        return ""
    text = url.strip()
    parts = urlsplit(text if "//" in text else f"//{text}")
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    return f"{host}{port}{path}"


def covering(need: SupportNeed) -> list[SupportLine]:
    """The subscriptions for the need's product on its shop (any shop when it has none)."""
    wanted = shop_key(need.shop_url)
    return [line for line in need.lines if line.covers_sku == need.sku
            and (not wanted or shop_key(line.shop_url) == wanted)]


def check_support(need: SupportNeed, now: datetime) -> SupportLine:
    """The subscription that covers the need at `now`; SupportRequired says what to renew."""
    mine = covering(need)
    valid = [line for line in mine if line.valid_at(now)]
    if valid:
        return max(valid, key=lambda line: line.valid_until)
    # the product with its shop, as the sentences name it: `module-1 (https://shop.example)`
    product = f"{need.sku} ({need.shop_url})" if need.shop_url else need.sku
    if mine:
        latest = max(mine, key=lambda line: line.valid_until)
        raise SupportRequired(_state_sentence(latest, product, now))
    others = sorted({line.shop_url or "" for line in need.lines
                     if line.covers_sku == need.sku and line.shop_url})
    if others:
        raise SupportRequired(_(
            "tech support for %(product)s needs a Business Care subscription for that shop; "
            "yours covers %(shops)s: buy Business Care for %(product)s, or write about the "
            "shop it covers", product=product, shops=", ".join(others)))
    raise SupportRequired(_(
        "tech support for %(product)s needs a Business Care subscription, and this order has "
        "none: buy Business Care for %(product)s, then ask again", product=product))


def _state_sentence(latest: SupportLine, product: str, now: datetime) -> Text:
    """Why the customer's own subscription for that shop does not cover now."""
    if latest.ended:
        return _("tech support for %(product)s needs a valid Business Care subscription, and "
                 "yours (%(receipt)s) was ended by a refund: buy Business Care for "
                 "%(product)s, then ask again", product=product, receipt=latest.receipt)
    if latest.starts_at > now:
        return _("tech support for %(product)s needs a valid Business Care subscription, and "
                 "yours (%(receipt)s) starts on %(at)s: ask again from then",
                 product=product, receipt=latest.receipt, at=format_instant(latest.starts_at))
    return _("tech support for %(product)s needs a valid Business Care subscription, and "
             "yours (%(receipt)s) expired on %(at)s: renew Business Care for %(product)s, then "
             "ask again", product=product, receipt=latest.receipt,
             at=format_instant(latest.valid_until))


def to_end(product_sku: str, shop_url: str | None,
           lines: Sequence[SupportLine]) -> list[SupportLine]:
    """The subscriptions a refund of the product also refunds and ends (seed 004: "le
    remboursement de l'abonnement au service Business Care associé, ainsi que sa
    résiliation"): every one not ended yet for that product on that shop."""
    need = SupportNeed(product_sku, shop_url, tuple(lines))
    return [line for line in covering(need) if not line.ended]
