"""`binhyen worker`: the Faust app wiring the processors to Kafka and ClickHouse.

Messages are consumed as raw bytes and decoded here, not by Faust: Faust acknowledges a
message before its own decode-error handler runs, which would lose it. Every batch is
(1) decoded and validated, (2) run through the processors, (3) its dead letters and
incident events produced, (4) its rows inserted into ClickHouse, retrying until that
succeeds, and only then (5) acknowledged, so offsets are committed only for events whose
effects reached Kafka and ClickHouse. Agents run at concurrency 1 (faust can otherwise
commit past in-flight work).

Agents:
- `commune_events`: tips, device signals, feedback and the internal commune-control topic
  (alert actions and timer ticks re-keyed by commune), all keyed by commune and sharing one
  partition count with the state tables; emits incidents and alert lifecycle events;
- `registry_events`: model changes and alert actions (recorded; actions forwarded to the
  control topic under their commune);
- `deliver_alerts`: the alerts topic to the notifier sinks (log, webhook), acknowledged
  only once delivered.
A timer sends a tick for every commune whose alert state has something due (an unacked P1,
a silent device), so escalation happens even when the commune is quiet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import faust
from clickhouse_driver.errors import Error as ClickHouseError
from faust.exceptions import PartitionsMismatch

from processors.alerts import commune_of_alert, unacked_p1_since
from processors.pipeline import EventProcessor, ProcessorState
from processors.validation import InvalidEvent, check_rules
from schemas import CODEC, DecodeError
from sinks.clickhouse import TableSink, alert_row, alert_sink, connect, event_row, event_sink, incident_rows, incident_sinks
from sinks.notifiers import DeliveryError, LogNotifier, WebhookNotifier
from streams import metrics
from streams.config import Settings
from streams.kafka import ensure_topics
from streams.state import BatchedTable
from streams.supervision import broker_lost_its_data, quiet_kafka_client_logs, restart_with_fresh_state, wait_for_servers
from streams.topics import (
    ALERT_ACTIONS, ALERTS, COMMUNE_CONTROL, DEAD_LETTER, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, MODEL_CHANGES, TIPS,
    TOPIC_OF_TYPE,
)

log = logging.getLogger("binhyen.worker")
MAX_BACKOFF_S = 10.0
MAX_DEAD_LETTER_ORIGINAL = 65_536
SWEEP_EVERY_S = 60.0
TICK_EVERY_S = 2.0
METRICS_EVERY_S = 5.0
LIVE_HORIZON_MS = 24 * 3_600_000  # timer ticks act on what is due within a day of the clock, not on replays


@dataclass(frozen=True)
class Accepted:
    event_type: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Tick:
    commune: int
    now_ms: int


def tick_message(commune: int, now_ms: int) -> bytes:
    return json.dumps({"tick": commune, "now_ms": now_ms}).encode()


def triage(value: Any, topic: str) -> Accepted | Tick | str:
    """Decode and validate one message value: the event, or the reason it is dead-lettered."""
    if not isinstance(value, (bytes, bytearray)):
        return "empty message value (tombstone); binhyen input topics carry no tombstones"
    if topic == COMMUNE_CONTROL and value[:1] == b"{":
        try:
            tick = json.loads(value)
            return Tick(int(tick["tick"]), int(tick["now_ms"]))
        except (ValueError, KeyError, TypeError):
            return "malformed tick on the control topic"
    try:
        event_type, record = CODEC.decode(value)
    except DecodeError as exc:
        return str(exc)
    expected = (ALERT_ACTIONS, COMMUNE_CONTROL) if event_type == "alert_action" else (TOPIC_OF_TYPE.get(event_type),)
    if topic not in expected:
        return f"a {event_type} event on {topic}; publish it to {TOPIC_OF_TYPE[event_type]}"
    try:
        check_rules(event_type, record)
    except InvalidEvent as exc:
        return str(exc)
    return Accepted(event_type, record)


def dead_letter(reason: str, topic: str, partition: int, offset: int, value: Any, now_ms: int) -> bytes:
    """The dead-letter event; the original is cut to 64 KiB so a near-limit message still fits."""
    original = bytes(value or b"")
    return CODEC.encode(
        "dead_letter",
        {
            "reason": reason,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "original": original[:MAX_DEAD_LETTER_ORIGINAL],
            "original_size": len(original),
            "dead_lettered_at_ms": now_ms,
        },
    )


@dataclass(frozen=True)
class Sinks:
    events: TableSink
    incidents: TableSink | None = None
    members: TableSink | None = None
    alerts: TableSink | None = None

    def all(self) -> list[TableSink]:
        return [sink for sink in (self.events, self.incidents, self.members, self.alerts) if sink is not None]


@dataclass
class BatchOutput:
    """What one batch must get out before it may be acknowledged."""

    sinks: Sinks
    letters: list[bytes] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest snapshot per incident
    alerts: list[dict[str, Any]] = field(default_factory=list)
    forwards: list[tuple[int, bytes]] = field(default_factory=list)  # (commune, alert action) to re-key


def make_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.worker_group,
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
        broker_credentials=settings.kafka_security.faust_credentials(),
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    commune_topics = app.topic(TIPS, DEVICE_SIGNALS, FEEDBACK, COMMUNE_CONTROL, **raw)
    control_topic = app.topic(COMMUNE_CONTROL, **raw)
    alerts_topic = app.topic(ALERTS, **raw)
    registry_topics = app.topic(MODEL_CHANGES, ALERT_ACTIONS, **raw)
    dead_letters = app.topic(DEAD_LETTER, **raw)
    incidents_topic = app.topic(INCIDENTS, **raw)
    json_table = {"partitions": settings.commune_partitions}  # keys and values serialised as JSON
    tables = {
        "communes": app.Table("communes", help="open incidents and seen event ids per commune", **json_table),
        "reputation": app.GlobalTable("reputation", help="verdict counts per reporter, group, channel, commune",
                                      **json_table),
        "chains": app.GlobalTable("chains", help="communes that carried each forwarded text", **json_table),
        "alerts": app.Table("alerts", help="alerts, tip counts and device last-seen per commune", **json_table),
    }
    credibility, alerting = settings.credibility_config(), settings.alert_config()
    started = time.monotonic()

    async def drain(stream: faust.StreamT, output_sinks: Sinks, process: bool) -> None:
        batched = {name: BatchedTable(table, lambda: stream.current_event, stream._set_current_event)
                   for name, table in tables.items()} if process else {}
        # Ticks come from the timer per commune: a global event-time tick would write the state
        # of other communes outside their partition.
        processor = EventProcessor(ProcessorState(**batched), credibility, alerting,
                                   global_ticks=False) if process else None
        loop = asyncio.get_running_loop()
        last_sweep, watermark = time.monotonic(), 0
        async for events in stream.noack_take(settings.worker_batch_size, within=settings.worker_batch_seconds):
            out = BatchOutput(sinks=output_sinks)
            now = time.time()
            consumed: Counter[tuple[str, str]] = Counter()
            device_communes: set[int] = set()
            for event in events:
                message = event.message
                verdict = triage(message.value, message.topic)
                consumed[message.topic, verdict.event_type if isinstance(verdict, Accepted) else
                         "tick" if isinstance(verdict, Tick) else "invalid"] += 1
                if isinstance(verdict, Tick):
                    if processor is not None:
                        stream._set_current_event(event)
                        try:
                            out.alerts += processor.alerting.tick(verdict.commune, verdict.now_ms)
                        except Exception:  # the next tick tries again
                            log.exception("tick of commune %d failed", verdict.commune)
                    continue
                if not isinstance(verdict, Accepted):
                    log.warning("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, verdict)
                    metrics.DEAD_LETTERS.labels(metrics.reason_kind(verdict)).inc()
                    out.letters.append(dead_letter(verdict, message.topic, message.partition, message.offset,
                                                   message.value, int(now * 1000)))
                    continue
                if message.topic == COMMUNE_CONTROL:
                    pass  # a forwarded alert action: recorded in `events` when it first arrived
                else:
                    out.sinks.events.add(event_row(verdict.event_type, verdict.record, message.topic,
                                                   message.partition, message.offset, int(now)))
                if verdict.event_type == "alert_action" and message.topic == ALERT_ACTIONS:
                    commune = commune_of_alert(verdict.record["alert_id"])
                    if commune is not None:
                        out.forwards.append((commune, bytes(message.value)))
                    continue
                if processor is not None:
                    # Table writes go to the changelog (and RocksDB) partition of the *current*
                    # event; inside a batch that is ours to set, event by event.
                    stream._set_current_event(event)
                    try:
                        result = processor.handle(verdict.event_type, verdict.record)
                    except Exception as exc:  # a bug must not stop the stream: isolate the event
                        log.exception("processing %s[%d]@%d failed", message.topic, message.partition, message.offset)
                        metrics.DEAD_LETTERS.labels("processing").inc()
                        out.letters.append(dead_letter(f"processing failed: {type(exc).__name__}: {exc}",
                                                       message.topic, message.partition, message.offset,
                                                       message.value, int(now * 1000)))
                        continue
                    watermark = max(watermark, verdict.record["occurred_at_ms"])
                    metrics.EVENT_AGE.observe(max(0.0, now - verdict.record["occurred_at_ms"] / 1000))
                    if verdict.event_type == "device_signal":
                        device_communes.add(verdict.record["commune_code"])
                    for snapshot in result.incidents:
                        out.incidents[snapshot["incident_id"]] = snapshot
                    out.alerts += result.alerts
            if processor is not None and time.monotonic() - last_sweep > SWEEP_EVERY_S:
                try:
                    processor.sweep(watermark)
                except Exception:  # bounding state can wait for the next sweep; the stream cannot
                    log.exception("state sweep failed")
                last_sweep = time.monotonic()
            for table in batched.values():
                table.flush()
            stream._set_current_event(None)
            await publish(out)
            await flush_until_done(out.sinks.all(), loop)
            for event in events:
                await stream.ack(event)
            for (topic, event_type), count in consumed.items():
                metrics.CONSUMED.labels(topic, event_type).inc(count)
            for commune in device_communes:
                metrics.DEVICE_LAST_SEEN.labels(str(commune)).set(now)
            metrics.BATCH_LATENCY.observe(time.time() - now)

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
        for alert in out.alerts:
            metrics.ALERTS.labels(alert["severity"], alert["rule"], alert["state"]).inc()
            assert out.sinks.alerts is not None
            out.sinks.alerts.add(alert_row(alert))
            pending.append(await alerts_topic.send(key=alert["alert_id"].encode(), value=CODEC.encode("alert", alert)))
        for commune, action in out.forwards:
            pending.append(await control_topic.send(key=str(commune).encode(), value=action))
        for future in pending:
            await future

    @app.agent(commune_topics, concurrency=1)
    async def commune_events(stream: faust.StreamT) -> None:
        client = connect(settings, settings.clickhouse_database)
        incidents, members = incident_sinks(client)
        try:
            await drain(stream, Sinks(event_sink(client, settings.clickhouse_database), incidents, members,
                                       alert_sink(client)), process=True)
        except PartitionsMismatch as exc:  # topics re-created under us (a broker that lost its data)
            log.error("%s", " ".join(str(exc).split()))
            restart_with_fresh_state(settings, time.monotonic() - started)

    @app.timer(interval=TICK_EVERY_S)
    async def tick_due_communes() -> None:
        """Escalations and silent devices in communes with no new events: a tick per commune due."""
        now_ms = int(time.time() * 1000)
        for key, commune_state in list(tables["alerts"].items()):
            due = (commune_state or {}).get("due")
            if due is not None and now_ms - LIVE_HORIZON_MS <= due <= now_ms:
                await control_topic.send(key=str(key).encode(), value=tick_message(int(key), now_ms))

    source_topics = {TIPS, DEVICE_SIGNALS, FEEDBACK, COMMUNE_CONTROL, MODEL_CHANGES, ALERT_ACTIONS, ALERTS}

    @app.on_partitions_assigned.connect
    async def warn_if_shared(sender: Any, assigned: set[Any], **_: Any) -> None:
        """Say loudly when another worker shares the group: rebalances can skip events (README)."""
        tips = sum(1 for tp in assigned if tp.topic == TIPS)
        metrics.ASSIGNED_TIP_PARTITIONS.set(tips)
        if 0 < tips < settings.commune_partitions:
            log.error("this worker holds %d of %d tip partitions: another worker shares group %r. Concurrent "
                      "workers can skip events after a rebalance (faust-streaming; README, Throughput): run one "
                      "worker per group", tips, settings.commune_partitions, settings.worker_group)

    @app.timer(interval=METRICS_EVERY_S)
    async def observe_state() -> None:
        """Lag per partition, open incidents, unacknowledged P1s and state sizes, for the gauges."""
        consumer = app.consumer
        metrics.COMMITTED.clear()  # partitions revoked by a rebalance must not keep their last figures
        metrics.LAG.clear()
        for tp in consumer.assignment():
            if tp.topic not in source_topics:
                continue
            committed = consumer._committed_offset.get(tp) or 0  # faust's own record of the last commit
            metrics.COMMITTED.labels(tp.topic, str(tp.partition)).set(committed)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))
        now_ms = time.time() * 1000
        metrics.OPEN_INCIDENTS.set(sum(len((state or {}).get("open", ())) for state in tables["communes"].values()))
        raised = [at for state in tables["alerts"].values() for at in unacked_p1_since(state)]
        metrics.UNACKED_P1.set(len(raised))
        metrics.OLDEST_UNACKED_P1.set(max(0.0, (now_ms - min(raised)) / 1000) if raised else 0.0)
        for name, table in tables.items():
            metrics.STATE_KEYS.labels(name).set(len(table))

    notifiers: list[Any] = [LogNotifier()]
    if settings.webhook_urls:
        assert settings.webhook_secret is not None  # Settings refuses webhook routes without one
        notifiers.append(WebhookNotifier(settings.webhook_urls, settings.webhook_secret, alerting.routes["digest"]))

    @app.agent(alerts_topic, concurrency=1)
    async def deliver_alerts(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream.noack_take(100, within=0.05):
            for event in events:
                try:
                    alert = CODEC.decode(event.message.value)[1]
                except DecodeError as exc:
                    log.error("undeliverable alert at %s[%d]@%d: %s", event.message.topic, event.message.partition,
                              event.message.offset, exc)
                    continue
                for notifier in notifiers:
                    notifier.add(alert)
            await deliver_until_done(notifiers, loop)
            for event in events:
                await stream.ack(event)

    @app.agent(registry_topics, concurrency=1)
    async def registry_events(stream: faust.StreamT) -> None:
        await drain(stream, Sinks(event_sink(connect(settings, settings.clickhouse_database),
                                                  settings.clickhouse_database)), process=False)

    return app


async def flush_until_done(sinks: list[TableSink], loop: asyncio.AbstractEventLoop) -> None:
    """Insert every sink's batch, retrying with capped backoff until it succeeds or the worker stops."""
    for sink in sinks:
        backoff = 0.5
        while sink.batch:
            started = time.monotonic()
            try:
                written = await loop.run_in_executor(None, sink.flush)
            except (ClickHouseError, OSError, EOFError) as exc:
                metrics.SINK_FAILURES.labels(sink.table).inc()
                log.warning("ClickHouse insert of %d rows into %s failed (%s: %s); retrying in %.1fs",
                            len(sink.batch), sink.table, type(exc).__name__, (str(exc).splitlines() or [""])[0][:200], backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            metrics.SINK_SECONDS.labels(sink.table).observe(time.monotonic() - started)
            metrics.SINK_BATCH.labels(sink.table).observe(written)
            metrics.SINK_ROWS.labels(sink.table).inc(written)
            log.info("inserted %d rows into %s", written, sink.table)


async def deliver_until_done(notifiers: list[Any], loop: asyncio.AbstractEventLoop) -> None:
    """Deliver every queued alert, retrying a failing endpoint with capped backoff; never drop one."""
    for notifier in notifiers:
        backoff = 0.5
        while notifier.pending:
            count = len(notifier.pending)
            try:
                await loop.run_in_executor(None, notifier.flush)
                metrics.DELIVERIES.labels(type(notifier).__name__, "delivered").inc(count)
            except DeliveryError as exc:
                metrics.DELIVERIES.labels(type(notifier).__name__, "failed").inc()
                log.warning("alert delivery failed (%s); %d alerts wait; retrying in %.1fs",
                            exc, len(notifier.pending), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


def bound_fetch_wait(max_wait_ms: int) -> None:
    """Cap the fetch wait of faust's consumer, which faust-streaming 0.15 fixes at 1500 ms.

    A broker may hold a fetch until that wait runs out when some fetched partitions are empty
    (the local tansu broker does: a bare consumer of an 8-partition topic sees p50 342 ms at
    1500 ms and 3 ms at 100 ms). Apache Kafka answers as soon as data is there, so the cap
    only makes idle polls more frequent there.
    """
    from faust.transport.drivers import aiokafka as driver

    original = driver.aiokafka.AIOKafkaConsumer
    if getattr(original, "binhyen_bounded", False):
        return

    class BoundedWaitConsumer(original):  # type: ignore[misc, valid-type]
        binhyen_bounded = True

        def __init__(self, *topics: Any, **options: Any) -> None:
            options["fetch_max_wait_ms"] = min(options.get("fetch_max_wait_ms", max_wait_ms), max_wait_ms)
            super().__init__(*topics, **options)

    driver.aiokafka.AIOKafkaConsumer = BoundedWaitConsumer


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Run one worker until SIGINT/SIGTERM (see streams.supervision for outages)."""
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    # The driver logs every failed connection with a traceback; flush_until_done says it in a line.
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
    wait_for_servers(settings)
    created = ensure_topics(settings)
    if created:
        log.warning("created topics %s", ", ".join(created))
    bound_fetch_wait(settings.fetch_max_wait_ms)
    quiet_kafka_client_logs(settings)
    app = make_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    port = metrics.serve(settings)
    started = time.monotonic()
    try:
        worker.execute_from_commandline()
    except SystemExit:
        if broker_lost_its_data(app, worker):
            restart_with_fresh_state(settings, time.monotonic() - started)  # same port: the target stays
        metrics.unregister_target(settings, port)
        raise
