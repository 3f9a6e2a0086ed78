"""Shared fixtures. Integration tests run against a real tansu broker and a real ClickHouse,
started by `binhyen up` on free loopback ports with their own state folder, and stopped by
`binhyen down` (by PID) at the end of the session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from streams.stack import WorkerProcess

REPO = Path(__file__).resolve().parent.parent
# A copy of ../shared/contracts (checked against it by tests/unit/test_contract_copy.py).
CONTRACTS = REPO / "tests" / "data" / "contracts"
BINHYEN = str(Path(sys.executable).parent / "binhyen")


def offline_run() -> Any:
    """An offline run with the shipped credibility weights and a fixed pseudonym key."""
    from processors.credibility import CredibilityConfig
    from processors.offline import OfflineRun
    from processors.pseudonym import pseudonymise
    from processors.alerts import AlertConfig
    from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG

    return OfflineRun.create(lambda c: pseudonymise(b"k" * 32, c), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                             AlertConfig.load(DEFAULT_ALERT_CONFIG))


def contract_lines(name: str) -> list[str]:
    return (CONTRACTS / name).read_text(encoding="utf-8").splitlines()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy; a liveness bound, not a speed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what} (last: {value!r})")
        time.sleep(every)


def _free_port_block(size: int) -> int:
    """A base port with `size` consecutive free loopback ports."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65535:
            continue
        ok = True
        for port in range(base, base + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free loopback ports")


def run_cli(*args: str, input: str | None = None, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BINHYEN, *args], input=input, capture_output=True, text=True, timeout=timeout, check=check,
        env=os.environ.copy(),
    )


@contextmanager
def stack_environment(state_dir: Path) -> Iterator[dict[str, str]]:
    """BINHYEN_* settings for a stack of its own: free loopback ports, its own state folder.

    Whatever a test starts under it, `binhyen down` stops on the way out.
    """
    base = _free_port_block(4)
    env = {
        "BINHYEN_STATE_DIR": str(state_dir),
        "BINHYEN_KAFKA_PORT": str(base),
        "BINHYEN_CLICKHOUSE_PORT": str(base + 1),
        "BINHYEN_CLICKHOUSE_HTTP_PORT": str(base + 2),  # interserver port is base + 3
        "BINHYEN_WORKER_BATCH_SIZE": "500",
    }
    unset = ("BINHYEN_KAFKA_BOOTSTRAP", "BINHYEN_PSEUDONYM_KEY")
    saved = {name: os.environ.get(name) for name in (*env, *unset)}
    os.environ.update(env)
    for name in unset:
        os.environ.pop(name, None)
    try:
        yield env
    finally:
        stopped = run_cli("down")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The real local stack for the whole session, started by `binhyen up`."""
    with stack_environment(tmp_path_factory.mktemp("state")) as env:
        started = run_cli("up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield env


@pytest.fixture(scope="session")
def worker(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    running = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log")
    running.start()
    try:
        yield running
    finally:
        if running.alive():
            running.stop()


@pytest.fixture(scope="session")
def settings(stack: dict[str, str]) -> Any:
    from streams.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def clickhouse(settings: Any) -> Any:
    from sinks.clickhouse import connect

    return connect(settings, settings.clickhouse_database)


def jsonl(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
