"""Recognise a forwarded mail and read who first wrote it, what they wrote and about what.

Pure: text in, a Forward (or None) out. The formats are those of Gmail ("---------- Forwarded
message ---------" and its French, German and Portuguese forms), Apple Mail ("Begin forwarded
message:" …), Outlook ("-----Original Message-----", a line of underscores, or a bare header
block under a forwarding subject) and a mail attached whole (message/rfc822).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.utils import parseaddr

from inbound.decode import safe
from inbound.mime import ParsedAttachment
from inbound.parse import ParsedMail, parse_mail

# Gmail's and Apple Mail's separators: they say "forwarded" themselves, whatever the subject
_MARKER = re.compile(
    r"^(?:-{5,}\s*(?:Forwarded message|Message transf[ée]r[ée]|Weitergeleitete Nachricht"
    r"|Mensagem encaminhada|Mensaje reenviado)\s*-{5,}"
    r"|Begin forwarded message\s*:|D[ée]but du message r[ée]exp[ée]di[ée]\s*:"
    r"|Anfang der weitergeleiteten (?:Nachricht|E-Mail)\s*:"
    r"|In[íi]cio da mensagem (?:re)?encaminhada\s*:)$",
    re.IGNORECASE,
)
# Outlook's separators also introduce the history of a reply: they mean a forward only under
# a forwarding subject
_OUTLOOK_SEPARATOR = re.compile(
    r"^(?:_{20,}|-{3,}\s*(?:Original Message|Message d.origine|Urspr(?:ü|ue)ngliche Nachricht"
    r"|Mensagem original)\s*-{3,})$",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|tr|wg|enc|rv|fw)\s*:", re.IGNORECASE)
_FROM = re.compile(r"^[*\s]*(?:From|De|Von)[*\s]*:\s*(.*)$", re.IGNORECASE)
_SUBJECT = re.compile(r"^[*\s]*(?:Subject|Objet|Betreff|Assunto)[*\s]*:\s*(.*)$", re.IGNORECASE)
# any other line of a forwarded header block (Date, Sent, To, Cc, in the four languages)
_HEADER = re.compile(
    r"^[*\s]*(?:Date|Datum|Data|Sent|Envoy[ée]|Gesendet|Enviad[oa](?:\s+em)?|To|[ÀA]|An|Para"
    r"|Cc|Kopie|Reply-To|R[ée]pondre [àa])[*\s]*:", re.IGNORECASE)
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]", re.IGNORECASE)
_ANGLE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BARE = re.compile(r"([^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"]+\.[A-Za-z0-9-]+)")
_HEADER_LINES = 12  # a forwarded header block is short; From comes within its first lines
_RFC822 = ("message/rfc822", "message/global")


@dataclass(frozen=True)
class Forward:
    """What a forwarded mail carries of the mail it forwards."""

    original_from: str  # lower-cased address of the person who first wrote it
    original_name: str
    original_subject: str
    text: str  # what that person wrote (their words, without the forwarder's note)
    note: str  # what the forwarder wrote above it, if anything
    attached: bool = False  # forwarded as an attached message, not inline
    # the attached message's own attachments (the customer's screenshots): inside the
    # message/rfc822 part, so not among the forward's
    attachments: tuple[ParsedAttachment, ...] = ()


def find_forward(mail: ParsedMail) -> Forward | None:
    """The forward `mail` is, or None. Inline forwards first; then an attached message."""
    found = find_inline(mail.text, mail.subject)
    if found is not None:
        return found
    return find_attached(mail)


def find_inline(text: str, subject: str) -> Forward | None:
    """An inline forward: a separator line (or, under a forwarding subject, an Outlook
    separator or header block), then a header block naming the original sender."""
    lines = [_normalise(line) for line in text.replace("\r\n", "\n").split("\n")]
    forwarding_subject = _FORWARD_SUBJECT.match(subject or "") is not None
    for i, line in enumerate(lines):
        if line.startswith(">"):
            continue
        if _MARKER.match(line) or (forwarding_subject and _OUTLOOK_SEPARATOR.match(line)):
            found = _read_block(lines, i + 1, note_end=i)
        elif forwarding_subject and _FROM.match(line):
            found = _read_block(lines, i, note_end=i)
        else:
            continue
        if found is not None:
            return found
    return None


def find_attached(mail: ParsedMail) -> Forward | None:
    """The first attached message whose sender can be read (Outlook's and Thunderbird's
    "forward as attachment"); the forwarder's text is the note. Its text is made safe to
    store here, as intake does for the mail around it (raw 8-bit headers decode to lone
    surrogates no database driver takes)."""
    for part in mail.attachments:
        if part.content_type not in _RFC822 or not part.data:
            continue
        inner = parse_mail(part.data)
        if "@" not in inner.from_addr:
            continue
        return Forward(safe(inner.from_addr).lower(), safe(inner.from_name),
                       safe(inner.subject), safe(inner.text).strip(), mail.text.strip(),
                       attached=True, attachments=tuple(
                           # no Content-ID: the page shows the forward's HTML, whose cid:
                           # names are not the attached message's
                           replace(a, filename=safe(a.filename),
                                   content_type=safe(a.content_type), content_id=None)
                           for a in inner.attachments))
    return None


def _read_block(lines: list[str], start: int, *, note_end: int) -> Forward | None:
    """The header block starting at (or just after blank lines from) `start`, and the text
    under it; None without a From line giving an address."""
    i = start
    while i < len(lines) and not lines[i]:
        i += 1
    name = address = subject = ""
    seen = 0
    while i < len(lines) and lines[i] and seen < _HEADER_LINES:
        line = lines[i]
        if (found := _FROM.match(line)) is not None:
            name, address = _sender(found.group(1))
        elif (found := _SUBJECT.match(line)) is not None:
            subject = found.group(1).strip()
        elif not _HEADER.match(line) and not address:
            return None  # not a header block
        i += 1
        seen += 1
    if not address:
        return None
    body = "\n".join(lines[i:]).strip()
    note = "\n".join(lines[:note_end]).strip()
    return Forward(address, name, subject, body, note)


def _sender(value: str) -> tuple[str, str]:
    """(name, address) of a From value as mail clients write it in a forward:
    `Name <a@b>`, `Name [mailto:a@b]`, `"Name" <a@b>` or a bare address."""
    value = value.strip()
    for pattern in (_MAILTO, _ANGLE):
        found = pattern.search(value)
        if found is not None:
            name = value[: found.start()].strip().strip('"').strip()
            return name, found.group(1).strip().lower()
    name, address = parseaddr(value)
    if "@" not in address:
        bare = _BARE.search(value)
        address = bare.group(1) if bare else ""
    return name.strip(), address.strip().lower()


def _normalise(line: str) -> str:
    return line.replace("\u00a0", " ").replace("\u202f", " ").strip()
