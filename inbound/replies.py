"""Keep only the new text of a reply: drop quoted history and signatures, keep inline answers."""

from __future__ import annotations

import re

from mailparser_reply.constants import GENERIC_MAIL_SEPARATOR, MAIL_LANGUAGES

_LANGUAGES = ("en", "de", "fr")  # mail-parser-reply knows these; Portuguese is ours below
_LONGEST_HEADER_LINE = 300  # attribution lines are short; longer lines are never tested

# Gmail, Apple Mail and Thunderbird attributions ("On ... wrote:"), mail-parser-reply's
# patterns first; each is tried on one line and on two lines, as Gmail wraps them.
_LIBRARY_WROTE = [re.compile(MAIL_LANGUAGES[lang]["wrote_header"], re.IGNORECASE)
                  for lang in _LANGUAGES]
_OUR_WROTE = re.compile(
    r"^(?:On\s.{3,250}\swrote"  # en, also with a narrow space before the colon
    r"|Le\s.{3,250}\sa\s+[ée]crit"  # fr, wrapped or with a non-breaking space
    r"|Am\s.{3,250}\sschrieb(?:\s.{0,250})?"  # de
    r"|Em\s.{3,250}\sescreveu"  # pt (Gmail "Em seg., 20 de nov. ... escreveu:")
    r")\s*:$",
    re.IGNORECASE,
)
# the verb every attribution above has ("wrote", "schrieb", "a écrit", "escreveu"): a line
# without one is no attribution, and most lines are answered by this one test
_ATTRIBUTION_VERBS = ("wrote", "schrieb", "crit", "escreveu")
_ANY_VERB = re.compile("|".join(map(re.escape, _ATTRIBUTION_VERBS)))  # in lower-cased text
_LIBRARY_SEPARATOR = re.compile(GENERIC_MAIL_SEPARATOR, re.IGNORECASE)
_OUR_SEPARATOR = re.compile(
    r"^(?:_{20,}"  # Outlook's line of underscores
    r"|-{3,}\s*(?:Original Message|Message d.origine|Urspr(?:ü|ue)ngliche Nachricht"
    r"|Originalnachricht|Mensagem original|Mensaje original)\s*-{3,})$",
    re.IGNORECASE,
)
# Outlook header blocks: a From line followed within three lines by a Sent/Date line.
_BLOCK_FROM = re.compile(r"^[*\s]*(?:From|De|Von)[*\s]*:", re.IGNORECASE)
_BLOCK_SENT = re.compile(
    r"^[*\s]*(?:Sent|Date|Envoy[ée]|Gesendet|Datum|Enviad[oa](?:\s+em)?|Data)[*\s]*:",
    re.IGNORECASE,
)
_FORWARDED = re.compile(
    r"(?:Forwarded message|Begin forwarded message|Message transf[ée]r[ée]"
    r"|D[ée]but du message r[ée]exp[ée]di[ée]|Weitergeleitete Nachricht"
    r"|Anfang der weitergeleiteten|Mensagem encaminhada|In[íi]cio da mensagem encaminhada)",
    re.IGNORECASE,
)
_LIBRARY_SENT_FROM = "|".join(MAIL_LANGUAGES[lang]["sent_from"] for lang in _LANGUAGES)
_SENT_FROM = re.compile(
    rf"^(?:{_LIBRARY_SENT_FROM}"
    r"|Sent from|Sent with|Envoy[ée] de mon|Envoy[ée] (?:depuis|à partir de)|Obtenir Outlook"
    r"|Von meinem .{1,40} gesendet|Gesendet mit|Outlook für"
    r"|Enviado (?:do|de|a partir d[oe])(?: meu)?|Obter o Outlook)\b.{0,60}$",
    re.IGNORECASE,
)
_MAX_SIGNOFF_LINE = 80


def extract_reply(text: str) -> str:
    """The new text of a reply, with the `#command` lines at its top kept as written.

    A reply that is only a quote of the mail it answers (an attribution line and `>` lines,
    perhaps a signature) has no new text: the result is empty, and the reply is refused as
    empty. Any other mail whose every line looks like history (a forwarded mail) is kept
    whole: cutting all of it would lose what the sender meant to send.
    """
    original = text.strip()
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    top = 0
    while top < len(lines) and (not lines[top].strip() or lines[top].lstrip().startswith("#")):
        top += 1
    new = _new_text(lines[top:])
    if _only_quoted(new):  # the quote kept as if it held inline answers, but it holds none
        new = []
    kept = "\n".join(lines[:top] + new).strip()
    if kept or _only_quoted(lines[top:]):
        return kept
    return original


def _only_quoted(lines: list[str]) -> bool:
    """Whether these lines are a quote and nothing new: up to a signature, every line is
    blank, quoted (`>`), or part of an attribution ("On … wrote:", in the four languages)."""
    probe = [_normalise(line) for line in lines]
    quoted = [p.startswith(">") for p in probe]
    if not any(quoted):
        return False
    attributed = {i for start, stop in _attributions(probe, quoted) for i in range(start, stop)}
    signature = _signature(probe, quoted, 0, len(probe))
    end = len(probe) if signature is None else signature
    return all(not probe[i] or quoted[i] or i in attributed for i in range(end))


def _new_text(lines: list[str]) -> list[str]:
    probe = [_normalise(line) for line in lines]
    quoted = [p.startswith(">") for p in probe]
    end = _outlook_history(probe, quoted)
    attributions = _attributions(probe[:end], quoted)

    # Quoted history at the bottom goes, and the attribution that introduces it.
    cut = end
    while cut and (not probe[cut - 1] or quoted[cut - 1]):
        cut -= 1
    if any(quoted[cut:end]):
        cut = next((start for start, stop in attributions if stop == cut), cut)

    if any(quoted[:cut]):
        # Quotes remain, so answers were written between them: keep questions and answers.
        last_quote = max(i for i in range(cut) if quoted[i])
        signature = _signature(probe, quoted, last_quote + 1, cut)
    else:
        cut = min([cut] + [start for start, _ in attributions])
        signature = _signature(probe, quoted, 0, cut)
    if signature is not None:
        cut = signature
    while cut and not probe[cut - 1]:
        cut -= 1
    return lines[:cut]


def _normalise(line: str) -> str:
    return line.replace("\u00a0", " ").replace("\u202f", " ").strip()


def _outlook_history(probe: list[str], quoted: list[bool]) -> int:
    """Index of the first unquoted Outlook separator or header block, else len(probe)."""
    for i, line in enumerate(probe):
        if quoted[i] or len(line) > _LONGEST_HEADER_LINE:
            continue
        if _LIBRARY_SEPARATOR.match(line) or _OUR_SEPARATOR.match(line):
            return i
        if _BLOCK_FROM.match(line) and any(_BLOCK_SENT.match(p) for p in probe[i + 1 : i + 4]):
            previous = next((p for p in reversed(probe[:i]) if p), "")
            if not _FORWARDED.search(previous):  # a forwarded mail is content, not history
                return i
    return len(probe)


def _attributions(probe: list[str], quoted: list[bool]) -> list[tuple[int, int]]:
    """(first, past-last) line spans of unquoted "On ... wrote:" lines, one or two lines long."""
    spans = []
    verb = [_has_verb(line) for line in probe]  # every pattern needs one (most lines: none)
    for i, line in enumerate(probe):
        if quoted[i] or not line or len(line) > _LONGEST_HEADER_LINE:
            continue
        if verb[i] and _is_attribution(line, line):
            spans.append((i, i + 1))
        elif (i + 1 < len(probe) and probe[i + 1] and not quoted[i + 1]
              and (verb[i] or verb[i + 1])):
            nxt = probe[i + 1][:_LONGEST_HEADER_LINE]
            if _is_attribution(f"{line}\n{nxt}", f"{line} {nxt}"):
                spans.append((i, i + 2))
    return spans


def _has_verb(line: str) -> bool:
    return _ANY_VERB.search(line.lower()) is not None


def _is_attribution(library_form: str, our_form: str) -> bool:
    if any(pattern.search(library_form) for pattern in _LIBRARY_WROTE):
        return True
    return _OUR_WROTE.match(our_form) is not None


def _signature(probe: list[str], quoted: list[bool], start: int, stop: int) -> int | None:
    """First signature line in [start, stop): RFC 3676 "-- " or a phone sign-off."""
    for i in range(start, stop):
        line = probe[i]
        if quoted[i]:
            continue
        if line == "--" or (len(line) <= _MAX_SIGNOFF_LINE and _SENT_FROM.match(line)):
            return i
    return None
