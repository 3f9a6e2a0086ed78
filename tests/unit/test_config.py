"""Settings and the pseudonym key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streams.config import ConfigError, Settings


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BINHYEN_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("BINHYEN_PSEUDONYM_KEY", raising=False)
    return tmp_path


def test_key_file_is_created_once_with_mode_0600(isolated: Path) -> None:
    settings = Settings.from_env()
    with pytest.raises(ConfigError, match="no pseudonym key: set BINHYEN_PSEUDONYM_KEY or run `binhyen up`"):
        settings.pseudonym_key()
    assert settings.ensure_key_file() is True
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    key = settings.pseudonym_key()
    assert len(key) == 64
    assert settings.ensure_key_file() is False
    assert settings.pseudonym_key() == key  # stable across restarts


def test_environment_key_wins_and_must_be_long_enough(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINHYEN_PSEUDONYM_KEY", "x" * 32)
    assert Settings.from_env().pseudonym_key() == b"x" * 32
    monkeypatch.setenv("BINHYEN_PSEUDONYM_KEY", "short")
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        Settings.from_env().pseudonym_key()


def test_bad_port_setting_is_named(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINHYEN_KAFKA_PORT", "ninety")
    with pytest.raises(ConfigError, match="BINHYEN_KAFKA_PORT='ninety' is not a whole number"):
        Settings.from_env()
