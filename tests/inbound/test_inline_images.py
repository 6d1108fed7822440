"""An HTML mail's own pictures survive intake: each part keeps its Content-ID, and the HTML keeps
`<img src="cid:…">` (and no other `cid:` URL, and nothing else nh3 would drop)."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from gateway.domain.inline_images import cid_filter, cid_of, cid_url, content_id
from inbound.parse import parse_mail

DATA = Path(__file__).resolve().parents[1] / "data"


def test_apple_mails_picture_without_disposition_is_an_attachment_with_its_id() -> None:
    parsed = parse_mail((DATA / "apple_inline_image_en.eml").read_bytes())
    [picture] = parsed.attachments
    assert (picture.filename, picture.content_type) == (
        "Screenshot 2026-12-01 at 09.28.14.png", "image/png")
    assert picture.content_id == "7A6B5C4D-3E2F-4A1B-9C8D-7E6F5A4B3C2D"
    assert picture.data is not None and picture.data.startswith(b"\x89PNG")
    assert parsed.html is not None
    assert '<img src="cid:7A6B5C4D-3E2F-4A1B-9C8D-7E6F5A4B3C2D" alt="error screenshot">' \
        in parsed.html
    assert parsed.text.startswith("Hello, the download stops")  # the text part, not the HTML


def _html_mail(html: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ann@example.org", "support@x.example", "Hi"
    msg.set_content("plain")
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(b"GIF89a", "image", "gif", cid="<pic 1@x.example>")
    return msg.as_bytes(policy=SMTP_POLICY)


def test_cid_is_kept_on_img_src_only() -> None:
    parsed = parse_mail(_html_mail(
        '<div><img src="cid:pic1@x.example" alt="kept"><a href="cid:pic1@x.example">link</a>'
        '<blockquote cite="cid:pic1@x.example">q</blockquote><img src="javascript:alert(1)">'
        '<img src="CID:pic1%40x.example" alt="also"></div><script>alert(1)</script>'))
    assert [a.content_id for a in parsed.attachments] == ["pic1@x.example"]  # blanks dropped
    assert parsed.html is not None and parsed.html.strip() == (
        '<div><img src="cid:pic1@x.example" alt="kept"><a rel="noopener noreferrer">link</a>'
        '<blockquote>q</blockquote><img><img src="cid:pic1@x.example" alt="also"></div>')


def test_content_ids_and_cid_urls_read_back() -> None:
    assert content_id("  <abc@x>\r\n ") == "abc@x"
    assert content_id("") is None and content_id("<>") is None and content_id(None) is None
    assert cid_of("cid:foo4*foo1@bar.net") == "foo4*foo1@bar.net"  # RFC 2392's own example
    assert cid_of("CID:a%40b") == "a@b"
    assert cid_of("https://x.example/cid:a") is None and cid_of("cidx:a") is None
    assert cid_of(cid_url("a b%c@d")) == "ab%c@d"
    resolve = cid_filter({"a@b": "/f/T/a.png"}.get)
    assert resolve("img", "src", "cid:a@b") == "/f/T/a.png"
    assert resolve("img", "src", "cid:unknown") is None
    assert resolve("a", "href", "cid:a@b") is None
    assert resolve("img", "alt", "a picture") == "a picture"
    assert resolve("img", "src", "https://x.example/p.gif") == "https://x.example/p.gif"
    only_own = cid_filter({"a@b": "/f/T/a.png"}.get, other_pictures=False)
    assert only_own("img", "src", "cid:a@b") == "/f/T/a.png"
    assert only_own("img", "src", "https://x.example/p.gif") is None
    assert only_own("img", "src", "/w/tickets") is None
    assert only_own("a", "href", "https://x.example/") == "https://x.example/"
