"""`binhyen worker`: Faust wired to the batch step, the checkpoint and the sinks.

Messages are consumed as raw bytes and decoded by the batch step, not by Faust (Faust
acknowledges a message before its own decode-error handler runs, which would lose it). Each
agent runs the same loop (`consume`): take a batch, run the batch step over it
(streams.runtime.batch), commit it (streams.runtime.checkpoint: state → produce → sinks →
offsets). Agents run at concurrency 1 (faust can otherwise commit past in-flight work).

Agents:
- `commune_events`: tips, device signals, feedback and the internal commune-control topic
  (alert actions, verdicts sent without a commune and timer ticks, re-keyed by commune), all
  keyed by commune and sharing one partition count with the state tables; emits incidents and
  alert lifecycle events;
- `registry_events`: model changes and alert actions (recorded; actions forwarded to the
  control topic under their commune, where the commune's alert state lives);
- `deliver_alerts`: the alerts topic to the notifier sinks (the log, a webhook per route), each
  route on its own (streams.runtime.delivery).
A timer sends a tick for every commune whose alert state has something due (an unacked P1,
a silent device), so escalation happens even when the commune is quiet — in event time, and
only once every ack given before the tick's time has reached the commune
(streams.runtime.timer), so alert lifecycles are those of `binhyen process`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import faust
from faust.exceptions import PartitionsMismatch
from faust.types import TP
from clickhouse_driver.errors import Error as ClickHouseError
from kafka.errors import KafkaError

from processors.alerts import repaged_counts, unacked_p1_since
from processors.pipeline import EventProcessor, ProcessorState
from sinks.action_links import links_for
from sinks.base import Sink, flush_until_done
from sinks.clickhouse import alert_row, alert_sink, connect, event_sink, incident_sinks, tip_score_sink
from schemas import CODEC
from sinks.notifiers import AlertQueue, LogNotifier, WebhookNotifier
from streams.config import ConfigError, Settings
from streams.edge.kafka import GroupProgress, ensure_topics
from streams.runtime import faust_compat, metrics
from streams.runtime.align import AlignedStep, EventTimeAligner
from streams.runtime.batch import BatchOutput, BatchStep, EventClock, Message
from streams.runtime.checkpoint import Checkpoint, sink_failed, sink_flushed
from streams.runtime.delivery import RouteDelivery
from streams.runtime.state import BatchedTable, EventCursor, PartitionedCounts
from streams.runtime.timer import TICK_EVERY_S, TickTimer, tick_message
from streams.runtime.versions import VersionRegistry
from streams.runtime.supervision import (
    broker_lost_its_data, quiet_kafka_client_logs, restart_process, restart_with_fresh_state, wait_for_servers,
)
from streams.topics import (
    ALERT_ACTIONS, ALERTS, COMMUNE_CONTROL, DEAD_LETTER, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, MODEL_CHANGES, TIPS,
    physical,
)

faust_compat.apply()  # before any faust App: faust-streaming 0.15.3 loses records on a rebalance without it
log = logging.getLogger("binhyen.worker")
METRICS_EVERY_S = 5.0
HEARTBEAT_EVERY_S = 5.0
UNKNOWN_TABLE, UNKNOWN_DATABASE = 60, 81  # ClickHouse's error codes
RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
SOURCE_TOPICS = (TIPS, DEVICE_SIGNALS, FEEDBACK, COMMUNE_CONTROL, MODEL_CHANGES, ALERT_ACTIONS, ALERTS)


class VersionPromoted(Exception):
    """Another processor version went live: this worker stops, and `run` restarts it under that one."""


async def consume(stream: faust.StreamT, step: Callable[[list[Message], int], BatchOutput],
                  checkpoint: Checkpoint, batch_size: int, batch_seconds: float, design_topic: dict[str, str]) -> None:
    """The worker's loop: take a batch, run the step over it, commit it. Messages carry the
    design's topic names (`design_topic` maps a processor version's own topics back)."""
    async for events in stream.noack_take(batch_size, within=batch_seconds):
        started = time.time()
        out = step(as_messages(events, design_topic), int(started * 1000))
        await checkpoint.commit(out, [message.token for message in out.done])
        metrics.observe_batch(out, started)


def as_messages(events: list[Any], design_topic: dict[str, str]) -> list[Message]:
    return [Message(design_topic.get(e.message.topic, e.message.topic), e.message.partition, e.message.offset,
                    e.message.value, e, int((e.message.timestamp or 0) * 1000)) for e in events]


def make_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.worker_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(settings.faust_dir),
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
    # A processor version has a control topic of its own, and its own outputs while reprocessing.
    topic = {name: physical(settings, name) for name in (*SOURCE_TOPICS, DEAD_LETTER, INCIDENTS)}
    design_topic = {real: name for name, real in topic.items()}
    outputs = {name: app.topic(topic[name], **RAW) for name in (DEAD_LETTER, INCIDENTS, ALERTS, COMMUNE_CONTROL)}

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await outputs[topic].send(key=key, value=value)

    json_table = {"partitions": settings.commune_partitions}  # keys and values serialised as JSON
    tables = {
        "communes": app.Table("communes", help="open incidents and seen event ids per commune", **json_table),
        "reputation": app.GlobalTable("reputation", help="verdict counts per reporter, group, channel, commune",
                                      **json_table),
        "chains": app.GlobalTable("chains", help="communes that carried each forwarded text", **json_table),
        "alerts": app.Table("alerts", help="alerts, tip counts and device last-seen per commune", **json_table),
        "origins": app.GlobalTable("origins", help="who was behind each tip, which tips made each incident (a year)",
                                   **json_table),
    }
    credibility, alerting, staff = settings.credibility_config(), settings.alert_config(), settings.staff_registry()
    meaning = settings.meaning_model()
    check = settings.edge_check()
    if check is None:
        log.warning("no BINHYEN_EDGE_CHECK_KEY and no pseudonym key here: pseudonyms and text tokens are not "
                    "verified (`binhyen gateway check-key` prints the key where the pseudonym key lives)")
    clock = EventClock()
    started = time.monotonic()
    batch = (settings.worker_batch_size, settings.worker_batch_seconds)

    # History is read far out of event-time order: a reprocessing worker aligns it (streams.runtime.align).
    aligned = {topic[name]: name for name in (TIPS, DEVICE_SIGNALS, FEEDBACK, COMMUNE_CONTROL)}
    aligner = EventTimeAligner(lambda p, last: faust_compat.at_end(app.consumer, TP(topic[p[0]], p[1]), last)) \
        if settings.reprocessing else None

    @app.agent(app.topic(TIPS, DEVICE_SIGNALS, FEEDBACK, topic[COMMUNE_CONTROL], **RAW), concurrency=1)
    async def commune_events(stream: faust.StreamT) -> None:
        cursor = EventCursor()
        state = {name: BatchedTable(table, cursor, lambda event: faust_compat.route_state_to(stream, event))
                 for name, table in tables.items()}
        # Ticks come from the timer per commune: a global event-time tick would write the state
        # of other communes outside their partition.
        # Reputation is read by every worker and written by each: counted per partition (no lost increments).
        reputation = PartitionedCounts(state["reputation"], settings.commune_partitions,
                                       lambda: cursor.current.message.partition)
        processor = EventProcessor(ProcessorState(**{**state, "reputation": reputation}), credibility, alerting,
                                   global_ticks=False, staff=staff, meaning=meaning)
        client = connect(settings, settings.clickhouse_database)
        incidents, members = incident_sinks(client)
        # `events` last: once an event is there, so is everything it caused (what verifiers wait on).
        sinks: dict[str, Sink] = {"incidents": incidents, "incident_members": members, "alerts": alert_sink(client),
                                  "tip_scores": tip_score_sink(client, settings.clickhouse_database)}
        if not settings.reprocessing:  # history's events are in the live tables already
            sinks["events"] = event_sink(client, settings.clickhouse_database)
        step = BatchStep(processor, cursor, clock, settings.time_bounds, record_events="events" in sinks,
                         partitions=settings.commune_partitions, check=check)
        run = step.run if aligner is None else AlignedStep(step, aligner, lambda: [
            (aligned[tp.topic], tp.partition) for tp in app.consumer.assignment() if tp.topic in aligned]).run
        try:
            await consume(stream, run, Checkpoint(state.values(), send, sinks, stream.ack), *batch, design_topic)
        except PartitionsMismatch as exc:  # topics re-created under us (a broker that lost its data)
            log.error("%s", " ".join(str(exc).split()))
            restart_with_fresh_state(settings, time.monotonic() - started)

    @app.agent(app.topic(MODEL_CHANGES, ALERT_ACTIONS, **RAW), concurrency=1)
    async def registry_events(stream: faust.StreamT) -> None:
        sinks: dict[str, Sink] = {} if settings.reprocessing else {
            "events": event_sink(connect(settings, settings.clickhouse_database), settings.clickhouse_database)}
        step = BatchStep(None, bounds=settings.time_bounds, record_events=not settings.reprocessing, check=check)
        await consume(stream, step.run, Checkpoint((), send, sinks, stream.ack), *batch, design_topic)

    if not settings.reprocessing:  # reprocessing history never pages anyone
        notifiers: dict[str, AlertQueue] = {"log": LogNotifier()}
        if settings.webhook_urls:
            assert settings.webhook_secret is not None  # Settings refuses webhook routes without one
            link_secret = settings.link_secret()
            actions = None if link_secret is None else lambda alert: links_for(  # signed ack/resolve links
                alert, staff, link_secret, settings.gateway_url, int(time.time()) + settings.link_ttl_s)
            for route, url in settings.webhook_urls.items():
                notifiers[f"webhook:{route}"] = WebhookNotifier(route, url, settings.webhook_secret, actions=actions)

        notices = alert_sink(connect(settings, settings.clickhouse_database))

        async def raise_notice(alert: dict[str, Any]) -> None:
            """An undeliverable notice is an alert like the others: on the alerts topic (to be paged
            on its route) and in ClickHouse `alerts` (where a replay of the topic puts it too)."""
            await (await send(ALERTS, alert["alert_id"].encode(), CODEC.encode("alert", alert)))
            notices.add(alert_row(alert))
            await flush_until_done(notices, sink_failed, sink_flushed)

        @app.agent(app.topic(ALERTS, **RAW), concurrency=1)
        async def deliver_alerts(stream: faust.StreamT) -> None:
            """Each route on its own (streams.runtime.delivery): a dead endpoint delays no other."""
            delivery = RouteDelivery(notifiers, stream.ack, raise_notice, alerting.escalation[-1]["route"],
                                     settings.undeliverable_after_s)
            delivery.start()
            try:
                async for events in stream.noack_take(100, within=0.05):
                    await delivery.dispatch(as_messages(events, design_topic), settings.live_since_ms)
            finally:
                delivery.stop()

    progress = GroupProgress(settings, settings.worker_group, (TIPS, DEVICE_SIGNALS, FEEDBACK, ALERT_ACTIONS))
    timer = TickTimer(progress.highwaters, progress.committed)

    @app.timer(interval=TICK_EVERY_S)
    async def tick_due_communes() -> None:
        """Escalations and silent devices in communes with no new events: a tick per commune due."""
        states = list(tables["alerts"].items())
        try:
            ticks = await asyncio.get_running_loop().run_in_executor(
                None, timer.round, states, clock.watermark_ms, int(time.time() * 1000))
        except (KafkaError, ConfigError) as exc:  # the next round asks again
            log.warning("escalation timer: the group's progress is unknown (%s); retrying", type(exc).__name__)
            return
        for commune, at in ticks:
            await send(COMMUNE_CONTROL, str(commune).encode(), tick_message(commune, at))

    @app.on_partitions_revoked.connect
    async def drop_held(sender: Any, revoked: set[Any], **_: Any) -> None:
        """Held messages of revoked partitions are let go unacknowledged (their next owner reads them)."""
        if aligner is not None:
            aligner.forget([(aligned[tp.topic], tp.partition) for tp in revoked if tp.topic in aligned])

    @app.on_partitions_assigned.connect
    async def count_partitions(sender: Any, assigned: set[Any], **_: Any) -> None:
        """How much of the group's work this worker holds now (several workers share a group)."""
        metrics.ASSIGNED_TIP_PARTITIONS.set(sum(1 for tp in assigned if tp.topic == TIPS))

    versions = VersionRegistry(connect(settings, settings.clickhouse_database), settings.clickhouse_database)

    worker_id = f"{socket.gethostname()}:{os.getpid()}"

    @app.timer(interval=HEARTBEAT_EVERY_S)
    async def follow_promotions() -> None:
        """Say this worker runs; a live one stops instead when another processor version is promoted
        (`run` restarts it under that one; the promotion waits for the heartbeats to stop)."""
        try:
            current = None if settings.reprocessing else versions.current()
            if settings.reprocessing or (current.name if current else "") == settings.processor_version:
                versions.heartbeat(settings.worker_group, worker_id)
                return
        except ClickHouseError:  # the next round tries again
            return
        log.warning("processor version %s is being promoted; this worker (%s) stops and restarts under it",
                    current.name if current else "from files", settings.processor_version or "from files")
        await app.crash(VersionPromoted(current.name if current else ""))

    @app.timer(interval=METRICS_EVERY_S)
    async def observe_state() -> None:
        """Lag per partition, open incidents, unacknowledged P1s and state sizes, for the gauges."""
        consumer = app.consumer
        metrics.COMMITTED.clear()  # partitions revoked by a rebalance must not keep their last figures
        metrics.LAG.clear()
        for tp in consumer.assignment():
            if tp.topic not in design_topic:
                continue
            committed = faust_compat.committed_offset(consumer, tp)
            metrics.COMMITTED.labels(tp.topic, str(tp.partition)).set(committed)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))
        now_ms = time.time() * 1000
        communes = [state or {} for state in tables["communes"].values()]
        metrics.OPEN_INCIDENTS.set(sum(len(state.get("open", ())) for state in communes))
        metrics.EXPIRED_VERDICTS.set(sum(state.get("expired_verdicts", 0) for state in communes))
        raised = [at for state in tables["alerts"].values() for at in unacked_p1_since(state)]
        metrics.UNACKED_P1.set(len(raised))
        metrics.OLDEST_UNACKED_P1.set(max(0.0, (now_ms - min(raised)) / 1000) if raised else 0.0)
        repaged = [count for state in tables["alerts"].values() for count in repaged_counts(state)]
        metrics.REPAGING.set(len(repaged))
        metrics.MOST_REPAGED.set(max(repaged, default=0))
        for name, table in tables.items():
            metrics.STATE_KEYS.labels(name).set(len(table))

    return app


def with_processor_version(settings: Settings, name: str | None, reprocessing: bool) -> Settings:
    """The settings of the processor version to run: `name`, else the live one (waiting while one
    is being promoted), else the configs from files."""
    registry = VersionRegistry(connect(settings), settings.clickhouse_database)
    waiting = False
    while True:
        try:
            version = registry.get(name) if name else registry.wait_for_live()
            break
        except ClickHouseError as exc:  # a worker started with the stack: `binhyen up` migrates after starting it
            if getattr(exc, "code", None) not in (UNKNOWN_TABLE, UNKNOWN_DATABASE):
                raise
            if not waiting:
                log.warning("ClickHouse has no processor_versions table yet; waiting for `binhyen migrate`")
                waiting = True
            time.sleep(1.0)
    if name and version is None:
        raise ConfigError(f"no processor version {name!r} is registered; `binhyen reprocess` registers one")
    if reprocessing and version is None:
        raise ConfigError("--reprocessing needs --processor-version")
    if version is None:
        return settings
    log.info("processor version %s (%s)%s", version.name, version.state, ", reprocessing" if reprocessing else "")
    return settings.for_version(version.name, version.config_texts, reprocessing,
                                live_since_ms=0 if reprocessing else version.at_ms)


def run(settings: Settings, loglevel: str = "INFO", version: str | None = None, reprocessing: bool = False) -> None:
    """Run one worker until SIGINT/SIGTERM (see streams.runtime.supervision for outages)."""
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    # The driver logs every failed connection with a traceback; the checkpoint says it in a line.
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
    wait_for_servers(settings)
    settings = with_processor_version(settings, version, reprocessing)
    created = ensure_topics(settings)
    if created:
        log.warning("created topics %s", ", ".join(created))
    faust_compat.bound_fetch_wait(settings.fetch_max_wait_ms)
    quiet_kafka_client_logs(settings)
    settings.faust_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    app = make_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    port = metrics.serve(settings)
    started = time.monotonic()
    try:
        worker.execute_from_commandline()
    except SystemExit:
        if broker_lost_its_data(app, worker):
            restart_with_fresh_state(settings, time.monotonic() - started)  # same port: the target stays
        if isinstance(getattr(app, "crash_reason", None), VersionPromoted):
            restart_process()
        metrics.unregister_target(settings, port)
        raise
