"""Kafka plumbing shared by the CLI, the publisher and the tests (kafka-python)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.config import ConfigError, Settings
from streams.topics import REBUILDABLE, partition_counts, physical

CLIENT_ID = "binhyen"


def _unreachable(settings: Settings, exc: Exception) -> ConfigError:
    return ConfigError(f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__}); "
                       "start it with `binhyen up` or set BINHYEN_KAFKA_BOOTSTRAP")


def admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, client_id=CLIENT_ID, request_timeout_ms=10_000,
            **settings.kafka_security.client_options(),
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from None


def ensure_topics(settings: Settings) -> list[str]:
    """Create the design's topics that are missing; returns the ones created (or re-created).

    An existing topic with another partition count is an error, not something to patch:
    commune-keyed topics must share one count for the joins to be right. The one exception is
    an *empty* topic, which a client's metadata request can auto-create with the broker's
    default count in the moment between a broker (re)start and this call: it is re-created, as
    is an internal topic whose records can be derived again.
    """
    wanted = partition_counts(settings)
    rebuildable = {physical(settings, topic) for topic in REBUILDABLE}
    client, probe = admin(settings), consumer(settings)
    try:
        existing = set(client.list_topics())
        missing = [name for name in wanted if name not in existing]
        wrong = {name: count for name, count in _partition_counts(probe, wanted).items()
                 if name in existing and count != wanted[name]}
        for name, count in wrong.items():
            records = 0 if name in rebuildable else _records_in(probe, name)
            if records:
                raise ConfigError(
                    f"topic {name} has {count} partitions and {records} records, binhyen expects {wanted[name]} "
                    "partitions; recreate it (local: `binhyen down && binhyen up`)"
                )
        if wrong:
            client.delete_topics(list(wrong))
            _wait_until(lambda: not set(wrong) & set(client.list_topics()))
        created = missing + list(wrong)
        if created:
            try:
                client.create_topics([NewTopic(name, wanted[name], 1) for name in created])
            except TopicAlreadyExistsError:  # another process (a worker, `up`) was quicker; counts checked below
                pass
        probe.close()  # a fresh probe: the old one caches the deleted topics' metadata
        probe = consumer(settings)
        counts = _partition_counts(probe, wanted)
    finally:
        client.close()
        probe.close()
    for name, count in wanted.items():
        if counts.get(name) != count:
            raise ConfigError(f"topic {name} has {counts.get(name, 0)} partitions, binhyen expects {count}; "
                              "recreate it (local: `binhyen down && binhyen up`)")
    return created


def _partition_counts(probe: KafkaConsumer, topics: dict[str, int]) -> dict[str, int]:
    return {name: len(probe.partitions_for_topic(name) or ()) for name in topics}


def _records_in(probe: KafkaConsumer, topic: str) -> int:
    """0 for an empty topic (end offsets may be too low on the local broker, never 0 when not empty)."""
    partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
    return sum(probe.end_offsets(partitions).values()) if partitions else 0


def _wait_until(done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise ConfigError("Kafka did not finish deleting topics in time; run the command again")
        time.sleep(0.1)


def consumer(settings: Settings, **options: Any) -> KafkaConsumer:
    """A kafka-python consumer with the configured security; no group unless one is given."""
    try:
        return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id=CLIENT_ID,
                             **settings.kafka_security.client_options(), **options)
    except KafkaError as exc:
        raise _unreachable(settings, exc) from None


BOOTSTRAP_TIMEOUT_MS = 5_000  # a broker that has not answered in 5 s is not there (kafka-python waits 30 s)


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent, all-acks producer: a retry never duplicates or reorders a partition."""
    options: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=CLIENT_ID,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        compression_type=None,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        **settings.kafka_security.client_options(),
    )
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except KafkaError as exc:
        raise _unreachable(settings, exc) from None


READ_STALL_S = 30.0


def read_topic(settings: Settings, topic: str, idle_seconds: float = 1.5) -> list[Any]:
    """Every record of a topic from the beginning, up to each partition's high watermark.

    End offsets from ListOffsets are avoided on purpose: the local broker reports them wrong
    (../shared/stack-notes.md); the high watermark of fetch responses is right. A partition
    whose watermark is still unknown after `idle_seconds` without records ends the read.
    """
    reader = consumer(settings, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        records: list[Any] = []
        quiet_since = time.monotonic()
        while True:
            batch = reader.poll(timeout_ms=int(idle_seconds * 1000))
            for part_records in batch.values():
                records.extend(part_records)
            ends = [reader.highwater(tp) for tp in partitions]
            if all(end is not None and reader.position(tp) >= end for tp, end in zip(partitions, ends)):
                return records
            if batch:
                quiet_since = time.monotonic()
            elif None in ends or time.monotonic() - quiet_since > READ_STALL_S:
                return records  # an unknown end, or a broker that stopped answering
    finally:
        reader.close()


class GroupProgress:
    """How far a consumer group has got through some topics, read from outside the group.

    High watermarks come from fetch responses, as in `read_topic`; a fresh assignment each
    time forgets the previous ones. Connects on first use; not thread-safe (one caller).
    """

    def __init__(self, settings: Settings, group: str, topics: Iterable[str], timeout_s: float = 5.0) -> None:
        self.settings, self.group, self.topics, self.timeout_s = settings, group, tuple(topics), timeout_s
        self._admin: KafkaAdminClient | None = None
        self._reader: KafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    def committed(self) -> dict[tuple[str, int], int]:
        if self._admin is None:
            self._admin = admin(self.settings)
        offsets = self._admin.list_group_offsets(self.group).get(self.group) or {}
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def highwaters(self) -> dict[tuple[str, int], int] | None:
        """Each partition's high watermark now, or None if the broker did not say in time."""
        if self._reader is None:
            self._reader = consumer(self.settings, enable_auto_commit=False, max_partition_fetch_bytes=1024)
            self._partitions = [TopicPartition(topic, p) for topic in self.topics
                                for p in sorted(self._reader.partitions_for_topic(topic) or ())]
        reader = self._reader
        reader.unsubscribe()
        reader.assign(self._partitions)
        committed = self.committed()
        for tp in self._partitions:  # from where the group is: the fetch then carries little
            reader.seek(tp, committed.get((tp.topic, tp.partition), 0))
        deadline = time.monotonic() + self.timeout_s
        while True:
            ends = {(tp.topic, tp.partition): reader.highwater(tp) for tp in self._partitions}
            if None not in ends.values():
                return {tp: end for tp, end in ends.items() if end is not None}
            if time.monotonic() > deadline:
                return None
            reader.poll(timeout_ms=100, max_records=1)

    def close(self) -> None:
        for client in (self._reader, self._admin):
            if client is not None:
                client.close()
