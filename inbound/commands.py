"""`#command` lines at the top of a reply (Zendesk-style), split from the text they lead."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gateway.domain.facts import Action
from gateway.domain.texts import _

# The words a mail may use, and the action each is; `#refund` is the vendor's Please Refund
# or the customer's conversion of tech support into a refund (services.act decides), and the
# word after it is the refund's reason code (`#refund malfunction`).
WORDS: dict[str, Action] = {
    "close": Action.CLOSE,
    "refund": Action.REFUND,
    "techsupport": Action.TECHSUPPORT,
    "partial": Action.PARTIAL,
    "percent": Action.PERCENT,
    "quantity": Action.QUANTITY,
    "full": Action.FULL,
    "escalate": Action.ESCALATE,
    "agree": Action.AGREE,
    "dispute": Action.DISPUTE,
    "returned": Action.RETURNED,
}
_NUMERIC = frozenset({Action.PARTIAL, Action.PERCENT, Action.QUANTITY})
# `#` then a word; `#1042` or `# heading` are text, not commands
_LINE = re.compile(r"^#([A-Za-z][A-Za-z_-]*)(?:[ \t]+(.*))?$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a reason code or a template name
MAX_COMMANDS = 10
TEMPLATE = "template"  # `#template NAME`: the reply is that saved reply template


@dataclass(frozen=True)
class Command:
    action: Action
    value: str | None = None
    line: str = ""


@dataclass(frozen=True)
class Commands:
    commands: tuple[Command, ...]
    unknown: tuple[str, ...]  # lines that look like commands but are none (or malformed)
    text: str  # the reply without its command lines
    template: str | None = None  # `#template NAME`: the vendor's saved reply to use


def parse_commands(text: str) -> Commands:
    """The command lines at the top of `text` (blank lines between them allowed)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    commands: list[Command] = []
    unknown: list[str] = []
    template: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if line and not line.startswith("#"):
            break
        index += 1
        if not line:
            continue
        found = _LINE.match(line)
        if found is None:
            index -= 1  # "#1042 is still broken" is text
            break
        word, argument = found.group(1).lower(), (found.group(2) or "").strip()
        if word == TEMPLATE and template is None and _WORD.match(argument):
            template = argument.lower()
            continue
        command = _command(word, argument, line)
        if command is None or len(commands) >= MAX_COMMANDS:
            unknown.append(line[:200])
        else:
            commands.append(command)
    rest = "\n".join(lines[index:]).strip()
    return Commands(tuple(commands), tuple(unknown), rest, template)


def _command(word: str, argument: str, line: str) -> Command | None:
    action = WORDS.get(word)
    if action is None:
        return None
    if action in _NUMERIC:
        number = argument.replace(",", ".").rstrip("%").strip()
        try:
            if not number or not Decimal(number).is_finite():
                return None
        except InvalidOperation:
            return None
        return Command(action, number, line)
    if action is Action.ESCALATE:
        return Command(action, argument[:2000] or None, line)
    if action is Action.REFUND and argument:  # `#refund REASON`
        return Command(action, argument.lower(), line) if _WORD.match(argument) else None
    if argument:  # `#close now please` is not a command we understand exactly
        return None
    return Command(action, None, line)


def describe_unknown(unknown: tuple[str, ...]) -> str:
    """The notice for lines that look like commands but are not (a Text: said in the
    sender's language)."""
    known = ", ".join(f"#{w}" for w in WORDS)
    listed = "; ".join(unknown[:5])
    return _("These lines are not commands we know, so nothing was changed: %(listed)s. "
             "Commands are, one per line at the top of your reply: %(known)s (#partial takes "
             "an amount, #escalate a reason, #refund may take a reason code), and #template "
             "NAME to answer with one of your saved reply templates.", listed=listed,
             known=known)
