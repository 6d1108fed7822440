"""Sentences a mail builds from data, in the reader's language: who changed what, the
`#commands` the reader may use, what to do with physical goods, whom the mail is from.

The English text is the catalogue's msgid (`gateway.services.i18n`); each locale's words are
in its `.po` file. The `#commands` themselves stay as written in every language: they are
what a reply must say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from gateway.domain.facts import Action
from gateway.domain.texts import N_
from gateway.services import i18n

# who made a change, as the start of a sentence
_BY: Final = {
    "customer": N_("The customer"),
    "vendor": N_("The vendor"),
    "staff": N_("Customer service"),
    "system": N_("The system"),
}


def change_line(kind: str, actor_role: str, old: str | None, new: str | None,
                note: str | None, locale: str, money: Callable[[str], str]) -> str:
    """What one change did, as its event records it (`money` shows an amount).

    Two changes never read alike, and a mail rendered late still names this change, not the
    ticket's state by then.
    """
    def say(msgid: str, **values: str) -> str:
        values["by"] = i18n.gettext(_BY.get(actor_role, "The system"), locale=locale)
        return i18n.gettext(msgid, locale=locale) % values

    if kind == "type":
        return say(N_("%(by)s changed the type: %(old)s → %(new)s."),
                   old=i18n.label("type", old, locale) or (old or ""),
                   new=i18n.label("type", new, locale) or (new or ""))
    if kind == "refund_kind":
        return say(N_("%(by)s changed the refund type: %(old)s → %(new)s (%(amount)s)."),
                   old=i18n.label("refund_kind", old or "full", locale),
                   new=i18n.label("refund_kind", new, locale) or (new or ""),
                   amount=money(note or ""))
    if kind == "process_at" and note == "please_refund":
        return say(N_("%(by)s asked for the request to be processed now."))
    if kind == "status" and new == "open":
        return say(N_("%(by)s reopened the ticket."))
    if kind == "dispute":
        return say(N_("%(by)s did not agree to the vendor's change: the request is open again."))
    return say(N_("%(by)s changed the ticket."))


# `#command` syntax and what it does; `refund` says different things to the two sides
_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "close": ("#close", N_("close the ticket")),
    "refund.tech_support": ("#refund",
                            N_("turn this tech support request into a refund request")),
    "refund": ("#refund", N_("Please Refund: process the request within 5 minutes")),
    "techsupport": ("#techsupport", N_("change it to a tech support request (no refund)")),
    "full": ("#full", N_("refund the full amount")),
    "partial": ("#partial %(amount)s", N_("refund only this amount")),
    "percent": ("#percent %(n)s", N_("refund this percentage (1 to 80)")),
    "quantity": ("#quantity %(n)s", N_("refund this many items")),
    "returned": ("#returned", N_("the goods came back: process the refund now")),
    "escalate": ("#escalate %(reason)s", N_("ask customer service to step in")),
    "agree": ("#agree", N_("agree to the vendor's change")),
    "dispute": ("#dispute", N_("I did not agree: the request comes back and is processed"
                               " within 5 minutes")),
}


def command_lines(actions: Sequence[Action], ticket_type: str | None, locale: str
                  ) -> list[tuple[str, str]]:
    """(syntax, what it does) of each action's `#command` on a ticket of `ticket_type`, in
    the reader's language (`#refund` turns tech support into a refund, and is the vendor's
    Please Refund on a refund or cancellation)."""
    placeholders = {"amount": i18n.gettext(N_("AMOUNT"), locale=locale),
                    "n": "N", "reason": i18n.gettext(N_("REASON"), locale=locale)}
    lines = []
    for action in actions:
        key = action.value
        if action is Action.REFUND and ticket_type == "tech_support":
            key = "refund.tech_support"
        found = _COMMANDS.get(key)
        if found is None:
            continue
        syntax, meaning = found
        lines.append((syntax % placeholders if "%(" in syntax else syntax,
                      i18n.gettext(meaning, locale=locale)))
    return lines


def return_line(locale: str, audience: str, *, shipped: bool, return_info: bool,
                vendor_address: str) -> str:
    """What happens to physical goods once their refund is processed, for one side."""
    if audience == "vendor":
        if not shipped:
            msgid = N_("Do not ship this order: it has been refunded.")
        elif return_info:
            msgid = N_("The customer was asked to send the goods back as your return"
                       " information says.")
        else:
            msgid = N_("The customer was asked to send the goods back and to write to you"
                       " (%(address)s) for the return address.")
    elif not shipped:
        msgid = N_("The goods had not been shipped: they will not be sent, and there is"
                   " nothing to return.")
    elif return_info:
        msgid = N_("If you have not sent the goods back yet, please return them as the"
                   " vendor's return information says; write to %(address)s with any"
                   " question.")
    else:
        msgid = N_("If the goods reach you, please send them back to the vendor: write to"
                   " %(address)s for the return address, and keep the proof of postage.")
    text = i18n.gettext(msgid, locale=locale)
    return text % {"address": vendor_address} if "%(" in text else text


def from_name(locale: str, name: str) -> str:
    """The display name of a mail's `From:`: "Acme Support" for the vendor named acme."""
    return i18n.gettext(N_("%(name)s Support"), locale=locale) % {"name": name}
