"""A vendor's reply templates and signature: kept, checked when saved, put into replies.

Templates and the signature are Jinja2 run in `jinja2.sandbox.SandboxedEnvironment` with
`StrictUndefined`, over the ticket's safe fields only (`FIELDS`), formatted in the vendor's
locale and time zone. A text that does not parse, names a field that is not one of them,
or fails when rendered (a sandbox refusal such as `{{ ''.__class__ }}` included) is refused
when it is saved, with its line and the reason, so a reply never fails on it later.

The signature goes under every message a vendor writes on a ticket (a reply, or the comment
of an action; never a notice, which is not a message), once: a text that already ends with
it, or has it anywhere, such as the vendor's own mail client put there, is left as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import Role
from gateway.domain.locales import LOCALES
from gateway.domain.texts import _
from gateway.services import i18n
from gateway.services.context import Actor
from store.models import Order, Product, ReplyTemplate, Ticket, Vendor

# What a template may show of a ticket: nothing else of the ticket, order or vendor is there.
FIELDS: Final = ("customer_name", "product", "receipt", "ticket", "deadline", "vendor")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_CHARS: Final = 20_000
SIGNATURE_SEPARATOR: Final = "-- "  # RFC 3676 section 4.3


class _Sandbox(SandboxedEnvironment):
    """The sandbox, also refusing `*` and `**` that would build something huge (`{{ 'a' *
    10**9 }}` would take the memory of the process that checks or renders it)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        numbers = [v for v in (left, right) if isinstance(v, int)]
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("a power above 64 is not allowed in a template")
        if operator == "*" and any(abs(n) > 1000 for n in numbers) and len(numbers) < 2:
            raise SecurityError("repeating a text more than 1000 times is not allowed")
        return super().call_binop(context, operator, left, right)


@functools.cache
def _environment() -> SandboxedEnvironment:
    return _Sandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                    lstrip_blocks=True)


def _sample(locale: str) -> dict[str, Any]:
    """Fields as a real ticket has them, to try a text on when it is saved."""
    return {"customer_name": "Ann Example", "product": "Product", "receipt": "ABCD1234",
            "ticket": 1042, "vendor": "vendor",
            "deadline": i18n.format_when(datetime(2026, 1, 31, 9, 0, tzinfo=UTC), locale)}


def _line_of(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja2 rewrites the traceback so that the
    template's frames carry its own line numbers)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def check_text(body: str, what: str) -> str:
    """`body` if it is a template that parses, names only FIELDS and renders in every
    locale; else UserError `what, line N: reason` (code `invalid_template`)."""
    if len(body) > MAX_CHARS:
        raise UserError(f"{what} is {len(body)} characters long; at most {MAX_CHARS}",
                        code="invalid_template")
    env = _environment()
    try:
        tree = env.parse(body)
    except TemplateSyntaxError as exc:
        raise UserError(f"{what}, line {exc.lineno}: {exc.message}",
                        code="invalid_template") from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(FIELDS))
    if unknown:
        first = min((n for n in tree.find_all(nodes.Name) if n.name in unknown),
                    key=lambda n: n.lineno)
        raise UserError(f"{what}, line {first.lineno}: unknown field {first.name!r}; the "
                        "fields are " + ", ".join(FIELDS), code="invalid_template")
    for locale in LOCALES:
        try:
            _compiled(body).render(_sample(locale))
        except Exception as exc:  # whatever a template can raise: a sandbox refusal too
            at = _line_of(exc)
            where = f", line {at}" if at else ""
            raise UserError(f"{what}{where}: {exc}", code="invalid_template") from None
    return body


@functools.lru_cache(maxsize=256)
def _compiled(body: str) -> Any:
    return _environment().from_string(body)


def render(body: str, fields: Mapping[str, Any]) -> str:
    """A checked template with a ticket's fields; a failure now is a UserError."""
    try:
        return str(_compiled(body).render(dict(fields))).strip()
    except Exception as exc:  # checked when saved; a field's value can still surprise
        raise UserError(f"the template could not be used: {exc}",
                        code="invalid_template") from None


_FIELDS_OF_TICKET = (
    select(Ticket.number, Ticket.process_at, Order.receipt, Order.customer_name,
           Order.customer_email, Product.title, Vendor.id.label("vendor_id"), Vendor.nickname,
           Vendor.locale, Vendor.timezone, Vendor.signature)
    .join(Order, Ticket.order_id == Order.id).join(Product, Order.product_id == Product.id)
    .join(Vendor, Order.vendor_id == Vendor.id))


def _ticket_row(session: Session, ticket_id: int) -> Any:
    return session.execute(_FIELDS_OF_TICKET.where(Ticket.id == ticket_id)).one()


def _fields(row: Any) -> dict[str, Any]:
    """The safe fields of a ticket, in the vendor's locale and time zone."""
    return {"customer_name": row.customer_name or row.customer_email, "product": row.title,
            "receipt": row.receipt, "ticket": row.number, "vendor": row.nickname,
            "deadline": i18n.format_when(row.process_at, row.locale, row.timezone)
            if row.process_at else ""}


# --- in replies ----------------------------------------------------------------------------


def signed(session: Session, ticket_id: int, actor: Actor, text: str) -> str:
    """`text` with the vendor's signature under it when a vendor wrote it, once."""
    if actor.role is not Role.VENDOR:
        return text
    row = _ticket_row(session, ticket_id)
    if not row.signature:
        return text
    signature = render(row.signature, _fields(row))
    if not signature or _squeezed(signature) in _squeezed(text):
        return text
    return f"{text.rstrip()}\n\n{SIGNATURE_SEPARATOR}\n{signature}"


def _squeezed(text: str) -> str:
    """Text compared for "already there": mail clients rewrap lines and quote markers vary."""
    return " ".join(text.replace(">", " ").split()).casefold()


def with_template(session: Session, ticket_id: int, actor: Actor, name: str,
                  own_text: str) -> str:
    """A reply that uses the vendor's template `name`: the template with the ticket's
    fields, then what the vendor wrote besides (if anything)."""
    if actor.role is not Role.VENDOR:
        raise UserError(_("reply templates are the vendor's; write your reply as text"),
                        code="forbidden")
    row = _ticket_row(session, ticket_id)
    found = session.execute(select(ReplyTemplate.body).where(
        ReplyTemplate.vendor_id == row.vendor_id,
        ReplyTemplate.name == name.strip().lower())).scalar_one_or_none()
    if found is None:
        known = template_names(session, row.vendor_id)
        if not known:
            raise NotFound(_("you have no reply template '%(name)s', and no templates yet",
                             name=name), code="unknown_template")
        raise NotFound(_("you have no reply template '%(name)s'; yours are: %(names)s",
                         name=name, names=", ".join(known)), code="unknown_template")
    rendered = render(found, _fields(row))
    own = own_text.strip()
    return f"{rendered}\n\n{own}" if own else rendered


def template_names(session: Session, vendor_id: int) -> list[str]:
    return list(session.execute(select(ReplyTemplate.name).where(
        ReplyTemplate.vendor_id == vendor_id).order_by(ReplyTemplate.name)).scalars())
