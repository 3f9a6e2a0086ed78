"""`binhyen worker`: the Faust app wiring the processors to Kafka and ClickHouse.

Messages are consumed as raw bytes and decoded here, not by Faust: Faust acknowledges a
message before its own decode-error handler runs, which would lose it. Every batch is
(1) decoded and validated, (2) run through the processors, (3) its dead letters and
incident events produced, (4) its rows inserted into ClickHouse, retrying until that
succeeds, and only then (5) acknowledged, so offsets are committed only for events whose
effects reached Kafka and ClickHouse. Agents run at concurrency 1 (faust can otherwise
commit past in-flight work).

Two agents: `commune_events` (tips, device signals, feedback — keyed by commune, sharing
one partition count with the `communes` state table) and `registry_events` (model changes,
alert actions), which are only recorded for now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from clickhouse_driver.errors import Error as ClickHouseError

from processors.pipeline import EventProcessor, ProcessorState
from processors.validation import InvalidEvent, check_rules
from schemas import CODEC, DecodeError
from sinks.clickhouse import TableSink, connect, event_row, event_sink, incident_rows, incident_sinks
from streams.config import Settings
from streams.topics import (
    ALERT_ACTIONS, DEAD_LETTER, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, MODEL_CHANGES, TIPS, TOPIC_OF_TYPE,
)

log = logging.getLogger("binhyen.worker")
MAX_BACKOFF_S = 10.0
SWEEP_EVERY_S = 60.0


@dataclass(frozen=True)
class Accepted:
    event_type: str
    record: dict[str, Any]


def triage(value: Any, topic: str) -> Accepted | str:
    """Decode and validate one message value: the event, or the reason it is dead-lettered."""
    if not isinstance(value, (bytes, bytearray)):
        return "empty message value (tombstone); binhyen input topics carry no tombstones"
    try:
        event_type, record = CODEC.decode(value)
    except DecodeError as exc:
        return str(exc)
    if TOPIC_OF_TYPE.get(event_type) != topic:
        return f"a {event_type} event on {topic}; publish it to {TOPIC_OF_TYPE[event_type]}"
    try:
        check_rules(event_type, record)
    except InvalidEvent as exc:
        return str(exc)
    return Accepted(event_type, record)


def dead_letter(reason: str, topic: str, partition: int, offset: int, value: Any, now_ms: int) -> bytes:
    return CODEC.encode(
        "dead_letter",
        {
            "reason": reason,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "original": bytes(value or b""),
            "dead_lettered_at_ms": now_ms,
        },
    )


@dataclass(frozen=True)
class Sinks:
    events: TableSink
    incidents: TableSink | None = None
    members: TableSink | None = None

    def all(self) -> list[TableSink]:
        return [sink for sink in (self.events, self.incidents, self.members) if sink is not None]


@dataclass
class BatchOutput:
    """What one batch must get out before it may be acknowledged."""

    sinks: Sinks
    letters: list[bytes] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest snapshot per incident


def make_app(settings: Settings) -> faust.App:
    app = faust.App(
        "binhyen-worker",
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(settings.state_dir / "faust"),
        store="rocksdb://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_partitions=settings.commune_partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_max_batch_bytes,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    commune_topics = app.topic(TIPS, DEVICE_SIGNALS, FEEDBACK, **raw)
    registry_topics = app.topic(MODEL_CHANGES, ALERT_ACTIONS, **raw)
    dead_letters = app.topic(DEAD_LETTER, **raw)
    incidents_topic = app.topic(INCIDENTS, **raw)
    json_table = {"partitions": settings.commune_partitions}  # keys and values serialised as JSON
    state = ProcessorState(
        communes=app.Table("communes", help="open incidents and seen event ids per commune", **json_table),
        reputation=app.GlobalTable("reputation", help="verdict counts per reporter, group, channel, commune",
                                   **json_table),
        chains=app.GlobalTable("chains", help="communes that carried each forwarded text", **json_table),
    )
    credibility = settings.credibility_config()

    async def drain(stream: faust.StreamT, output_sinks: Sinks, process: bool) -> None:
        processor = EventProcessor(state, credibility) if process else None
        loop = asyncio.get_running_loop()
        last_sweep, watermark = time.monotonic(), 0
        async for events in stream.noack_take(settings.worker_batch_size, within=settings.worker_batch_seconds):
            out = BatchOutput(sinks=output_sinks)
            now = time.time()
            for event in events:
                message = event.message
                verdict = triage(message.value, message.topic)
                if not isinstance(verdict, Accepted):
                    log.warning("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, verdict)
                    out.letters.append(dead_letter(verdict, message.topic, message.partition, message.offset,
                                                   message.value, int(now * 1000)))
                    continue
                out.sinks.events.add(event_row(verdict.event_type, verdict.record, message.topic,
                                           message.partition, message.offset, int(now)))
                if processor is not None:
                    # Table writes go to the changelog (and RocksDB) partition of the *current*
                    # event; inside a batch that is ours to set, event by event.
                    stream._set_current_event(event)
                    result = processor.handle(verdict.event_type, verdict.record)
                    watermark = max(watermark, verdict.record["occurred_at_ms"])
                    for snapshot in result.incidents:
                        out.incidents[snapshot["incident_id"]] = snapshot
            if processor is not None and time.monotonic() - last_sweep > SWEEP_EVERY_S:
                processor.sweep(watermark)
                last_sweep = time.monotonic()
            stream._set_current_event(None)
            await publish(out)
            await flush_until_done(out.sinks.all(), loop)
            for event in events:
                await stream.ack(event)

    async def publish(out: BatchOutput) -> None:
        pending = [await dead_letters.send(value=letter) for letter in out.letters]
        for snapshot in out.incidents.values():
            row, members = incident_rows(snapshot)
            assert out.sinks.incidents is not None and out.sinks.members is not None
            out.sinks.incidents.add(row)
            for member in members:
                out.sinks.members.add(member)
            pending.append(await incidents_topic.send(key=str(snapshot["commune_code"]).encode(),
                                                      value=CODEC.encode("incident", snapshot)))
        for future in pending:
            await future

    @app.agent(commune_topics, concurrency=1)
    async def commune_events(stream: faust.StreamT) -> None:
        client = connect(settings, settings.clickhouse_database)
        incidents, members = incident_sinks(client)
        await drain(stream, Sinks(event_sink(client), incidents, members), process=True)

    @app.agent(registry_topics, concurrency=1)
    async def registry_events(stream: faust.StreamT) -> None:
        await drain(stream, Sinks(event_sink(connect(settings, settings.clickhouse_database))), process=False)

    return app


async def flush_until_done(sinks: list[TableSink], loop: asyncio.AbstractEventLoop) -> None:
    """Insert every sink's batch, retrying with capped backoff until it succeeds or the worker stops."""
    for sink in sinks:
        backoff = 0.5
        while sink.batch:
            try:
                written = await loop.run_in_executor(None, sink.flush)
            except (ClickHouseError, OSError, EOFError) as exc:
                log.warning("ClickHouse insert of %d rows into %s failed (%s: %s); retrying in %.1fs",
                            len(sink.batch), sink.table, type(exc).__name__, (str(exc).splitlines() or [""])[0][:200], backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            log.info("inserted %d rows into %s", written, sink.table)


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Run one worker until SIGINT/SIGTERM."""
    app = make_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
