"""What the command line reads and writes besides the database: order files, JSON or text."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class CliError(Exception):
    """A command's failure with a contract error code (`--json`: `{"error": {...}}`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=None))
    else:
        print(human())


def human_ticket(view: dict[str, Any]) -> str:
    lines = [
        f"Ticket #{view['number']}  {view['type']}  {view['status']}"
        + (f" ({view['close_reason']})" if view.get("close_reason") else ""),
        f"  receipt {view['receipt']}  vendor {view['vendor']}  customer {view['customer_email']}",
        f"  created {view['created_at']} by {view['created_by']}",
    ]
    if view.get("refund_kind"):
        lines.append(f"  refund {view['refund_kind']} {view.get('refund_amount') or ''} "
                     f"{view.get('currency', '')}".rstrip())
    if view.get("awaiting_confirmation"):
        lines.append("  awaiting the sender's confirmation")
    if view.get("process_at"):
        lines.append(f"  process_at {view['process_at']}")
    if view.get("closed_at"):
        lines.append(f"  closed {view['closed_at']}")
    for message in view.get("messages", []):
        lines.append(f"  [{message['created_at']}] {message['author_role']}: "
                     + message["text"].strip().replace("\n", "\n    "))
    return "\n".join(lines)


def read_order_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, parsed object or None, error) for each non-empty line or CSV row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError("not_found", f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise CliError("invalid_file", f"{path} is not UTF-8 text ({exc.reason})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, None, "more cells than the header has columns"
                continue
            yield line, {k: v for k, v in row.items() if v not in (None, "")}, None
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield number, None, "each line must be a JSON object"
            continue
        yield number, value, None
