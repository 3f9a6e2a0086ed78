"""One worker's end-to-end throughput on the simulator's mix, against bare consume + decode.

    .venv/bin/python bench/throughput.py [--days 3] [--scale 1.0]

Runs on a stack of its own (temporary state folder, free loopback ports). Simulates Cà Mau,
produces every event (as the publisher encodes it) to the input topics, then:
- baseline: an aiokafka consumer reads the same messages from the start and decodes them
  (Avro single-object, fastavro) — the floor any worker pays;
- worker: one `binhyen worker` from start to the last event in ClickHouse (decode, validate,
  dedup, cluster, score, alert, ClickHouse inserts, commits), sampling its RSS as it goes.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    from streams.stack import free_port_block

    base = free_port_block(4)
    state = tempfile.mkdtemp(prefix="binhyen-bench-")
    os.environ.update(BINHYEN_STATE_DIR=state, BINHYEN_KAFKA_PORT=str(base), BINHYEN_CLICKHOUSE_PORT=str(base + 1),
                      BINHYEN_CLICKHOUSE_HTTP_PORT=str(base + 2))
    os.environ.pop("BINHYEN_KAFKA_BOOTSTRAP", None)

    from processors.pseudonym import pseudonymise
    from processors.validation import parse_contract, partition_key
    from schemas import CODEC
    from sinks.clickhouse import connect
    from streams import stack
    from streams.config import Settings
    from streams.kafka import producer
    from streams.simulator import VN, SimConfig, simulate
    from streams.topics import INPUT_TOPICS, TOPIC_OF_TYPE

    settings = Settings.from_env()
    stack.bring_up(settings, lambda line: None)
    try:
        simulation = simulate(SimConfig(96, days=args.days, seed=99, scale=args.scale,
                                        start=datetime(2035, 1, 1, tzinfo=VN)))
        key = settings.pseudonym_key()
        encoded = []
        for event in simulation.events:
            event_type, record, _ = parse_contract(event, lambda c: pseudonymise(key, c))
            encoded.append((TOPIC_OF_TYPE[event_type], partition_key(event_type, record), CODEC.encode(event_type, record)))
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

        worker = stack.WorkerProcess(Path(state) / "worker.log")
        client = connect(settings, settings.clickhouse_database)
        began = time.perf_counter()
        worker.start()
        assert worker.process is not None
        samples = []
        while True:
            arrived = client.execute("SELECT count() FROM events")[0][0]
            samples.append((arrived, rss_mib(worker.process.pid)))
            if arrived >= total:
                break
            time.sleep(1)
        elapsed = time.perf_counter() - began
        worker.stop()
        rate = total / elapsed
        print(f"worker    end to end (join included): {rate:,.0f} events/s = {rate / floor:.2f} of the baseline")
        print("worker RSS (MiB) as events arrived: "
              + ", ".join(f"{n:,}: {rss:.0f}" for n, rss in samples[:: max(1, len(samples) // 8)]))
    finally:
        for part in reversed(stack.parts(settings)):
            stack.stop(part)


if __name__ == "__main__":
    main()
