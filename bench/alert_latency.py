"""Device signal produced -> alert raised, with background load on the real local stack.

    .venv/bin/python bench/alert_latency.py [--seconds 30] [--background 2000] [--probes 5]

Starts the local stack if needed and one worker, produces background device heartbeats at
`--background` events/s, and every 1/`--probes` s a panic press on a fresh device (each one a
new P1). Latency = the alert's arrival on binhyen.alerts.v1 (read by a plain consumer) minus
the moment the press was handed to the producer. Prints p50, p99 and max.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from processors.incidents import incident_id_for  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from processors.validation import parse_contract, partition_key  # noqa: E402
from schemas import CODEC  # noqa: E402
from streams.ops import stack  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.edge.kafka import producer  # noqa: E402
from streams.topics import ALERTS, DEVICE_SIGNALS  # noqa: E402

VIETNAM = timezone(timedelta(hours=7))
COMMUNES = [25813, 26680, 26659, 31951, 18352, 31885, 32002, 31942]


def encoded(event: dict) -> tuple[bytes, bytes]:
    event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
    return partition_key(event_type, record), CODEC.encode(event_type, record)


def signal(kind: str, commune: int, device: str) -> dict:
    return {"type": "device_signal", "event_id": uuid.uuid4().hex, "commune_code": commune,
            "occurred_at": datetime.now(VIETNAM).isoformat(timespec="milliseconds"), "device_id": device,
            "device_kind": "alarm_bell", "signal": kind, "site_kind": "bank"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--background", type=int, default=2000)
    parser.add_argument("--probes", type=float, default=5)
    args = parser.parse_args()
    settings = Settings.from_env()
    stack.bring_up(settings, print)
    worker = stack.WorkerProcess(settings.state_dir / "bench-worker.log")
    worker.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    stop = threading.Event()

    def watch_alerts() -> None:
        # Assigned, not a group member (a group join takes seconds here), read from the start:
        # old alerts match no probe.
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, fetch_max_wait_ms=10)
        partitions = [TopicPartition(ALERTS, p) for p in sorted(consumer.partitions_for_topic(ALERTS) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                arrived = time.perf_counter()
                for record in records:
                    alert = CODEC.decode(record.value)[1]
                    began = sent.pop(alert["incident_id"] or "", None) if alert["state"] == "raised" else None
                    if began is not None:
                        latencies.append(arrived - began)
        consumer.close()

    try:
        watcher = threading.Thread(target=watch_alerts, daemon=True)
        watcher.start()
        time.sleep(3)  # the watcher joins its group
        kafka = producer(settings, linger_ms=2, acks=1, enable_idempotence=False)
        background = [encoded(signal("heartbeat", COMMUNES[i % len(COMMUNES)], f"hb-{i % 500}")) for i in range(5000)]
        began, n, next_probe = time.perf_counter(), 0, 0.0
        while time.perf_counter() - began < args.seconds:
            elapsed = time.perf_counter() - began
            while n < elapsed * args.background:
                key, value = background[n % len(background)]
                kafka.send(DEVICE_SIGNALS, key=key, value=value)
                n += 1
            if elapsed >= next_probe:
                press = signal("panic_pressed", COMMUNES[int(elapsed) % len(COMMUNES)], f"probe-{uuid.uuid4().hex[:8]}")
                key, value = encoded(press)
                # the alert names the incident, whose id derives from the press's event id
                sent[incident_id_for(press["event_id"])] = time.perf_counter()  # before the send: no race
                kafka.send(DEVICE_SIGNALS, key=key, value=value)
                kafka.flush()
                next_probe += 1 / args.probes
            time.sleep(0.02)  # produce in 20 ms slices: the load generator shares the two cores
        kafka.flush()
        time.sleep(3)
    finally:
        stop.set()
        worker.stop()
    total = n
    probes = len(latencies) + len(sent)
    print(f"background {total / args.seconds:,.0f} events/s for {args.seconds:.0f}s; {probes} panic presses, "
          f"{len(latencies)} alerts matched")
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"device signal -> alert raised: p50 {statistics.median(ordered) * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
