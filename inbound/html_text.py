"""Plain text from the HTML of a mail, as a person would write it: no Markdown left behind.

A converter that writes Markdown (html2text) leaves `**Anleitung**`, `[Download](https://…)`
and `_error 404_` in a ticket's comments, and every mail and page shows them as typed. Here
bold and italics are just their words, a link is its text with its address after it in
parentheses (so it stays usable in a text mail, and a web page can link it again), a list
item starts with "- " or its number, and a quoted block (`<blockquote>`) becomes `>` lines,
which is what the reply extraction (`inbound.replies`) cuts as quoted history.

The HTML is sanitised (nh3) first: scripts, styles and `javascript:` links are gone before a
word of it is read.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

import nh3

_BLOCKS: Final = frozenset({
    "address", "article", "aside", "center", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "header", "main", "nav", "section", "table", "tbody", "thead", "tfoot",
    "caption"})
# blocks that stand apart from what is around them by a blank line
_PARAGRAPHS: Final = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                                "blockquote", "pre", "table", "hr"})
_CELLS: Final = frozenset({"td", "th"})
_SPACES: Final = re.compile(r"[ \t\r\n\f\u00a0]+")
_SHOWN_SCHEMES: Final = ("http://", "https://", "mailto:", "ftp://")
_MAX_BLANKS: Final = 1


def html_to_text(html: str) -> str:
    """The text of an HTML mail body, without Markdown; links as `text (address)`."""
    cleaned = nh3.clean(html)
    converter = _Converter()
    converter.feed(cleaned)
    converter.close()
    return converter.text()


class _Converter(HTMLParser):
    """Collects lines, each with its quote depth (`>` marks) at the time it was written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.current: list[str] = []
        self.depth = 0  # blockquotes open
        self.pre = 0  # <pre> open: whitespace kept
        self.blank_pending = False
        self.lists: list[list[int]] = []  # each open list: [next number] (ol) or [] (ul)
        self.links: list[tuple[str, int]] = []  # (href, length of the text before the link)
        self.cell = 0  # cells written on the current table row

    # --- tags -------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._line(force=True)
        elif tag in _PARAGRAPHS or tag in _BLOCKS or tag in ("li", "tr"):
            self._start_block(tag, dict(attrs))
        elif tag in _CELLS:
            if self.cell:
                self.current.append("  ")
            self.cell += 1
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self._joined())))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            self._end_link(*self.links.pop())
        elif tag == "blockquote":
            self._paragraph()
            self.depth = max(self.depth - 1, 0)
        elif tag == "pre":
            self._paragraph()
            self.pre = max(self.pre - 1, 0)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            if self.lists:
                self._line()
            else:
                self._paragraph()
        elif tag in _PARAGRAPHS:
            self._paragraph()
        elif tag in _BLOCKS or tag in ("li", "tr"):
            self._line()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.pre:
            parts = data.replace("\r\n", "\n").split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._line(force=True)
                self.current.append(part)
            return
        text = _SPACES.sub(" ", data)
        if not self._joined().strip():
            text = text.lstrip()
        if text:
            self._content()
            self.current.append(text)

    # --- building lines -----------------------------------------------------------------
    def _start_block(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag in _PARAGRAPHS and not (tag in ("ul", "ol") and self.lists):
            self._paragraph()  # a list inside a list item goes on without a blank line
        else:
            self._line()
        if tag == "blockquote":
            self.depth += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "ol":
            start = attrs.get("start") or "1"
            self.lists.append([int(start) if start.isdigit() else 1])
        elif tag == "ul":
            self.lists.append([])
        elif tag == "li":
            self._content()
            self.current.append(self._bullet())
        elif tag == "tr":
            self.cell = 0
        elif tag == "hr":
            self._paragraph()

    def _bullet(self) -> str:
        indent = "  " * max(len(self.lists) - 1, 0)
        if self.lists and self.lists[-1]:
            number = self.lists[-1][0]
            self.lists[-1][0] += 1
            return f"{indent}{number}. "
        return f"{indent}- "

    def _end_link(self, href: str, before: int) -> None:
        """A link's address after its text, unless the text already is the address."""
        href = href.strip()
        if not href.lower().startswith(_SHOWN_SCHEMES):
            return  # a relative or stripped link says nothing a reader can use
        text = self._joined()[before:].strip()
        shown = href[len("mailto:"):] if href.lower().startswith("mailto:") else href
        if text in (href, shown):
            return
        self._content()
        self.current.append(f" ({shown})" if text else shown)

    def _joined(self) -> str:
        return "".join(self.current)

    def _content(self) -> None:
        """Text is about to be written: a pending blank line goes first."""
        if self.blank_pending and not self._joined().strip():
            if self.lines and self.lines[-1][1]:
                # a blank line between a quote and what is around it belongs to the outer
                self.lines.append((min(self.depth, self.lines[-1][0]), ""))
            self.blank_pending = False

    def _line(self, *, force: bool = False) -> None:
        """End the current line (a `<br>` forces an empty one)."""
        text = self._joined().rstrip()
        if text.strip() or force:
            self.lines.append((self.depth, text))
        self.current = []

    def _paragraph(self) -> None:
        self._line()
        self.blank_pending = True

    def text(self) -> str:
        self._line()
        out: list[str] = []
        blanks = 0
        for depth, line in self.lines:
            blanks = blanks + 1 if not line.strip() else 0
            if blanks > _MAX_BLANKS:
                continue
            prefix = "> " * depth
            out.append((prefix + line).rstrip() if line.strip() else prefix.rstrip())
        return "\n".join(out).strip("\n").rstrip()
