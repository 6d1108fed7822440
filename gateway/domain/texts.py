"""Sentences people read, kept as catalogue entries (msgid and values) until an edge says them.

The domain and the services do not know who will read a refusal: a mail notice, a web page or
a command line. They raise and return `Text`: an English `str` (what logs, the CLI and the API
show) that also remembers its catalogue msgid and the values put into it, so mail and pages can
say the same sentence in the reader's language (`gateway.services.i18n.say`).

`_` makes a Text; `N_` only marks a msgid for `pybabel extract` (labels of codes). Both are the
default extraction keywords, so no extra option is needed (docs/translating.md). Placeholders
are `%(name)s`, the style of the catalogue's Jinja2 templates, so translators see one style.
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

    def __new__(cls, msgid: str, /, **params: object) -> Text:
        value = msgid % params if params else msgid
        made = super().__new__(cls, value)
        made.msgid = msgid
        made.params = params
        return made

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (an outbox row's payload) from which `from_json` makes the same Text."""
        return {"msgid": self.msgid, "params": {
            k: v.to_json() if isinstance(v, Text) else v for k, v in self.params.items()}}

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
        try:
            return cls(data["msgid"], **values)
        except (KeyError, TypeError, ValueError):
            return str(data["msgid"])


def _(msgid: str, /, **params: object) -> Text:
    """A catalogue sentence with its values: `_("ticket #%(n)s is closed", n=5)`."""
    return Text(msgid, **params)


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention pybabel extracts
    """Marks `msgid` for the catalogue and returns it unchanged (labels, said later)."""
    return msgid
