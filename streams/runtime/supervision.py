"""How a worker behaves when the servers around it are missing, down or reset.

- Started before Kafka or ClickHouse answers: it waits, saying every 30 s what it waits for.
- Kafka goes away: the Kafka client logs a failed connection many times a second; those
  repeats are collapsed into one line per 30 s, and the worker says, once per outage, what is
  happening (nothing is lost: events wait in Kafka, offsets are committed only after
  ClickHouse has the rows).
- Kafka comes back *without its data* (the local broker keeps everything in memory; an
  Apache Kafka cluster that lost its disks would do the same): the worker's local state then
  names changelog offsets the broker no longer has, and Faust stops with ConsistencyError.
  The worker clears that local state and restarts itself (same PID) to rebuild it from the
  broker — at most `MAX_STATE_RESETS` times in a row, so it can never loop.
- Another processor version is promoted (`binhyen reprocess --promote`): the worker stops
  and restarts itself (same PID) under that version, waiting while its history catches up.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from streams.config import ConfigError, Settings

log = logging.getLogger("binhyen.worker")
REPEAT_WINDOW_S = 30.0
MAX_REMEMBERED = 1_000
WAIT_REPORT_EVERY_S = 30.0
MAX_STATE_RESETS = 3
STEADY_AFTER_S = 300.0
_RESETS_VARIABLE = "BINHYEN_WORKER_STATE_RESETS"
_BROKER_DOWN_SIGNS = ("Connect call failed", "NodeNotReadyError", "KafkaConnectionError", "Unable to update metadata")


class QuietRepeats(logging.Filter):
    """Lets a message through once per window; the next one after it says how many were held back."""

    def __init__(self, kafka_bootstrap: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.kafka_bootstrap = kafka_bootstrap
        self.clock = clock
        self.last_shown: dict[str, float] = {}
        self.held: dict[str, int] = {}
        self.outage_reported_at: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        now = self.clock()
        if any(sign in text for sign in _BROKER_DOWN_SIGNS) and (
                self.outage_reported_at is None or now - self.outage_reported_at > REPEAT_WINDOW_S):
            self.outage_reported_at = now
            log.warning("Kafka at %s is not reachable; retrying. Nothing is lost: events wait in Kafka and "
                        "offsets are committed only after ClickHouse has the rows", self.kafka_bootstrap)
        if len(self.last_shown) > MAX_REMEMBERED:  # messages vary (offsets, backoffs): forget the expired
            self.last_shown = {t: at for t, at in self.last_shown.items() if now - at < REPEAT_WINDOW_S}
            self.held = {t: n for t, n in self.held.items() if t in self.last_shown}
        shown = self.last_shown.get(text)
        if shown is not None and now - shown < REPEAT_WINDOW_S:
            self.held[text] = self.held.get(text, 0) + 1
            return False
        self.last_shown[text] = now
        held = self.held.pop(text, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {REPEAT_WINDOW_S:.0f} s)"
        return True


def quiet_kafka_client_logs(settings: Settings) -> QuietRepeats:
    """Put one QuietRepeats on every logger of the Kafka client (filters do not inherit)."""
    import aiokafka  # noqa: F401 - its modules create their loggers on import
    import aiokafka.consumer.fetcher  # noqa: F401
    import aiokafka.consumer.group_coordinator  # noqa: F401

    quiet = QuietRepeats(settings.kafka_bootstrap)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logging.getLogger(name).addFilter(quiet)
    return quiet


def wait_for_servers(settings: Settings, checks: dict[str, Callable[[], Any]] | None = None,
                     pause_s: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once Kafka and ClickHouse answer, saying what it waits for meanwhile."""
    checks = checks or {
        f"Kafka at {settings.kafka_bootstrap}": lambda: _kafka_answers(settings),
        f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port}": lambda: _clickhouse_answers(settings),
    }
    for what, check in checks.items():
        waited_since, reported_at = time.monotonic(), None
        while True:
            try:
                check()
                break
            except Exception as exc:  # any failure to answer means: not there yet
                now = time.monotonic()
                if reported_at is None or now - reported_at >= WAIT_REPORT_EVERY_S:
                    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
                    log.warning("waiting for %s (%.0f s so far: %s); the worker starts when it answers",
                                what, now - waited_since, reason)
                    reported_at = now
                sleep(pause_s)
        if reported_at is not None:
            log.warning("%s answers now; starting", what)


def _kafka_answers(settings: Settings) -> None:
    """Some bootstrap server accepts a connection (the Kafka client does the rest)."""
    import socket

    failures = []
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
            return
        except OSError as exc:
            failures.append(f"{server}: {exc.strerror or exc}")
    raise ConnectionError("; ".join(failures))


def _clickhouse_answers(settings: Settings) -> None:
    from sinks.clickhouse import connect

    connect(settings).execute("SELECT 1")


def broker_lost_its_data(*services: Any) -> bool:
    """Did Faust stop because the broker's changelogs went backwards (ConsistencyError)?"""
    from faust.exceptions import ConsistencyError

    return any(isinstance(getattr(service, "crash_reason", None), ConsistencyError) for service in services)


def restart_with_fresh_state(settings: Settings, ran_for_s: float, execv: Callable[..., Any] = os.execv) -> None:
    """Clear the worker's local state and re-execute this process, or refuse after too many.

    Resets count "in a row": a worker that ran `STEADY_AFTER_S` before this one starts afresh.
    """
    resets = 0 if ran_for_s >= STEADY_AFTER_S else int(os.environ.get(_RESETS_VARIABLE, "0"))
    if resets >= MAX_STATE_RESETS:
        raise ConfigError(f"the broker's changelogs still disagree with local state after {resets} resets; "
                          f"stop the worker, remove {settings.state_dir / 'faust'} and check the broker")
    shutil.rmtree(settings.state_dir / "faust", ignore_errors=True)
    log.warning("the broker lost its data (its changelog offsets are behind this worker's local state): "
                "local state %s cleared; restarting to rebuild it from the broker", settings.state_dir / "faust")
    os.environ[_RESETS_VARIABLE] = str(resets + 1)
    restart_process(execv)


def restart_process(execv: Callable[..., Any] = os.execv) -> None:
    """Re-execute this worker with the same arguments (same PID: supervisors and pid files keep it)."""
    logging.shutdown()
    execv(sys.executable, [sys.executable, *sys.argv])
