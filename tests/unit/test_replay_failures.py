"""`binhyen replay`'s failure paths without a server: the swap on chdb (current ClickHouse) when
a rebuilt table is missing or the RENAME fails — the live projections stay whole and keep their
materialized views — and the log reader giving up on a partition whose end never becomes known."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from chdb import session

from sinks.clickhouse import (
    EVENT_COLUMNS, MIGRATIONS_DIR, SwapError, _statements, event_row, materialized_views, swap_projections,
)
from streams.ops.replay import IDLE_POLLS_BEFORE_GIVING_UP, LogReader
from tests.chdb_client import ChdbClient

LIVE, FRESH = "binhyen", "binhyen_replay"


def tip(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at_ms": 1_756_904_400_000, "utc_offset_min": 420, "commune_code": 26680,
            "channel": "zalo", "text": "Có trộm ở chợ"}


@pytest.fixture
def client() -> Iterator[ChdbClient]:
    """A live database and a rebuilt one, both migrated, each with one tip of its own."""
    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        client = ChdbClient(db)
        for database in (LIVE, FRESH):
            for name in (database, f"{database}_private"):
                db.query(f"CREATE DATABASE {name}")
            db.query(f"USE {database}")
            for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
                for statement in _statements(migration.read_text(encoding="utf-8"), database):
                    db.query(statement)
            client.execute(f"INSERT INTO {database}_private.events ({', '.join(EVENT_COLUMNS)}) VALUES",
                           [event_row("tip", tip(f"{database}-tip"), "binhyen.tips.v1", 0, 1, 1_756_904_401)])
        db.query(f"USE {LIVE}")
        yield client
        db.close()


def tips(client: ChdbClient) -> list[str]:
    return [event_id for (event_id,) in client.execute(f"SELECT event_id FROM {LIVE}.tips ORDER BY event_id")]


def live_views(client: ChdbClient) -> set[str]:
    return {name for (name,) in client.execute(
        f"SELECT name FROM system.tables WHERE database = '{LIVE}' AND engine = 'MaterializedView'")}


def test_a_swap_puts_the_rebuilt_tables_in_and_the_views_on_them(client: ChdbClient) -> None:
    swap_projections(client, LIVE, FRESH)
    assert tips(client) == ["binhyen_replay-tip"]
    assert live_views(client) == set(materialized_views(LIVE)) and live_views(client)
    client.execute(f"INSERT INTO {LIVE}_private.events ({', '.join(EVENT_COLUMNS)}) VALUES",
                   [event_row("tip", tip("after-swap"), "binhyen.tips.v1", 0, 2, 1_756_904_402)])
    assert tips(client) == ["after-swap", "binhyen_replay-tip"]  # the live views feed the swapped-in tables


def test_a_missing_rebuilt_table_stops_the_swap_before_anything_changes(client: ChdbClient) -> None:
    client.execute(f"DROP TABLE {FRESH}.alerts")
    with pytest.raises(SwapError) as failed:
        swap_projections(client, LIVE, FRESH)
    assert str(failed.value) == ("the rebuilt table binhyen_replay.alerts is missing, so nothing was swapped and the "
                                 "live projections are as they were; run `binhyen replay` again")
    assert tips(client) == ["binhyen-tip"] and live_views(client) == set(materialized_views(LIVE))


def test_a_failed_rename_is_undone_and_gives_the_live_tables_their_views_back(client: ChdbClient) -> None:
    client.execute(f"CREATE TABLE {FRESH}.alerts__old (x UInt8) ENGINE = Memory")  # the RENAME's target is taken
    with pytest.raises(SwapError) as failed:
        swap_projections(client, LIVE, FRESH)
    assert str(failed.value).startswith("renaming binhyen.alerts to binhyen_replay.alerts__old failed (")
    assert "binhyen_replay.alerts__old already exists" in str(failed.value)
    assert str(failed.value).endswith("); every table was put back as it was")
    assert tips(client) == ["binhyen-tip"] and live_views(client) == set(materialized_views(LIVE))
    client.execute(f"INSERT INTO {LIVE}_private.events ({', '.join(EVENT_COLUMNS)}) VALUES",
                   [event_row("tip", tip("after-failure"), "binhyen.tips.v1", 0, 2, 1_756_904_402)])
    assert tips(client) == ["after-failure", "binhyen-tip"]


class EndlessPartition:
    """A consumer whose one partition never reports its end and yields `records` once."""

    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict[str, list[str]]:
        self.polls += 1
        batch, self.records = self.records, []
        return {"tp": batch} if batch else {}

    def highwater(self, tp: Any) -> None:
        return None

    def position(self, tp: Any) -> int:
        return 0


def test_the_reader_gives_up_on_an_end_it_never_learns_after_its_idle_polls() -> None:
    reader = LogReader.__new__(LogReader)  # its consumer, without a broker
    reader.consumer, reader.partitions = EndlessPartition(["r1", "r2"]), ["tp"]
    handled: list[list[str]] = []
    progress: list[tuple[int, int | None]] = []
    assert reader.read_to_end(handled.append, lambda done, total: progress.append((done, total))) == 2
    assert handled == [["r1", "r2"]]
    assert reader.consumer.polls == 1 + IDLE_POLLS_BEFORE_GIVING_UP
    assert progress == [(2, None)] * (1 + IDLE_POLLS_BEFORE_GIVING_UP)
