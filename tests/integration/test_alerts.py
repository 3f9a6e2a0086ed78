"""Alerts from the real worker: paged at once, delivered through a failing webhook, acked,
escalated by the timer when nobody acks, and counted in ClickHouse response times."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta, timezone
from typing import Any

import pytest

from schemas import CODEC
from streams.edge.kafka import read_topic
from streams.ops.stack import WorkerProcess
from streams.topics import ALERTS
from tests.builders import device_signal, recent
from tests.conftest import REPO, WEBHOOK_SECRET, WebhookReceiver, alert_id_of, alert_steps, jsonl, run_cli, wait_for

pytestmark = pytest.mark.integration
VIETNAM = timezone(timedelta(hours=7))


def panic(commune: int, ago: timedelta = timedelta(0), site: str = "Tiệm vàng Kim Phát") -> dict[str, Any]:
    return device_signal(f"it-panic-{uuid.uuid4().hex[:8]}", recent(ago.total_seconds() / 60), commune,
                         f"bell-{commune}-it", site_kind="gold_shop", site_name=site)


def test_panic_bell_is_paged_delivered_through_retries_and_acked(
    worker: WorkerProcess, clickhouse: Any, settings: Any, webhook: WebhookReceiver
) -> None:
    marker = uuid.uuid4().hex[:8]
    bell = panic(26680, site=f"Tiệm vàng {marker}")
    webhook.fail_pages(marker, 2)  # this alert's page is refused twice, whatever else the endpoint gets
    assert run_cli("publish", "-q", "-", input=jsonl([bell])).returncode == 0
    alert_id = wait_for(lambda: alert_id_of(clickhouse, bell["event_id"]), 60, "the P1 alert in ClickHouse")
    assert alert_steps(clickhouse, alert_id)[0] == ("raised", "P1", "commune-post")
    # on-call acknowledges at once, well inside the 5-minute window (however busy the machine)
    acked = run_cli("alert", "ack", alert_id, "--by", "ca-xa-tphcm-truc")
    assert acked.returncode == 0, acked.stderr

    raised = wait_for(lambda: [a for a in webhook.delivered() if a["alert_id"] == alert_id], 60,
                      "the webhook to take the alert after its failures")
    assert raised[0]["state"] == "raised" and raised[0]["rule"] == "panic_bell"
    attempts = [(headers, body, status) for headers, body, status in webhook.requests
                if json.loads(body)["alert_id"] == alert_id and json.loads(body)["state"] == "raised"]
    assert [status for _, _, status in attempts] == [503, 503, 200]  # retried until taken, then never again
    pages = {(headers["Idempotency-Key"], json.dumps({k: v for k, v in json.loads(body).items() if k != "actions"}))
             for headers, body, _ in attempts}  # each attempt signs fresh action links; the page is the same
    assert len(pages) == 1
    headers, body, _ = attempts[-1]
    signed = headers["X-Binhyen-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Binhyen-Signature"] == expected
    assert abs(int(headers["X-Binhyen-Timestamp"]) - time.time()) < 600
    assert headers["Idempotency-Key"] == f"{alert_id}:raised:{raised[0]['at_ms']}"

    wait_for(lambda: ("acked", "P1", "commune-post") in alert_steps(clickhouse, alert_id), 60, "the ack")
    assert "escalated" not in [step[0] for step in alert_steps(clickhouse, alert_id)]

    on_topic = [CODEC.decode(r.value)[1] for r in read_topic(settings, ALERTS, idle_seconds=1)]
    states = [a["state"] for a in on_topic if a["alert_id"] == alert_id]
    assert states[:1] == ["raised"] and "acked" in states
    assert all(r.key == alert_id.encode() for r in read_topic(settings, ALERTS, idle_seconds=0.5)
               if CODEC.decode(r.value)[1]["alert_id"] == alert_id)

    rows = clickhouse.execute((REPO / "infra/clickhouse/queries/alert_response_times.sql").read_text())
    mine = [row for row in rows if row[0] == 26680 and row[3] == "P1"]  # commune, its names, severity, …
    assert mine and mine[0][1] == "Xã Đất Đỏ" and mine[0][5] >= 1 and mine[0][6] >= 0  # acked, with a response time


def test_an_unacknowledged_p1_is_escalated_by_the_timer(worker: WorkerProcess, clickhouse: Any) -> None:
    bell = panic(31951, ago=timedelta(minutes=5) - timedelta(seconds=10))  # falls due in 10 s
    assert run_cli("publish", "-q", "-", input=jsonl([bell])).returncode == 0
    alert_id = wait_for(lambda: alert_id_of(clickhouse, bell["event_id"]), 60, "the P1 alert")
    try:  # nothing else happens in that commune: only the worker's timer can escalate it
        wait_for(lambda: ("escalated", "P1", "province-duty") in alert_steps(clickhouse, alert_id), 60,
                 "the timer to escalate the unacknowledged P1")
    finally:  # nobody leaves it climbing the chain on the wall clock for later modules
        resolved = run_cli("alert", "resolve", alert_id, "--by", "ca-tinh-ca-mau-truc-ban")
    assert resolved.returncode == 0, resolved.stderr


def test_a_1_mb_hostile_record_does_not_delay_a_bells_p1(worker: WorkerProcess, settings: Any) -> None:
    """A tip of 1 MB written straight to Kafka (past the edge: a run of word characters and one
    `@`, which made the old e-mail pattern backtrack quadratically — hours for 1 MB) is dead-lettered by its length before any pattern reads it, and a
    bell pressed right after it pages within a second of a bell pressed alone (measured in the
    same run: the baseline). Both times are from handing the record to the producer to the P1 on
    the alerts topic; each bell is in a commune of its own, so each is an incident of its own."""
    from kafka import KafkaConsumer, TopicPartition

    from processors.pseudonym import Pseudonymiser
    from processors.validation import parse_contract, partition_key
    from streams.edge.kafka import producer
    from streams.topics import DEAD_LETTER, DEVICE_SIGNALS, TIPS

    watcher = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(ALERTS, p) for p in sorted(watcher.partitions_for_topic(ALERTS) or ())]
    watcher.assign(partitions)
    watcher.seek_to_beginning(*partitions)
    while any(watcher.highwater(tp) is None or watcher.position(tp) < watcher.highwater(tp) for tp in partitions):
        watcher.poll(timeout_ms=500)  # skip what other tests paged
    send = producer(settings, max_request_size=2_000_000)

    def seconds_to_p1(commune: int, before: list[tuple[str, bytes, bytes]]) -> float:
        bell = device_signal(f"it-hostile-{uuid.uuid4().hex[:8]}", recent(0), commune,
                             f"bell-{uuid.uuid4().hex[:6]}", site_kind="bank")
        _, record, _ = parse_contract(bell, Pseudonymiser(b"k" * 32))
        started = time.monotonic()
        for topic, key, value in before:
            send.send(topic, key=key, value=value)
        send.send(DEVICE_SIGNALS, key=partition_key("device_signal", record),
                  value=CODEC.encode("device_signal", record))
        send.flush()
        while time.monotonic() < started + 60:
            for records in watcher.poll(timeout_ms=50).values():
                for message in records:
                    alert = CODEC.decode(message.value)[1]
                    if (alert["severity"], alert["state"], alert["commune_code"], alert["at_ms"]) == (
                            "P1", "raised", commune, record["occurred_at_ms"]):
                        return time.monotonic() - started
        raise AssertionError(f"no P1 for the bell in commune {commune} within 60 s")

    hostile_commune = 31867
    hostile = {"event_id": f"it-hostile-tip-{uuid.uuid4().hex[:8]}", "occurred_at_ms": int(time.time() * 1000),
               "utc_offset_min": 420, "commune_code": hostile_commune, "legacy_commune_code": None,
               "channel": "zalo", "source_ref": None, "reporter_pseudonym": None, "anonymous": True,
               "text": "a" * 999_999 + "@", "location_text": None, "lat": None, "lon": None, "category": None,
               "attachments": []}
    hostile_record = (TIPS, str(hostile_commune).encode(), CODEC.encode("tip", hostile))
    assert len(hostile_record[2]) > 1_000_000
    alone = [seconds_to_p1(commune, []) for commune in (26680, 18352)]
    behind_hostile = seconds_to_p1(hostile_commune, [hostile_record])
    watcher.close()
    send.close()
    assert behind_hostile - min(alone) < 1.0, (alone, behind_hostile)
    reasons = [CODEC.decode(r.value)[1]["reason"] for r in read_topic(settings, DEAD_LETTER, idle_seconds=1)
               if r.value and hostile["event_id"].encode() in r.value[:70_000]]
    assert reasons == ["text: 1000000 characters; at most 4000 are allowed"], reasons
