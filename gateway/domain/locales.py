"""The languages people read us in: one list for mail, pages and settings."""

from __future__ import annotations

from typing import Final

from gateway.domain.errors import UserError

LOCALES: Final = ("en", "fr", "de", "pt")
DEFAULT_LOCALE: Final = "en"


def pick_locale(locale: str | None) -> str:
    """The locale to write in: a known one (or its language, from `pt-BR` or `de_AT`), else
    English."""
    if locale in LOCALES:
        return str(locale)
    short = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return short if short in LOCALES else DEFAULT_LOCALE


def check_locale(locale: str) -> str:
    """`locale` if it is one we write in, else a UserError listing them."""
    if locale not in LOCALES:
        raise UserError(f"locale {locale!r} must be one of {', '.join(LOCALES)}",
                        code="invalid_field")
    return locale
