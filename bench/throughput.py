"""One worker's end-to-end throughput on the simulator's mix, against bare consume + decode.

    .venv/bin/python bench/throughput.py [--days 3] [--scale 1.0]

Runs on a stack of its own (temporary state folder, free loopback ports). Simulates Cà Mau,
produces every event (as the publisher encodes it) to the input topics, then:
- baseline: an aiokafka consumer reads the same messages from the start and decodes them
  (Avro single-object, fastavro) — the floor any worker pays;
- worker: one `binhyen worker` from start to the last event in ClickHouse (decode, validate,
  dedup, cluster, score, alert, ClickHouse inserts, commits), sampling its RSS as it goes;
- replay: `binhyen replay` of the whole log into fresh tables, swapped in;
- reprocess: one reprocessing worker (`binhyen reprocess`'s catch-up) over the whole log;
- sink: the worker's ClickHouse sink against a bare clickhouse-driver insert of the same rows;
- two workers (a consumer group of their own) on the same log from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def baseline(bootstrap: str, topics: list[str], expected: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from schemas import CODEC

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    seen, began = 0, time.perf_counter()
    while seen < expected:
        batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        for records in batches.values():
            for record in records:
                CODEC.decode(record.value)
            seen += len(records)
    elapsed = time.perf_counter() - began
    await consumer.stop()
    return expected / elapsed


STALL_S = 60.0


class Stalled(RuntimeError):
    """The workers stopped making progress before every event arrived."""


def sink_rates(client: Any, events: str, rows: list[tuple[Any, ...]], batch: int = 2000) -> dict[str, float]:
    """Rows/s of the worker's event sink against a bare clickhouse-driver insert of the same rows."""
    from sinks.clickhouse import EVENT_COLUMNS, TableSink

    client.execute("DROP TABLE IF EXISTS bench_events_plain")
    client.execute(f"CREATE TABLE bench_events_plain AS {events}")  # same structure, no materialized views
    insert = f"INSERT INTO bench_events_plain ({', '.join(EVENT_COLUMNS)}) VALUES"
    rates = {}
    for label in ("warm-up (not reported)", "bare clickhouse-driver insert, plain table"):
        began = time.perf_counter()
        for start in range(0, len(rows), batch):
            client.execute(insert, rows[start:start + batch])
        rates[label] = len(rows) / (time.perf_counter() - began)
    del rates["warm-up (not reported)"]
    for label, table in (("TableSink, plain table", "bench_events_plain"),
                         ("TableSink into `events` (4 materialized views)", events)):
        sink = TableSink(client, table, EVENT_COLUMNS)
        began = time.perf_counter()
        for start in range(0, len(rows), batch):
            for row in rows[start:start + batch]:
                sink.add(row)
            sink.flush()
        rates[label] = len(rows) / (time.perf_counter() - began)
    client.execute("DROP TABLE bench_events_plain")
    return rates


def run_workers(settings: Any, state: str, count: int, total: int, label: str) -> float:
    """Start `count` workers on an empty `events` table; events/s until all `total` arrived."""
    from sinks.clickhouse import connect, events_table
    from streams.ops import stack

    client = connect(settings, settings.clickhouse_database)
    events = events_table(settings.clickhouse_database)
    workers = []
    began = time.perf_counter()
    for n in range(count):
        env = {**os.environ, "BINHYEN_STATE_DIR": str(Path(state) / f"{label}-{n}"),
               "BINHYEN_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
               "BINHYEN_METRICS_PORT": str(settings.metrics_port + n)}
        worker = stack.WorkerProcess(Path(state) / f"{label}-{n}.log", env=env)
        worker.start()
        workers.append(worker)
    samples, last_progress = [], time.monotonic()
    while True:
        arrived = client.execute(f"SELECT count() FROM {events}")[0][0]
        if samples and arrived > samples[-1][0]:
            last_progress = time.monotonic()
        samples.append((arrived, sum(rss_mib(w.process.pid) for w in workers if w.process)))
        if arrived >= total:
            break
        if time.monotonic() - last_progress > STALL_S:
            for worker in workers:
                worker.stop()
            raise Stalled(f"{label}: no progress for {STALL_S:.0f} s at {arrived:,} of {total:,} events")
        time.sleep(1)
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.stop()
    rate = total / elapsed
    print(f"{label}: RSS (MiB) as events arrived: "
          + ", ".join(f"{n:,}: {rss:.0f}" for n, rss in samples[:: max(1, len(samples) // 8)]))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-two", action="store_true", help="Do not measure two workers.")
    args = parser.parse_args()
    from streams.ops.stack import free_port_block

    base = free_port_block(9)
    state = tempfile.mkdtemp(prefix="binhyen-bench-")
    os.environ.update(BINHYEN_STATE_DIR=state, BINHYEN_KAFKA_PORT=str(base), BINHYEN_CLICKHOUSE_PORT=str(base + 1),
                      BINHYEN_CLICKHOUSE_HTTP_PORT=str(base + 2), BINHYEN_PROMETHEUS_PORT=str(base + 4),
                      BINHYEN_METRICS_PORT=str(base + 5),  # workers take base + 5 and base + 6
                      BINHYEN_GATEWAY_PORT=str(base + 7), BINHYEN_GATEWAY_METRICS_PORT=str(base + 8))
    os.environ.pop("BINHYEN_KAFKA_BOOTSTRAP", None)

    from processors.pseudonym import Pseudonymiser
    from processors.validation import parse_contract, partition_key
    from schemas import CODEC
    from sinks.clickhouse import connect, event_row, events_table
    from streams.ops import stack
    from streams.config import Settings
    from streams.edge.kafka import producer
    from streams.ops import reprocess
    from streams.ops.replay import replay
    from streams.sim.simulator import VN, SimConfig, simulate
    from streams.topics import INPUT_TOPICS, TOPIC_OF_TYPE
    from streams.ops.verify import verify_delivery

    settings = Settings.from_env()
    stack.bring_up(settings, lambda line: None)
    try:
        simulation = simulate(SimConfig(96, days=args.days, seed=99, scale=args.scale,
                                        start=datetime(2022, 6, 1, tzinfo=VN)))
        key = settings.pseudonym_key()
        encoded, rows, ids = [], [], []
        for event in simulation.events:
            event_type, record, _ = parse_contract(event, Pseudonymiser(key))
            topic = TOPIC_OF_TYPE[event_type]
            encoded.append((topic, partition_key(event_type, record), CODEC.encode(event_type, record)))
            rows.append(event_row(event_type, record, topic, 0, len(rows), 0))
            ids.append((record["event_id"], event_type))
        kafka = producer(settings, linger_ms=20, batch_size=256 * 1024)
        for topic, partition_key_bytes, value in encoded:
            kafka.send(topic, key=partition_key_bytes, value=value)
        kafka.flush()
        kafka.close()
        total = len(encoded)
        mix = {t: sum(1 for e in simulation.events if e["type"] == t) for t in sorted({e["type"] for e in simulation.events})}
        print(f"{total:,} events of simulated Cà Mau ({args.days} days, scale {args.scale:g}): {mix}")

        floor = asyncio.run(baseline(settings.kafka_bootstrap, list(INPUT_TOPICS), total))
        print(f"baseline  bare aiokafka consume + Avro decode: {floor:,.0f} events/s")

        client = connect(settings, settings.clickhouse_database)
        one = run_workers(settings, state, 1, total, "one worker")
        print(f"one worker end to end (join included): {one:,.0f} events/s = {one / floor:.2f} of the baseline")

        replayed = replay(settings, lambda phase, done, known: None)
        replay_rate = replayed.records / replayed.seconds
        print(f"replay    {replayed.records:,} log records in {replayed.seconds:.1f} s: {replay_rate:,.0f} records/s "
              f"= {replay_rate / floor:.2f} of the baseline")

        version = reprocess.version_of(settings, {}, "bench-reprocess")  # the live configs, under another name
        began = time.perf_counter()
        covered = reprocess.catch_up(reprocess.register(settings, version), 1, lambda phase, done, known: None)
        rate = covered / (time.perf_counter() - began)
        print(f"reprocess {covered:,} events with one worker (join and settle included): {rate:,.0f} events/s "
              f"per worker = {rate / floor:.2f} of the baseline")

        events = events_table(settings.clickhouse_database)
        for table in (events, "tips", "device_signals", "feedback", "model_changes"):
            client.execute(f"TRUNCATE TABLE {table}")
        rates = sink_rates(client, events, rows)
        bare = rates["bare clickhouse-driver insert, plain table"]
        for label, rate in rates.items():
            print(f"sink      {label}: {rate:,.0f} rows/s = {rate / bare:.2f} of the bare insert")

        if not args.skip_two:
            # Two workers on the same log from the start: a fresh consumer group and empty tables.
            for table in (events, "tips", "device_signals", "feedback", "model_changes", "incidents",
                          "incident_members", "alerts"):
                client.execute(f"TRUNCATE TABLE {table}")
            os.environ["BINHYEN_WORKER_GROUP"] = "binhyen-worker-bench-two"
            try:
                two = run_workers(settings, state, 2, total, "two workers")
                print(f"two workers end to end: {two:,.0f} events/s = {two / one:.2f}x one worker")
            except Stalled as stalled:
                print(f"two workers STALLED: {stalled}")
                print(verify_delivery(client, settings.clickhouse_database, ids).line())
    finally:
        for part in reversed(stack.parts(settings)):
            stack.stop(part)


if __name__ == "__main__":
    main()
