"""HTML mail becomes the text a person would have typed: no Markdown, usable links, quotes."""

from __future__ import annotations

import pytest

from inbound.mime import html_to_text
from inbound.replies import extract_reply


def test_emphasis_and_links_leave_no_markdown() -> None:
    html = ('<p>Die <b>Anleitung</b> fehlt.</p><p><a href="https://dl.example/guide">Download'
            '</a> sagt <i>error 404</i>, <em>immer</em> <u>noch</u> <code>E_FAIL</code>.</p>')
    assert html_to_text(html) == ("Die Anleitung fehlt.\n\nDownload (https://dl.example/guide) "
                                  "sagt error 404, immer noch E_FAIL.")


@pytest.mark.parametrize(("html", "text"), [
    # a link whose text is its address, or a mail address, is written once
    ('<a href="https://a.example/x">https://a.example/x</a>', "https://a.example/x"),
    ('<a href="mailto:bob@example.org">bob@example.org</a>', "bob@example.org"),
    ('<a href="mailto:bob@example.org">Bob</a>', "Bob (bob@example.org)"),
    # an address nobody can use says nothing (javascript: is stripped, a relative one too)
    ('<a href="javascript:alert(1)">here</a>', "here"),
    ('<a href="/local/page">here</a>', "here"),
    ('<a href="https://a.example/?a=1&amp;b=2">x</a>', "x (https://a.example/?a=1&b=2)"),
])
def test_links_stay_usable(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_lists_breaks_and_entities() -> None:
    html = ("<div>Schritte:<ol><li>Öffnen</li><li>Klicken &amp; warten</li></ol>"
            "<ul><li>eins<ul><li>zwei</li></ul></li></ul>Ende<br>neue&nbsp;Zeile</div>")
    assert html_to_text(html) == ("Schritte:\n\n1. Öffnen\n2. Klicken & warten\n\n- eins\n"
                                  "  - zwei\n\nEnde\nneue Zeile")


def test_scripts_and_styles_are_not_text() -> None:
    html = "<style>p{color:red}</style><script>alert(1)</script><p>Hello</p>"
    assert html_to_text(html) == "Hello"


def test_a_quoted_block_becomes_quote_lines_that_reply_extraction_cuts() -> None:
    html = ('<div>Ça marche, merci.</div><div class="gmail_quote">Le lun. 20 nov. 2026 à '
            '10:00, Support &lt;s@example.com&gt; a écrit :<br><blockquote><p>Essayez ce '
            '<a href="https://dl.example/n">lien</a>.</p><blockquote>plus ancien</blockquote>'
            '</blockquote></div>')
    text = html_to_text(html)
    assert text == ("Ça marche, merci.\nLe lun. 20 nov. 2026 à 10:00, Support <s@example.com> "
                    "a écrit :\n\n> Essayez ce lien (https://dl.example/n).\n>\n> > plus ancien")
    assert extract_reply(text) == "Ça marche, merci."


def test_preformatted_text_keeps_its_lines() -> None:
    assert html_to_text("<pre>  a\n    b</pre><p>c</p>") == "  a\n    b\n\nc"
