"""Out-of-office and vacation replies, recognised by subject in en, fr, de and pt."""

from __future__ import annotations

import re

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, MailContext, Verdict, ignore

name = "out-of-office"

_PREFIX = r"^\s*(?:(?:re|aw|tr|fw|fwd|wg|res|enc|r)\s*:\s*)*"
_SUBJECTS = re.compile(
    _PREFIX + r"(?:"
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response"
    r"|away from (?:the )?office|on vacation|vacation reply|i am away"
    r"|absence du bureau|r[ée]ponse automatique|message d.absence|absent du bureau"
    r"|abwesenheitsnotiz|automatische antwort|abwesend\s*:|au(?:ß|ss)er haus|nicht im b[üu]ro"
    r"|aus[êe]ncia (?:tempor[áa]ria|do escrit[óo]rio)|resposta autom[áa]tica"
    r"|fora do escrit[óo]rio|estou ausente|em f[ée]rias"
    r")(?!\w)",
    re.IGNORECASE,
)


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if _SUBJECTS.search(mail.subject or ""):
        return ignore("ignored_auto_reply", "out-of-office reply (subject)")
    return CONTINUE
