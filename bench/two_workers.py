"""Two real workers in one consumer group: does any input event go missing across the rebalance?

    .venv/bin/python bench/two_workers.py [--days 3] [--batching bench|single|both] [--workers 2]

The project's own form of ../shared/tools/rebalance/bench_two_workers.py (which imports the
modules by their old paths). A stack of its own on free loopback ports; simulated Cà Mau,
seed 99; a fresh consumer group; the second worker starts once the first is ready, so it
joins mid-stream and triggers a rebalance. Input events are produced either in record
batches of thousands (`bench`: linger 20 ms, 256 KiB batches) or one per batch (`single`).
It stops on `uniqExact(event_id) = total` or after 60 s without progress, then lists every
(topic, partition) offset range produced but absent from the raw event store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STALL_S = 60.0


def ranges(values: list[int]) -> list[tuple[int, int]]:
    """Sorted offsets -> (first, last) runs."""
    out: list[tuple[int, int]] = []
    for value in values:
        if out and value == out[-1][1] + 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def run(batching: str, days: int, scale: float, worker_count: int) -> int:
    from streams.ops.stack import free_port_block

    base = free_port_block(8 + worker_count)  # workers from base + 5; the gateway and its metrics last
    state = tempfile.mkdtemp(prefix=f"binhyen-two-{batching}-")
    os.environ.update(BINHYEN_STATE_DIR=state, BINHYEN_KAFKA_PORT=str(base), BINHYEN_CLICKHOUSE_PORT=str(base + 1),
                      BINHYEN_CLICKHOUSE_HTTP_PORT=str(base + 2), BINHYEN_PROMETHEUS_PORT=str(base + 4),
                      BINHYEN_METRICS_PORT=str(base + 5), BINHYEN_WORKER_GROUP=f"binhyen-two-{batching}",
                      BINHYEN_GATEWAY_PORT=str(base + 6 + worker_count),
                      BINHYEN_GATEWAY_METRICS_PORT=str(base + 7 + worker_count))
    os.environ.pop("BINHYEN_KAFKA_BOOTSTRAP", None)

    from processors.pseudonym import Pseudonymiser
    from processors.validation import parse_contract, partition_key
    from schemas import CODEC
    from sinks.clickhouse import connect, events_table
    from streams.ops import stack
    from streams.config import Settings
    from streams.edge.kafka import producer
    from streams.sim.simulator import VN, SimConfig, simulate
    from streams.topics import TOPIC_OF_TYPE

    settings = Settings.from_env()
    stack.bring_up(settings, lambda line: None)
    print(f"[{batching}] state folder {state} (worker logs there)")
    workers = []
    try:
        simulation = simulate(SimConfig(96, days=days, seed=99, scale=scale, start=datetime(2022, 6, 1, tzinfo=VN)))
        pseudonyms = Pseudonymiser(settings.pseudonym_key())
        options = dict(linger_ms=20, batch_size=256 * 1024) if batching == "bench" else dict(linger_ms=0, batch_size=1)
        kafka = producer(settings, **options)
        futures = []
        for event in simulation.events:
            event_type, record, _ = parse_contract(event, pseudonyms)
            futures.append(kafka.send(TOPIC_OF_TYPE[event_type], key=partition_key(event_type, record),
                                      value=CODEC.encode(event_type, record)))
        kafka.flush()
        produced: dict[tuple[str, int], set[int]] = defaultdict(set)
        for future in futures:
            metadata = future.get(timeout=30)
            produced[metadata.topic, metadata.partition].add(metadata.offset)
        kafka.close()
        total = sum(len(offsets) for offsets in produced.values())
        print(f"[{batching}] produced {total} events ({options})")

        client = connect(settings, settings.clickhouse_database)
        events = events_table(settings.clickhouse_database)
        for n in range(worker_count):  # each starts once the one before is ready: a join mid-stream
            env = {**os.environ, "BINHYEN_STATE_DIR": str(Path(state) / f"worker-{n}"),
                   "BINHYEN_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
                   "BINHYEN_METRICS_PORT": str(settings.metrics_port + n)}
            worker = stack.WorkerProcess(Path(state) / f"worker-{n}.log", env=env)
            worker.start()
            workers.append(worker)
            print(f"[{batching}] worker {n} ready")
        began, last, last_progress = time.monotonic(), -1, time.monotonic()
        while True:
            distinct = client.execute(f"SELECT uniqExact(event_id) FROM {events}")[0][0]
            if distinct != last:
                last, last_progress = distinct, time.monotonic()
            if distinct >= total:
                print(f"[{batching}] all {total} events in ClickHouse after {time.monotonic() - began:.0f} s")
                break
            if time.monotonic() - last_progress > STALL_S:
                print(f"[{batching}] STALLED: no progress for {STALL_S:.0f} s at {distinct} of {total}")
                break
            time.sleep(1)
        present: dict[tuple[str, int], set[int]] = defaultdict(set)
        for topic, partition, offset in client.execute(
                f"SELECT DISTINCT source_topic, source_partition, source_offset FROM {events}"):
            present[topic, partition].add(offset)
        missing_total = 0
        for (topic, partition), offsets in sorted(produced.items()):
            missing = sorted(offsets - present[topic, partition])
            missing_total += len(missing)
            for first, last_offset in ranges(missing):
                print(f"    {topic}[{partition}] offsets {first}..{last_offset} ({last_offset - first + 1}) missing"
                      f" (partition holds {len(offsets)})")
        print(f"[{batching}] missing from ClickHouse: {missing_total} of {total}")
        return missing_total
    finally:
        for worker in workers:
            if worker.alive():
                worker.stop()
        for part in reversed(stack.parts(settings)):
            stack.stop(part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batching", choices=("bench", "single", "both"), default="both")
    args = parser.parse_args()
    results = {batching: run(batching, args.days, args.scale, args.workers)
               for batching in (("bench", "single") if args.batching == "both" else (args.batching,))}
    print("SUMMARY missing events by input batching: " + ", ".join(f"{k}: {v}" for k, v in results.items()))


if __name__ == "__main__":
    main()
