"""Kafka plumbing shared by the CLI, the publisher and the tests (kafka-python)."""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from streams.config import ConfigError, Settings
from streams.topics import partition_counts

CLIENT_ID = "binhyen"


def admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, client_id=CLIENT_ID, request_timeout_ms=10_000
        )
    except KafkaError as exc:
        raise ConfigError(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__}); "
            "start it with `binhyen up` or set BINHYEN_KAFKA_BOOTSTRAP"
        ) from None


def ensure_topics(settings: Settings) -> list[str]:
    """Create the design's topics that are missing; returns the ones created.

    An existing topic with another partition count is an error, not something to patch:
    commune-keyed topics must share one count for the joins to be right.
    """
    wanted = partition_counts(settings)
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
        if missing:
            client.create_topics(missing)
    finally:
        client.close()
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id=CLIENT_ID)
    try:
        for name, count in wanted.items():
            found = probe.partitions_for_topic(name) or set()
            if len(found) != count:
                raise ConfigError(
                    f"topic {name} has {len(found)} partitions, binhyen expects {count}; "
                    "recreate it (local: `binhyen down && binhyen up`)"
                )
    finally:
        probe.close()
    return [topic.name for topic in missing]


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent, all-acks producer: a retry never duplicates or reorders a partition."""
    options: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=CLIENT_ID,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        compression_type=None,
    )
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except KafkaError as exc:
        raise ConfigError(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__}); "
            "start it with `binhyen up` or set BINHYEN_KAFKA_BOOTSTRAP"
        ) from None


def read_topic(settings: Settings, topic: str, idle_seconds: float = 1.5) -> list[Any]:
    """Every record of a topic from the beginning, read until it has been quiet `idle_seconds`.

    Reading to "the end" by end offsets is avoided on purpose: the local broker reports
    them wrong (../shared/stack-notes.md).
    """
    from kafka import TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, client_id=CLIENT_ID, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        while True:
            batch = consumer.poll(timeout_ms=int(idle_seconds * 1000))
            if not batch:
                return records
            for part_records in batch.values():
                records.extend(part_records)
    finally:
        consumer.close()
