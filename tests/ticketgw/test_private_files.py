"""A first start under umask 022 leaves nothing others can read in `var/`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.files import modes, usual_umask
from ticketgw.cli import main


def test_init_makes_var_and_its_files_owner_only(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("TICKETGW_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with usual_umask():
        assert main(["init"]) == 0
    found = modes(tmp_path / "var")
    assert {"secret.key", "ticketgw.db"} <= set(found)
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}
