"""A machine with another signing key is stopped at start, not at the first reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.errors import ConfigError
from gateway.domain.settings import parse_settings
from ticketgw.app import build_runtime


def start(database_url: str, key: str) -> None:
    settings = parse_settings({}, {"TICKETGW_DATABASE_URL": database_url,
                                   "TICKETGW_SECRET_KEY": key})
    build_runtime(settings).close()


def test_a_second_machine_with_another_key_is_refused(backend_url: str) -> None:
    start(backend_url, "the-deployment-key-" + "a" * 30)
    start(backend_url, "the-deployment-key-" + "a" * 30)  # the same key: fine, every time
    with pytest.raises(ConfigError) as refused:
        start(backend_url, "a-key-made-on-another-machine-" + "b" * 20)
    assert refused.value.code == "secret_key_mismatch"
    assert "secret.key" in refused.value.message and "b" * 20 not in refused.value.message


def test_a_generated_key_in_another_folder_is_caught(backend_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for machine in ("mx1", "mx2"):
        (tmp_path / machine).mkdir()
    monkeypatch.chdir(tmp_path / "mx1")
    build_runtime(parse_settings({}, {"TICKETGW_DATABASE_URL": backend_url})).close()
    monkeypatch.chdir(tmp_path / "mx2")  # its own var/secret.key would be generated here
    with pytest.raises(ConfigError, match="signing key"):
        build_runtime(parse_settings({}, {"TICKETGW_DATABASE_URL": backend_url})).close()
