"""The roles refuse a configuration they cannot run with, naming the setting."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from gateway.domain.errors import ConfigError
from ticketgw.commands import HANDLERS


def test_role_refuses_to_start_without_an_imap_url(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Any) -> None:
    monkeypatch.setenv("TICKETGW_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("TICKETGW_SECRET_KEY", "k")
    monkeypatch.delenv("TICKETGW_IMAP_URL", raising=False)
    with pytest.raises(ConfigError, match="TICKETGW_IMAP_URL is empty"):
        HANDLERS["imap"](argparse.Namespace(config=None))
