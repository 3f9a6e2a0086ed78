"""Processor versions: which credibility, alert and meaning configs the workers run, kept in ClickHouse.

`binhyen reprocess` registers a version ('reprocessing') and runs workers of it over the
history; `--promote` marks it 'promoting' (live workers of the old version stop and wait),
catches it up, swaps its projections in and marks it 'live'. A live worker runs the latest
'live' version (or, before any, the configs from files) and restarts itself when another is
promoted. The record sits in the writer-only database so that every replica reads the same
configs, wherever its files came from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sinks.clickhouse import private_database

log = logging.getLogger("binhyen.worker")
STATES = ("reprocessing", "promoting", "live")
KINDS = ("credibility", "alerts", "meaning")  # the configs a version fixes (a column each)
WAIT_POLL_S = 1.0


@dataclass(frozen=True)
class ProcessorVersion:
    name: str
    state: str
    config_texts: dict[str, str]  # kind -> JSON; '' for a meaning recorded before versions held one: from files
    at_ms: int = 0  # when it entered `state`


FROM_FILES = ProcessorVersion("", "live", dict.fromkeys(KINDS, ""))


class VersionRegistry:
    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.table = f"{private_database(database)}.processor_versions"
        self.heartbeats = f"{private_database(database)}.worker_heartbeats"

    def heartbeat(self, group: str, worker: str) -> None:
        """This worker of `group` is running (every few seconds)."""
        now_ms = int(time.time() * 1000)
        self.client.execute(f"INSERT INTO {self.heartbeats} (worker_group, worker, at, at_ms) VALUES",
                            [(group, worker, now_ms // 1000, now_ms)])

    def last_heartbeat_ms(self, group: str) -> int:
        """When a worker of `group` last said it runs (0: never)."""
        return self.client.execute(f"SELECT max(at_ms) FROM {self.heartbeats} WHERE worker_group = %(g)s",
                                   {"g": group})[0][0] or 0

    def record(self, version: ProcessorVersion) -> None:
        now_ms = int(time.time() * 1000)
        self.client.execute(
            f"INSERT INTO {self.table} (name, state, {', '.join(KINDS)}, at, at_ms) VALUES",
            [(version.name, version.state, *(version.config_texts.get(kind, "") for kind in KINDS),
              now_ms // 1000, now_ms)])

    def _latest(self, where: str, params: dict[str, Any]) -> ProcessorVersion | None:
        rows = self.client.execute(
            f"SELECT name, state, {', '.join(KINDS)}, at_ms FROM {self.table} WHERE {where} "
            "ORDER BY at_ms DESC LIMIT 1", params)
        if not rows:
            return None
        name, state, *texts, at_ms = rows[0]
        return ProcessorVersion(name, state, dict(zip(KINDS, texts)), at_ms)

    def get(self, name: str) -> ProcessorVersion | None:
        """The newest record of `name`."""
        return self._latest("name = %(name)s", {"name": name})

    def current(self) -> ProcessorVersion | None:
        """The version live workers run (or are about to: 'promoting'); None for the configs from files
        (before any promotion, or after a failed first one: recorded as `FROM_FILES`)."""
        current = self._latest("state IN ('promoting', 'live')", {})
        return None if current is None or current.name == FROM_FILES.name else current

    def wait_for_live(self, sleep: Callable[[float], None] = time.sleep) -> ProcessorVersion | None:
        """The live version, waiting while one is being promoted (its history catches up meanwhile)."""
        waiting = False
        while True:
            current = self.current()
            if current is None or current.state == "live":
                return current
            if not waiting:
                log.warning("processor version %s is being promoted; waiting for it to go live", current.name)
                waiting = True
            sleep(WAIT_POLL_S)
