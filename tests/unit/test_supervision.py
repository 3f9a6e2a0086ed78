"""How the worker behaves around missing or reset servers, without the servers."""

from __future__ import annotations

import logging
import os
import stat
import sys
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


def test_a_part_started_from_a_permissive_process_keeps_the_state_folder_private(tmp_path: Path) -> None:
    """`binhyen` sets umask 077 for itself; a library caller (a test restarting ClickHouse) may
    not have: the pid file, the log and what the server writes are private all the same."""
    from streams.ops import stack

    state = tmp_path / "state"
    started: list[bool] = []
    server = f"import time; open({str(state / 'data')!r}, 'w').write('x'); time.sleep(30)"
    part = stack.Part(name="writer", binary=sys.executable, command=[sys.executable, "-c", server],
                      pid_file=state / "writer.pid", log_file=state / "writer.log", endpoint="-",
                      healthy=lambda: bool(started) and (state / "data").exists())
    previous = os.umask(0o022)
    try:
        started.append(True)
        assert stack.start(part).startswith("started")
        assert os.umask(0o022) == 0o022  # the caller's umask is given back
    finally:
        os.umask(previous)
    try:
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in state.iterdir()}
        assert modes == {"writer.pid": 0o600, "writer.log": 0o600, "data": 0o600}
    finally:
        pid = int(part.pid_file.read_text())
        assert stack.stop(part).startswith("stopped")
        os.waitpid(pid, 0)  # our child: reap it (a test runner that waits for children would trip on it)
