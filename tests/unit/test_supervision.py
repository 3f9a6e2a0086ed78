"""How the worker behaves around missing or reset servers, without the servers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from streams.config import ConfigError, Settings
from streams.runtime.supervision import MAX_STATE_RESETS, STEADY_AFTER_S, QuietRepeats, restart_with_fresh_state, wait_for_servers


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.conn", logging.ERROR, __file__, 1, text, None, None)


def test_repeated_client_errors_are_collapsed_and_the_outage_said_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    quiet = QuietRepeats("127.0.0.1:9092", clock=lambda: now[0])
    refused = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)"
    with caplog.at_level(logging.WARNING, logger="binhyen.worker"):
        shown = [quiet.filter(record(refused)) for _ in range(500)]
        assert shown.count(True) == 1
        assert quiet.filter(record("Unable to update metadata from [1]")) is True  # another message passes once
        now[0] = 31.0
        again = record(refused)
        assert quiet.filter(again) is True
        assert again.getMessage().endswith("(and 499 more like it in the last 30 s)")
    said = [r.getMessage() for r in caplog.records if r.name == "binhyen.worker"]
    assert said == ["Kafka at 127.0.0.1:9092 is not reachable; retrying. Nothing is lost: events wait in Kafka "
                    "and offsets are committed only after ClickHouse has the rows"] * 2  # once per 30 s window


def test_waiting_for_servers_says_what_it_waits_for(caplog: pytest.LogCaptureFixture) -> None:
    attempts = {"kafka": 0}

    def kafka() -> None:
        attempts["kafka"] += 1
        if attempts["kafka"] < 4:
            raise ConnectionError("127.0.0.1:9092: Connection refused")

    with caplog.at_level(logging.WARNING, logger="binhyen.worker"):
        wait_for_servers(Settings.from_env(), {"Kafka at 127.0.0.1:9092": kafka, "ClickHouse": lambda: None},
                         sleep=lambda _: None)
    said = [r.getMessage() for r in caplog.records]
    assert attempts["kafka"] == 4
    assert said[0].startswith("waiting for Kafka at 127.0.0.1:9092 (0 s so far: 127.0.0.1:9092: Connection refused)")
    assert said[-1] == "Kafka at 127.0.0.1:9092 answers now; starting"
    assert len(said) == 2  # one line per 30 s while waiting, not one per attempt


def test_state_reset_restarts_the_process_but_never_loops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINHYEN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("BINHYEN_WORKER_STATE_RESETS", "0")  # restored (unset) after the test
    settings = Settings.from_env()
    (tmp_path / "faust" / "tables").mkdir(parents=True)
    executed: list[Any] = []
    for _ in range(MAX_STATE_RESETS):
        restart_with_fresh_state(settings, ran_for_s=5.0, execv=lambda *args: executed.append(args))
    assert not (tmp_path / "faust").exists()
    assert len(executed) == MAX_STATE_RESETS
    with pytest.raises(ConfigError, match=f"still disagree with local state after {MAX_STATE_RESETS} resets"):
        restart_with_fresh_state(settings, ran_for_s=5.0, execv=lambda *args: executed.append(args))
    restart_with_fresh_state(settings, ran_for_s=STEADY_AFTER_S, execv=lambda *args: executed.append(args))
    assert len(executed) == MAX_STATE_RESETS + 1  # a worker that ran steadily counts afresh
