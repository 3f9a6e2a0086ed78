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


def test_kafka_is_plaintext_unless_configured(isolated: Path) -> None:
    security = Settings.from_env().kafka_security
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_kafka_sasl_over_tls_reaches_both_clients(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faust

    ca = isolated / "ca.pem"
    ca.write_text("")  # only its existence is checked here; the TLS context is built below without it
    monkeypatch.setenv("BINHYEN_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("BINHYEN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("BINHYEN_KAFKA_SASL_USERNAME", "binhyen-worker")
    monkeypatch.setenv("BINHYEN_KAFKA_SASL_PASSWORD", "s3cret")
    security = Settings.from_env().kafka_security
    assert security.client_options() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "binhyen-worker",
        "sasl_plain_password": "s3cret", "ssl_cafile": None, "ssl_certfile": None, "ssl_keyfile": None}
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.protocol.name) == ("binhyen-worker", "s3cret",
                                                                                      "SASL_SSL")
    assert credentials.ssl_context is not None
    monkeypatch.setenv("BINHYEN_KAFKA_SSL_CAFILE", str(ca))
    assert Settings.from_env().kafka_security.client_options()["ssl_cafile"] == str(ca)


@pytest.mark.parametrize("variables, message", [
    ({"BINHYEN_KAFKA_SECURITY_PROTOCOL": "KERBEROS"},
     "BINHYEN_KAFKA_SECURITY_PROTOCOL='KERBEROS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"BINHYEN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
     "BINHYEN_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs BINHYEN_KAFKA_SASL_USERNAME and BINHYEN_KAFKA_SASL_PASSWORD"),
    ({"BINHYEN_KAFKA_SECURITY_PROTOCOL": "SSL", "BINHYEN_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
     "BINHYEN_KAFKA_SSL_CAFILE=/nonexistent/ca.pem: no such file"),
    ({"BINHYEN_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "BINHYEN_KAFKA_SASL_MECHANISM='GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
])
def test_bad_kafka_security_settings_are_one_clear_error(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value) == message
