"""`binhyen worker`: the Faust app wiring the processors to Kafka and ClickHouse.

Messages are consumed as raw bytes and decoded here, not by Faust: Faust acknowledges a
message before its own decode-error handler runs, which would lose it. Every batch is
(1) decoded and validated, (2) its failures produced to the dead-letter topic, (3) its
valid events inserted into ClickHouse, retrying until that succeeds, and only then (4)
acknowledged, so offsets are committed only for events that reached ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from clickhouse_driver.errors import Error as ClickHouseError

from processors.validation import InvalidEvent, check_rules
from schemas import CODEC, DecodeError
from sinks.clickhouse import EventSink, connect, event_row
from streams.config import Settings
from streams.topics import DEAD_LETTER, INPUT_TOPICS, TOPIC_OF_TYPE

log = logging.getLogger("binhyen.worker")
MAX_BACKOFF_S = 10.0


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


def make_app(settings: Settings) -> faust.App:
    app = faust.App(
        "binhyen-worker",
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(settings.state_dir / "faust"),
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_interval=1.0,
        producer_acks=-1,
    )
    inputs = app.topic(*INPUT_TOPICS, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(DEAD_LETTER, key_type=bytes, value_type=bytes,
                             key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, concurrency=1)  # concurrency 1: faust can commit past in-flight work otherwise
    async def ingest(stream: faust.StreamT) -> None:
        sink = EventSink(connect(settings, settings.clickhouse_database))
        loop = asyncio.get_running_loop()
        async for events in stream.noack_take(settings.worker_batch_size, within=settings.worker_batch_seconds):
            now = time.time()
            pending = []
            for event in events:
                message = event.message
                verdict = triage(message.value, message.topic)
                if isinstance(verdict, Accepted):
                    sink.add(event_row(verdict.event_type, verdict.record, message.topic,
                                       message.partition, message.offset, int(now)))
                else:
                    log.warning("dead letter %s[%d]@%d: %s", message.topic, message.partition,
                                message.offset, verdict)
                    letter = dead_letter(verdict, message.topic, message.partition, message.offset,
                                         message.value, int(now * 1000))
                    pending.append(await dead_letters.send(value=letter))
            for future in pending:
                await future
            await _flush_until_done(sink, loop)
            for event in events:
                await stream.ack(event)

    return app


async def _flush_until_done(sink: EventSink, loop: asyncio.AbstractEventLoop) -> None:
    """Retry the insert with capped backoff until it succeeds or the worker stops."""
    backoff = 0.5
    while True:
        try:
            written = await loop.run_in_executor(None, sink.flush)
        except (ClickHouseError, OSError, EOFError) as exc:
            log.warning("ClickHouse insert of %d events failed (%s: %s); retrying in %.1fs",
                        len(sink.batch), type(exc).__name__, str(exc).splitlines()[0][:200], backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        if written:
            log.info("inserted %d events into ClickHouse", written)
        return


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Run one worker until SIGINT/SIGTERM."""
    app = make_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
