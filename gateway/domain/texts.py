"""Sentences people read, kept as catalogue entries (msgid and values) until an edge says them.

The domain and the services do not know who will read a refusal: a mail notice, a web page or
a command line. They raise and return `Text`: an English `str` (what logs, the CLI and the API
show) that also remembers its catalogue msgid and the values put into it, so mail and pages can
say the same sentence in the reader's language (`gateway.services.i18n.say`).

`_` makes a Text; `ngettext` makes one whose words follow a count (each language's own plural
forms: `%(num)d day` / `%(num)d days`); `N_` only marks a msgid for `pybabel extract` (labels
of codes). All three are default extraction keywords, so no extra option is needed
(docs/translating.md). Placeholders are `%(name)s`, the style of the catalogue's Jinja2
templates, so translators see one style.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Text(str):
    """An English sentence that can be said again in another language.

    `params` may hold other Texts (a refusal that quotes a rule's reason): each is said in the
    same language. Anything else is shown as it is (numbers, receipts, amounts, addresses).
    """

    msgid: str
    params: Mapping[str, object]
    # a sentence with a count: its English plural, said for `params["num"]` (`ngettext`)
    plural: str | None

    def __new__(cls, msgid: str, /, **params: object) -> Text:
        return cls._made(msgid, None, params)

    @classmethod
    def counted(cls, singular: str, plural: str, params: Mapping[str, object]) -> Text:
        """A sentence with a count (`params["num"]`): English says `singular` for 1."""
        return cls._made(singular, plural, params)

    @classmethod
    def _made(cls, msgid: str, plural: str | None, params: Mapping[str, object]) -> Text:
        english = plural if plural is not None and params.get("num") != 1 else msgid
        made = str.__new__(cls, english % params if params else english)
        made.msgid = msgid
        made.plural = plural
        made.params = params
        return made

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (an outbox row's payload) from which `from_json` makes the same Text."""
        data: dict[str, Any] = {"msgid": self.msgid, "params": {
            k: v.to_json() if isinstance(v, Text) else v for k, v in self.params.items()}}
        if self.plural is not None:
            data["plural"] = self.plural
        return data

    @classmethod
    def from_json(cls, data: object) -> Text | str | None:
        """The Text `to_json` wrote; a plain string (rows written before Texts) as it is."""
        if data is None or isinstance(data, str):
            return data
        if not isinstance(data, Mapping) or not isinstance(data.get("msgid"), str):
            return str(data)
        params = data.get("params") or {}
        values = {str(k): cls.from_json(v) if isinstance(v, Mapping) else v
                  for k, v in params.items()}
        plural = data.get("plural")
        try:
            if isinstance(plural, str):
                return cls.counted(data["msgid"], plural, values)
            return cls(data["msgid"], **values)
        except (KeyError, TypeError, ValueError):
            return str(data["msgid"])


def _(msgid: str, /, **params: object) -> Text:
    """A catalogue sentence with its values: `_("ticket #%(n)s is closed", n=5)`."""
    return Text(msgid, **params)


def ngettext(singular: str, plural: str, num: int, /, **params: object) -> Text:
    """A sentence whose words follow `num` (`%(num)d`), in each language's plural forms:
    `ngettext("up to %(num)d day", "up to %(num)d days", 60)`. One msgid per whole sentence;
    the count is the only number that may change its words."""
    return Text.counted(singular, plural, {"num": num, **params})


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention pybabel extracts
    """Marks `msgid` for the catalogue and returns it unchanged (labels, said later)."""
    return msgid
