"""`binhyen replay` on the real stack: the rebuilt projections equal the live ones, and the
worker writes into the swapped-in tables (their materialized views included)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from sinks.clickhouse import PROJECTION_TABLES, private_database, projection_table
from streams.sim.simulator import VN, SimConfig, simulate
from streams.ops.stack import WorkerProcess
from streams.topics import COMMUNE_CONTROL
from tests.conftest import EVENTS, jsonl, run_cli, settled, wait_for

pytestmark = pytest.mark.integration


def projections(clickhouse: Any, database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows (FINAL, sorted), without the wall-clock `ingested_at`."""
    snapshot = {}
    for role, table in PROJECTION_TABLES:
        qualified = projection_table(database, role, table)
        columns = [name for (name,) in clickhouse.execute(
            "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s AND name != 'ingested_at'",
            {"db": qualified.split(".")[0], "t": table})]
        assert columns, table
        snapshot[table] = sorted(clickhouse.execute(f"SELECT {', '.join(columns)} FROM {qualified} FINAL"))
    return snapshot


def test_replayed_projections_equal_the_live_ones(worker: WorkerProcess, clickhouse: Any, settings: Any) -> None:
    events = simulate(SimConfig(11, days=1, seed=41, scale=0.3, start=datetime(2022, 2, 1, tzinfo=VN))).events
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    wait_for(lambda: clickhouse.execute(f"SELECT uniqExact(event_id) FROM {EVENTS} WHERE startsWith(event_id, 'sim41-p11-')")
             [0][0] == len(events), 120, "the simulated day in ClickHouse")
    settled(settings, settings.worker_group, COMMUNE_CONTROL)  # every input, tick and delivery done
    # Stopped while compared: a timer of another module's open alert (the wall clock) firing between
    # the snapshot and the replay's read of the topics would be in one side only.
    worker.stop()
    try:
        live = projections(clickhouse, settings.clickhouse_database)
        assert len(live["events"]) >= len(events) and live["tips"] and live["device_signals"] and live["incidents"]

        stale = f"{settings.clickhouse_database}_replay"  # left by a replay that stopped half-way
        clickhouse.execute(f"CREATE DATABASE IF NOT EXISTS {stale}")
        clickhouse.execute(f"CREATE TABLE {stale}.alerts (x UInt8) ENGINE = Memory")
        result = run_cli("replay", "--quiet", timeout=600)
        assert result.returncode == 0, result.stderr
        assert "projections swapped in" in result.stdout and "replayed" in result.stdout

        replayed = projections(clickhouse, settings.clickhouse_database)
        for _, table in PROJECTION_TABLES:
            assert replayed[table] == live[table], f"{table}: {len(replayed[table])} rows replayed, {len(live[table])} live"
        databases = {name for (name,) in clickhouse.execute("SHOW DATABASES")}
        assert f"{settings.clickhouse_database}_replay" not in databases
        assert private_database(f"{settings.clickhouse_database}_replay") not in databases
    finally:
        worker.start()

    # The worker writes into the swapped-in tables, and their views fill the typed ones.
    tip = {"type": "tip", "event_id": "replay-after-swap-1", "occurred_at": "2022-02-01T09:00:00+07:00",
           "commune_code": 4, "channel": "hotline", "text": "Có người lạ đi xe máy không biển số quanh chợ"}
    assert run_cli("publish", "-q", "-", input=jsonl([tip])).returncode == 0
    wait_for(lambda: clickhouse.execute("SELECT count() FROM tips WHERE event_id = 'replay-after-swap-1'")[0][0] == 1,
             60, "the new tip in the typed table")
