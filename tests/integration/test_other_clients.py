"""Clients nobody here wrote, against the running stack: what an integrator or an analyst would use.

- librdkafka (the `confluent-kafka` wheel) producing an event the worker accepts, and reading
  the output topics;
- the reference Apache `avro` library decoding single-object events of every public topic with
  nothing but `schemas/*.avsc`;
- Debian's `clickhouse-client` running every catalog query as the analyst.
README "Other clients" says which versions work against the local broker and which do not.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from processors.geography import communes_of_province
from schemas import CODEC, DecodeError
from streams.ops.catalog import catalog
from streams.topics import ALERTS, DEAD_LETTER, INCIDENTS, INPUT_TOPICS
from tests.conftest import CONTRACTS, EVENTS, REPO, run_cli, wait_for

pytestmark = pytest.mark.integration

SINGLE_OBJECT_MAGIC = b"\xc3\x01"  # Avro single-object encoding: magic, 8-byte CRC-64-AVRO fingerprint, body
SCHEMAS = {schema.fingerprint("CRC-64-AVRO"): schema
           for schema in (avro.schema.parse(path.read_text()) for path in sorted((REPO / "schemas").glob("*.avsc")))}
PUBLIC_TOPICS = (*INPUT_TOPICS, INCIDENTS, ALERTS, DEAD_LETTER)  # the control topic is the workers' own


def avro_encode(event_type: str, record: dict[str, Any]) -> bytes:
    schema = avro.schema.parse((REPO / "schemas" / f"{event_type}.v1.avsc").read_text())
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(body))
    return SINGLE_OBJECT_MAGIC + schema.fingerprint("CRC-64-AVRO") + body.getvalue()


def avro_decode(value: bytes) -> tuple[str, dict[str, Any]]:
    assert value[:2] == SINGLE_OBJECT_MAGIC, value[:10]
    schema = SCHEMAS[value[2:10]]
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))
    return schema.name, record


def read_tail(settings: Any, topic: str, last: int) -> list[bytes]:
    """The last `last` records of each partition of `topic`, read with librdkafka."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"other-clients-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        assigned = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assigned.append(TopicPartition(topic, partition, max(low, high - last)))
        consumer.assign(assigned)
        values, quiet_since = [], time.monotonic()
        while time.monotonic() - quiet_since < 2:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
            quiet_since = time.monotonic()
        return values
    finally:
        consumer.close()


def test_librdkafka_publishes_an_event_the_worker_accepts_and_reads_the_alert_it_raised(
        worker: Any, settings: Any, clickhouse: Any) -> None:
    """An integrator's path without binhyen's Python: `binhyen publish --dry-run` gives the record
    as it would be encoded (pseudonymised, validated), the Apache library encodes it, librdkafka
    produces it with the key the design names; the worker accepts it and pages its panic bell."""
    commune = communes_of_province(8)[-1].code
    pressed = datetime.now(timezone(timedelta(hours=7))).replace(microsecond=0) - timedelta(minutes=5)
    line = {"type": "device_signal", "event_id": f"ck-{uuid.uuid4().hex[:12]}", "occurred_at": pressed.isoformat(),
            "commune_code": commune, "device_id": "bell-ck-1", "device_kind": "alarm_bell",
            "signal": "panic_pressed", "site_kind": "bank", "site_name": "Ngân hàng thử librdkafka"}
    dry = run_cli("publish", "-", "--dry-run", input=json.dumps(line, ensure_ascii=False) + "\n")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout.splitlines()[0])
    # keys partitioned as the Java client does (librdkafka's default would put the commune elsewhere)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "partitioner": "murmur2_random"})
    delivered: list[Any] = []
    producer.produce(planned["topic"], key=planned["key"].encode(), value=avro_encode("device_signal", planned["event"]),
                     on_delivery=lambda error, message: delivered.append(error or message.offset()))
    assert producer.flush(30) == 0 and len(delivered) == 1 and isinstance(delivered[0], int), delivered

    wait_for(lambda: clickhouse.execute(f"SELECT count() FROM {EVENTS} FINAL WHERE event_id = %(e)s",
                                        {"e": line["event_id"]})[0][0] == 1, 60, "the librdkafka event in ClickHouse")
    raised = wait_for(lambda: clickhouse.execute(
        "SELECT alert_id, severity, rule FROM alerts FINAL WHERE commune_code = %(c)s AND state = 'raised' "
        "AND at_ms = %(t)s", {"c": commune, "t": int(pressed.timestamp() * 1000)}), 60, "its alert")
    [(alert_id, severity, rule)] = raised
    assert (severity, rule) == ("P1", "panic_bell")
    alerts = [avro_decode(value) for value in read_tail(settings, ALERTS, 400)]
    ours = [record for name, record in alerts if name == "Alert" and record["alert_id"] == alert_id]
    assert [(a["state"], a["severity"], a["commune_code"]) for a in ours][:1] == [("raised", "P1", commune)]


def test_the_apache_avro_library_decodes_every_public_topic_with_the_avsc_files_alone(
        worker: Any, settings: Any) -> None:
    """What a consumer in another language sees: every record is single-object encoded with one of
    the committed schemas, and decodes to what binhyen's own codec reads. The contract's examples
    (every input type) and one message that is not Avro fill every topic."""
    published = run_cli("publish", str(CONTRACTS / "examples.jsonl"), "-q")
    assert published.returncode == 0, published.stdout + published.stderr
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "partitioner": "murmur2_random"})
    producer.produce(INPUT_TOPICS[0], key=b"other-clients", value=b"not Avro " + uuid.uuid4().bytes)
    assert producer.flush(30) == 0

    def tails() -> dict[str, list[bytes]] | None:
        found = {topic: read_tail(settings, topic, 50) for topic in PUBLIC_TOPICS}
        return found if all(found.values()) else None

    decoded = Counter()
    for topic, values in wait_for(tails, 60, "records on every public topic", every=1).items():
        for value in values:
            if topic in INPUT_TOPICS and value[:2] != SINGLE_OBJECT_MAGIC:  # what an upstream got wrong
                with pytest.raises(DecodeError):
                    CODEC.decode(value)
                continue
            name, record = avro_decode(value)
            assert record == CODEC.decode(value)[1], (topic, name)
            decoded[topic] += 1
    assert all(decoded[topic] for topic in PUBLIC_TOPICS), decoded


def test_clickhouse_client_runs_every_catalog_query_as_the_analyst(worker: Any, settings: Any) -> None:
    """The catalog files run unchanged in Debian's clickhouse-client (their defaults in place)
    and give what `binhyen query` gives."""
    client = shutil.which("clickhouse-client") or "/usr/bin/clickhouse-client"
    for name, query in catalog().items():
        result = subprocess.run(  # noqa: S603 - fixed argv
            [client, "--host", "127.0.0.1", "--port", str(settings.clickhouse_port), "--user", "analyst",
             "--password", settings.analyst_password, "--database", settings.clickhouse_database,
             "--format", "JSONCompact", "--query", query.sql],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (name, result.stderr[-2000:])
        answer = json.loads(result.stdout)
        assert [column["name"] for column in answer["meta"]] == list(query.columns), name  # each one documented
        ours = run_cli("query", name, "--format", "json")
        assert ours.returncode == 0, (name, ours.stderr)
        lines = [json.loads(line) for line in ours.stdout.splitlines()]
        assert len(answer["data"]) == len(lines), name
        integers = [column["name"] for column in answer["meta"] if re.match(r"U?Int", column["type"])]
        for line in lines:  # integers as JSON numbers, no NaN (a percentile of nothing is null)
            assert all(isinstance(line[column], int) for column in integers), line
            assert all(value == value for value in line.values()), line
        described = run_cli("query", name, "--describe").stdout
        assert all(f"  {column}: {meaning}" in described for column, meaning in query.columns.items()), described
