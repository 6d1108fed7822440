"""What a refund gives back: amounts, percentages and quantities checked against what is left.

Refund amounts are rounded half-up to cents and capped at what is left; a refund that comes to
0.00 is refused. What is left is `refundable_base - refunded_amount` (a recurring product's
last bill, less what was refunded on the order).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from gateway.domain.errors import Conflict, UserError
from gateway.domain.facts import OrderFacts, RefundKind, VendorFacts
from gateway.domain.policy import Policy
from gateway.domain.texts import Text, _

CENT = Decimal("0.01")
# No order is worth this much; below it every amount has room for its cents in Decimal's
# 28 digits and in the store's 64-bit whole cents, so rounding can never fail.
MAX_AMOUNT = Decimal("1000000000.00")


def shown(value: Decimal) -> str:
    """A number as a person wrote it, cut short when it is absurdly long (`1E+999999`)."""
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def checked_money(value: Decimal, what: str) -> Decimal:
    """A stored amount: finite, from 0 to MAX_AMOUNT, whole cents."""
    if not value.is_finite() or value < 0:
        raise UserError(_("%(what)s %(value)s must be zero or more", what=what,
                          value=shown(value)), code="invalid_field")
    if value > MAX_AMOUNT:
        raise UserError(_("%(what)s %(value)s is more than an order can be worth (at most "
                          "%(most)s)", what=what, value=shown(value), most=f"{MAX_AMOUNT:,}"),
                        code="invalid_field")
    if value != value.quantize(CENT):
        raise UserError(_("%(what)s %(value)s has more than two decimals", what=what,
                          value=shown(value)), code="invalid_field")
    return value.quantize(CENT)


def amount_left(order: OrderFacts) -> Decimal:
    """What a full refund would still give back (the last bill for a recurring product)."""
    return max(order.refundable_base - order.refunded_amount, Decimal("0"))


def check_refundable(order: OrderFacts) -> None:
    if amount_left(order) <= 0:
        raise Conflict(_(
            "this order has already been refunded in full (%(amount)s); there is nothing left "
            "to refund", amount=f"{order.refunded_amount:.2f}"))


def refund_amount(order: OrderFacts, kind: RefundKind, value: Decimal | None,
                  vendor: VendorFacts, *, policy: Policy | None = None) -> Decimal:
    """Money a refund of this kind returns; never more than what is left unrefunded.

    Whether the vendor may choose the kind is check_action's question; `vendor` is part of
    the interface only. `policy` gives the percent range (1-80 when omitted).
    """
    left = amount_left(order)
    if left <= 0:
        check_refundable(order)
    if kind is RefundKind.FULL:
        amount = left
    elif kind is RefundKind.AMOUNT:
        amount = _checked_amount(_required(value, kind), left)
    elif kind is RefundKind.PERCENT:
        low, high = (policy.percent_min, policy.percent_max) if policy else (1, 80)
        percent = _required(value, kind)
        if not low <= percent <= high:
            raise UserError(_("a refund percentage must be from %(low)s to %(high)s, not "
                              "%(value)s", low=low, high=high, value=shown(percent)))
        amount = order.refundable_base * percent / 100
    else:
        count = _checked_quantity(_required(value, kind), order.quantity)
        amount = order.refundable_base / order.quantity * count
    result = min(amount.quantize(CENT, rounding=ROUND_HALF_UP), left)
    if result <= 0:
        raise UserError(_("this refund comes to 0.00; choose a larger share"))
    return result


def _required(value: Decimal | None, kind: RefundKind) -> Decimal:
    """The value a partial refund of `kind` needs, as a number."""
    if value is None:
        raise UserError(missing_value(kind))
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise UserError(not_a_number(kind, repr(value))) from None
    if not number.is_finite():
        raise UserError(not_a_number(kind, shown(number)))
    return number


# whole sentences per kind, so each language names the value with its own article and case
def missing_value(kind: RefundKind) -> Text:
    """The refusal of a partial refund of `kind` given no value."""
    if kind is RefundKind.AMOUNT:
        return _("a partial refund by amount needs the amount")
    if kind is RefundKind.PERCENT:
        return _("a partial refund by percentage needs the percentage")
    return _("a partial refund by quantity needs the number of items")


def not_a_number(kind: RefundKind, value: str) -> Text:
    """The refusal of a partial refund of `kind` whose value is not a number."""
    if kind is RefundKind.AMOUNT:
        return _("%(value)s is not a valid amount", value=value)
    if kind is RefundKind.PERCENT:
        return _("%(value)s is not a valid percentage", value=value)
    return _("%(value)s is not a valid number of items", value=value)


def _checked_amount(value: Decimal, left: Decimal) -> Decimal:
    if value <= 0:
        raise UserError(_("a partial refund must be more than 0.00, not %(value)s",
                          value=shown(value)))
    # compared before rounding: rounding an absurd amount to cents would itself fail
    if value > left + CENT / 2 or value.quantize(CENT, rounding=ROUND_HALF_UP) > left:
        raise UserError(_(
            "a partial refund of %(value)s is more than the %(left)s left unrefunded on this "
            "order", value=shown(value), left=f"{left:.2f}"))
    return value


def _checked_quantity(value: Decimal, quantity: int) -> int:
    if quantity <= 1:
        raise UserError(_("this order has a quantity of 1; a refund by quantity needs more "
                          "items"))
    if value != value.to_integral_value() or not 1 <= value < quantity:
        raise UserError(_(
            "a refund by quantity must be a whole number from 1 to %(most)s (the order has "
            "%(quantity)s), not %(value)s", most=quantity - 1, quantity=quantity,
            value=shown(value)))
    return int(value)
