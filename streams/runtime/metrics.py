"""The worker's Prometheus metrics and their HTTP endpoint.

Labels are bounded and never carry event content: topics, event types, partitions, tables,
severities, rules, dead-letter reason *kinds* (not the reason text) and commune codes (public
administrative codes). A reporter's contact or pseudonym is never a label.

Each worker registers its endpoint for the local Prometheus by writing a file_sd target file
in `<state>/prometheus/targets/`, removed when it stops cleanly; a worker killed leaves its
file behind, so Prometheus sees it down (`up == 0`) — which is what on-call must see.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from streams.config import ConfigError, Settings
from streams.runtime.batch import REJECTION_KINDS, BatchOutput

log = logging.getLogger("binhyen.worker")
PORT_TRIES = 16  # without BINHYEN_METRICS_PORT, a second local worker takes the next free port

REGISTRY = CollectorRegistry()
WORKER = Info("binhyen_worker", "This worker: PID, consumer group and processor version (`binhyen status` "
              "lists workers by it).", registry=REGISTRY)
CONSUMED = Counter("binhyen_events_consumed", "Messages consumed, by topic and event type "
                   "(type 'invalid' for dead-lettered ones).", ["topic", "type"], registry=REGISTRY)
DEAD_LETTERS = Counter("binhyen_dead_letters", "Messages dead-lettered, by kind of reason.", ["reason"],
                       registry=REGISTRY)
EVENT_AGE = Histogram("binhyen_event_age_seconds", "Event time to processed (includes upstream delay).",
                      buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400), registry=REGISTRY)
BATCH_LATENCY = Histogram("binhyen_batch_seconds", "Consumed to emitted: a batch from receipt until its "
                          "outputs are in Kafka and ClickHouse and it is acknowledged.",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY)
COMMITTED = Gauge("binhyen_consumer_position", "Next offset to process per partition (acknowledged + 1).",
                  ["topic", "partition"], registry=REGISTRY)
LAG = Gauge("binhyen_consumer_lag", "Messages behind the partition's high watermark (from fetch responses, "
            "not ListOffsets, which the local broker answers wrongly).", ["topic", "partition"], registry=REGISTRY)
# Sinks (sinks.base): the ClickHouse tables by table name, the alert notifiers as `log` and `webhook:<route>`.
SINK_ROWS = Counter("binhyen_sink_rows", "Items a sink took: rows inserted into a ClickHouse table, alert "
                    "notifications delivered.", ["table"], registry=REGISTRY)
SINK_BATCH = Histogram("binhyen_sink_batch_rows", "Items per successful sink flush.", ["table"],
                       buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000), registry=REGISTRY)
SINK_SECONDS = Histogram("binhyen_sink_insert_seconds", "Duration of a successful sink flush.", ["table"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=REGISTRY)
SINK_FAILURES = Counter("binhyen_sink_failures", "Failed sink flushes (each is retried; nothing is dropped).",
                        ["table"], registry=REGISTRY)
TICKS_LEFT_DUE = Counter("binhyen_ticks_left_due", "Ticks after which their commune was still due (a bug in "
                         "the alert engine: the timer would tick it every round; the log names the commune).",
                         registry=REGISTRY)
PAGES_UNDELIVERABLE = Counter("binhyen_pages_undeliverable", "Pages given up after the route did not take "
                              "them for BINHYEN_UNDELIVERABLE_AFTER_S (each raised as an alert on the fallback route).",
                              ["route"], registry=REGISTRY)
ALERTS = Counter("binhyen_alerts", "Alert lifecycle steps emitted.", ["severity", "rule", "state"],
                 registry=REGISTRY)
EXPIRED_VERDICTS = Gauge("binhyen_expired_verdicts", "Verdicts on tips this worker's communes never saw, "
                         "dropped after the seen-id retention (7 days).", registry=REGISTRY)
OPEN_INCIDENTS = Gauge("binhyen_open_incidents", "Incidents still open in this worker's communes.",
                       registry=REGISTRY)
UNACKED_P1 = Gauge("binhyen_unacked_p1", "P1 alerts raised or escalated and not yet acknowledged.",
                   registry=REGISTRY)
OLDEST_UNACKED_P1 = Gauge("binhyen_oldest_unacked_p1_seconds", "Age of the oldest unacknowledged P1 "
                          "(0 when none).", registry=REGISTRY)
REPAGING = Gauge("binhyen_alerts_repaging", "Open alerts whose escalation chain ran out with nobody acting "
                 "on them: re-paged to the last step at growing intervals until someone acts.",
                 registry=REGISTRY)
MOST_REPAGED = Gauge("binhyen_alerts_most_repaged", "Times the most re-paged open alert was paged again after "
                     "its chain ran out (0 when none).", registry=REGISTRY)
STATE_KEYS = Gauge("binhyen_state_keys", "Keys held in each state table by this worker.", ["table"],
                   registry=REGISTRY)
ASSIGNED_TIP_PARTITIONS = Gauge("binhyen_assigned_tip_partitions", "Partitions of the tips topic this worker holds "
                                "(its share of the group's communes).", registry=REGISTRY)
DEVICE_LAST_SEEN = Gauge("binhyen_devices_last_signal_timestamp_seconds", "Wall-clock time the worker last "
                         "consumed a device signal of the commune.", ["commune"], registry=REGISTRY)


for _kind in REJECTION_KINDS:  # every series from 0, so the first dead letter of a kind shows in increase()
    DEAD_LETTERS.labels(_kind)


def observe_batch(out: BatchOutput, started_s: float) -> None:
    """What one committed batch consumed, rejected and raised, and how long it took."""
    for (topic, kind), count in out.consumed.items():
        CONSUMED.labels(topic, kind).inc(count)
    for kind, count in out.rejected.items():
        DEAD_LETTERS.labels(kind).inc(count)
    for age in out.event_ages_s:
        EVENT_AGE.observe(age)
    for alert in out.alerts:
        ALERTS.labels(alert["severity"], alert["rule"], alert["state"]).inc()
    now = time.time()
    for commune in out.device_communes:
        DEVICE_LAST_SEEN.labels(str(commune)).set(now)
    TICKS_LEFT_DUE.inc(len(out.still_due))
    BATCH_LATENCY.observe(now - started_s)


def serve(settings: Settings) -> int:
    """Start the metrics endpoint; returns its port and registers it for the local Prometheus."""
    explicit = os.environ.get("BINHYEN_METRICS_PORT")
    ports = [settings.metrics_port] if explicit else range(settings.metrics_port, settings.metrics_port + PORT_TRIES)
    for port in ports:
        try:
            start_http_server(port, addr=settings.metrics_host, registry=REGISTRY)
        except OSError:
            continue
        WORKER.info({"pid": str(os.getpid()), "group": settings.worker_group,
                     "version": settings.processor_version or "from files"})
        register_target(settings, port)
        log.info("metrics at http://%s:%d/metrics", settings.metrics_host, port)
        return port
    raise ConfigError(f"no free metrics port from {settings.metrics_port} on {settings.metrics_host}; "
                      "set BINHYEN_METRICS_PORT")


def target_file(settings: Settings, port: int) -> Path:
    return settings.state_dir / "prometheus" / "targets" / f"worker-{port}.json"


def register_target(settings: Settings, port: int) -> None:
    path = target_file(settings, port)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "") else settings.metrics_host
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps([{"targets": [f"{host}:{port}"],
                                    "labels": {"worker": f"{socket.gethostname()}:{port}"}}]))
    partial.replace(path)


def unregister_target(settings: Settings, port: int) -> None:
    target_file(settings, port).unlink(missing_ok=True)
