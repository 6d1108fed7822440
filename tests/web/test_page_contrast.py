"""The colours of the pages' stylesheet (base.html.j2) are readable: every text colour on its
rule's background, or on white, reaches WCAG 2's 4.5:1 contrast for body text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE = Path(__file__).resolve().parents[2] / "web" / "templates" / "base.html.j2"
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
WHITE = "#ffffff"


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of `#rgb` or `#rrggbb`."""
    hex_ = colour.lstrip("#")
    if len(hex_) == 3:
        hex_ = "".join(c * 2 for c in hex_)
    channels = [int(hex_[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def pairs() -> list[tuple[str, str, str]]:
    """(selector, text colour, background) of each rule that sets either; the missing one is
    the body's text colour or white."""
    css = re.search(r"<style>(.*?)</style>", BASE.read_text(), re.S)
    assert css
    text = re.sub(r"@media[^{]*\{", "", css.group(1))
    found = []
    body = "#222"
    for selector, body_ in RULE.findall(text):
        colour = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body_)
        background = re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})", body_)
        if selector.strip() == "body" and colour:
            body = colour.group(1)
        if colour or background:
            found.append((selector.strip(), colour.group(1) if colour else body,
                          background.group(1) if background else WHITE))
    return found


def test_the_stylesheet_sets_colours() -> None:
    assert len(pairs()) >= 5


@pytest.mark.parametrize(("selector", "text", "background"), pairs())
def test_text_is_readable_on_its_background(selector: str, text: str, background: str) -> None:
    assert contrast(text, background) >= 4.5, (selector, text, background)
