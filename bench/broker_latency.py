"""Baseline for alert latency: bare produce -> consume on the local broker, by fetch wait.

    .venv/bin/python bench/broker_latency.py        # needs `binhyen up`

An aiokafka consumer assigned to all 8 partitions of a fresh topic; 40 messages, one every
100 ms to a random partition; latency = consume time - produce time. faust-streaming fixes
its consumer's fetch_max_wait_ms at 1500; the worker caps it (BINHYEN_FETCH_MAX_WAIT_MS).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from streams.config import Settings  # noqa: E402


async def measure(bootstrap: str, wait_ms: int) -> list[float]:
    topic = f"bench-latency-{random.randrange(10**9)}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 8, 1)])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(8)])
    latencies: list[float] = []

    async def consume() -> None:
        async for message in consumer:
            latencies.append(time.time() * 1000 - float(message.value))
            if len(latencies) >= 40:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(1)
    for _ in range(40):
        await producer.send_and_wait(topic, str(time.time() * 1000).encode(), partition=random.randrange(8))
        await asyncio.sleep(0.1)
    await asyncio.wait_for(task, 60)
    await consumer.stop()
    await producer.stop()
    admin.delete_topics([topic])
    admin.close()
    return latencies


def main() -> None:
    bootstrap = Settings.from_env().kafka_bootstrap
    for wait_ms in (1500, 500, 100):
        latencies = asyncio.run(measure(bootstrap, wait_ms))
        print(f"fetch_max_wait_ms {wait_ms:>5}: p50 {statistics.median(latencies):6.0f} ms, max {max(latencies):6.0f} ms")


if __name__ == "__main__":
    main()
