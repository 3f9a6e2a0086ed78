"""`binhyen replay`: rebuild every ClickHouse projection from the Kafka log and swap it in.

The log is the truth. The input topics give `events` (and, through the materialized views,
the typed tables); the incidents and alerts topics are the processors' own output log and
give `incidents`, `incident_members` and `alerts`. Rows are made by the same functions the
workers use, so a rebuilt table equals the live one (apart from `ingested_at`); a verdict that
names no commune is recorded with its tip's (or incident's), as the workers record it.

Steps: (1) a fresh database `<db>_replay` (and its `_private` beside it) gets every migration; (2) the log is read from the
beginning up to each partition's high watermark (taken from fetch responses, not from
ListOffsets, which the local broker answers wrongly) into it; (3) the fresh tables are
renamed into place; (4) the log's tail written meanwhile is read into the live tables, so
events the running workers wrote during the swap are not missed; (5) the fresh databases,
now holding the old tables, are dropped. Running workers may keep running: every table is
ReplacingMergeTree on the event's key, so rows written twice collapse.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition

from schemas import CODEC, DecodeError
from sinks.clickhouse import (
    TableSink, alert_row, alert_sink, connect, event_row, event_sink, incident_rows, incident_sinks, migrate,
    private_database, swap_projections,
)
from streams.config import ConfigError, Settings
from streams.edge.kafka import consumer
from streams.topics import ALERT_ACTIONS, ALERTS, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, MODEL_CHANGES, TIPS
from processors.pseudonym import EdgeCheck
from processors.validation import TimeBounds
from streams.runtime.batch import Accepted, triage

LOG_TOPICS = (TIPS, DEVICE_SIGNALS, FEEDBACK, MODEL_CHANGES, ALERT_ACTIONS, INCIDENTS, ALERTS)
POLL_RECORDS = 5_000
IDLE_POLLS_BEFORE_GIVING_UP = 20  # x 0.5 s with no record and a partition's end still unknown


@dataclass
class ReplayReport:
    records: int = 0
    skipped: int = 0  # records the workers dead-letter too (invalid events)
    rows: Counter[str] = field(default_factory=Counter)
    tail_records: int = 0
    seconds: float = 0.0


class ProjectionRows:
    """Turns log records into projection rows with the workers' row functions."""

    def __init__(self, client: Any, database: str, bounds: TimeBounds | None = None,
                 check: EdgeCheck | None = None, communes: dict[str, int] | None = None) -> None:
        self.bounds, self.check = bounds, check
        # "tip:<id>" / "incident:<id>" -> commune, from the log read so far: where a verdict that
        # names no commune is counted, as the workers count it (a verdict read before its tip
        # waits for the end of the log)
        self.communes = {} if communes is None else communes
        self.unplaced: list[tuple[Accepted, str, int, int, int]] = []
        incidents, members = incident_sinks(client)
        self.sinks: dict[str, TableSink] = {
            "events": event_sink(client, database), "incidents": incidents, "incident_members": members,
            "alerts": alert_sink(client),
        }
        self.latest: dict[str, dict[str, Any]] = {}  # newest incident snapshot of the batch

    def add(self, topic: str, partition: int, offset: int, value: Any, now_s: int, written_ms: int = 0) -> bool:
        """Queue the rows of one record; False when the workers would not have recorded it (dated
        too far from the clock when it was written, `written_ms`, included)."""
        if topic in (INCIDENTS, ALERTS):
            try:
                record = CODEC.decode(value)[1]
            except DecodeError:
                return False
            if topic == ALERTS:
                self.sinks["alerts"].add(alert_row(record))
            else:
                self.communes[f"incident:{record['incident_id']}"] = record["commune_code"]
                if record["version"] >= self.latest.get(record["incident_id"], {}).get("version", -1):
                    self.latest[record["incident_id"]] = record
            return True
        verdict = triage(value, topic, self.bounds, written_ms, self.check)
        if not isinstance(verdict, Accepted):
            return False
        record = verdict.record
        if verdict.event_type == "tip":
            self.communes[f"tip:{record['event_id']}"] = record["commune_code"]
        elif verdict.event_type == "feedback" and record.get("commune_code") is None:
            if self._judged_commune(record) is None:
                self.unplaced.append((verdict, topic, partition, offset, now_s))
                return True
            record = dict(record, commune_code=self._judged_commune(record))
        self.sinks["events"].add(event_row(verdict.event_type, record, topic, partition, offset, now_s))
        return True

    def _judged_commune(self, record: dict[str, Any]) -> int | None:
        return self.communes.get(f"tip:{record.get('tip_event_id')}") or self.communes.get(
            f"incident:{record.get('incident_id')}")

    def finish(self) -> Counter[str]:
        """At the end of the log: the verdicts read before their tip, placed now (or left with
        none, when the log never had it), and the last rows."""
        for verdict, topic, partition, offset, now_s in self.unplaced:
            commune = self._judged_commune(verdict.record)
            record = verdict.record if commune is None else dict(verdict.record, commune_code=commune)
            self.sinks["events"].add(event_row(verdict.event_type, record, topic, partition, offset, now_s))
        self.unplaced = []
        return self.flush()

    def flush(self) -> Counter[str]:
        for snapshot in self.latest.values():
            row, members = incident_rows(snapshot)
            self.sinks["incidents"].add(row)
            for member in members:
                self.sinks["incident_members"].add(member)
        self.latest = {}
        return Counter({name: sink.flush() for name, sink in self.sinks.items()})


class LogReader:
    """Reads the log topics from the beginning, partition by partition, up to their ends."""

    def __init__(self, settings: Settings, topics: tuple[str, ...] = LOG_TOPICS) -> None:
        self.consumer = consumer(settings, enable_auto_commit=False, max_poll_records=POLL_RECORDS,
                                 fetch_max_wait_ms=100)
        self.partitions = [TopicPartition(topic, p) for topic in topics
                           for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
        missing = [t for t in topics if not any(tp.topic == t for tp in self.partitions)]
        if missing:
            raise ConfigError(f"topic {missing[0]} does not exist on {settings.kafka_bootstrap}; "
                              "nothing to replay (start the stack with `binhyen up`)")
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.start = sum(self.consumer.beginning_offsets(self.partitions).values())

    def remaining(self) -> int | None:
        """Records left before the known ends; None while a partition's end is unknown."""
        left = 0
        for tp in self.partitions:
            end = self.consumer.highwater(tp)
            if end is None:
                return None
            left += max(0, end - self.consumer.position(tp))
        return left

    def read_to_end(self, handle: Callable[[list[Any]], None], progress: Callable[[int, int | None], None]) -> int:
        """Hand every record up to the current ends to `handle`, batch by batch; returns the count."""
        read, idle = 0, 0
        while True:
            batch = self.consumer.poll(timeout_ms=500)
            records = [record for part in batch.values() for record in part]
            if records:
                handle(records)
                read += len(records)
                idle = 0
            else:
                idle += 1
            left = self.remaining()
            progress(read, None if left is None else read + left)
            if left == 0 or (left is None and idle >= IDLE_POLLS_BEFORE_GIVING_UP):
                return read

    def close(self) -> None:
        self.consumer.close()


def replay(settings: Settings, progress: Callable[[str, int, int | None], None]) -> ReplayReport:
    """Rebuild the projections from the log into a fresh database and swap them in."""
    live = settings.clickhouse_database
    fresh = f"{live}_replay"
    started = time.monotonic()
    report = ReplayReport()
    admin = connect(settings)
    cluster = settings.clickhouse_cluster or None
    # On a cluster the rebuilt rows go to the shards at once: queued in a Distributed table they
    # would land after the swap, in the tables swapped out.
    sync = {"insert_distributed_sync": 1} if cluster else {}

    def drop_fresh() -> None:
        for database in (fresh, private_database(fresh)):
            admin.execute(f"DROP DATABASE IF EXISTS {database}" + (f" ON CLUSTER {cluster}" if cluster else ""))

    drop_fresh()  # a replay that stopped half-way
    migrate(settings, database=fresh)
    reader = LogReader(settings)
    try:
        communes: dict[str, int] = {}  # kept from the rebuild into the tail

        def into(database: str, phase: str) -> int:
            client = connect(settings, database, **sync)
            rows = ProjectionRows(client, database, settings.time_bounds, settings.edge_check(), communes)

            def handle(records: list[Any]) -> None:
                now_s = int(time.time())
                for record in records:
                    if not rows.add(record.topic, record.partition, record.offset, record.value, now_s,
                                    record.timestamp):
                        report.skipped += 1
                report.rows.update(rows.flush())

            read = reader.read_to_end(handle, lambda done, total: progress(phase, done, total))
            report.rows.update(rows.finish())
            return read

        report.records = into(fresh, "rebuilding")
        swap_projections(connect(settings, live), live, fresh, cluster)
        report.tail_records = into(live, "catching up")
    finally:
        reader.close()
    drop_fresh()
    report.seconds = time.monotonic() - started
    return report
