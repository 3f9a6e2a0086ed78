"""The walking skeleton end to end on the real tansu broker and the real ClickHouse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import signal
import stat
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from processors.pseudonym import Pseudonymiser, normalise_contact
from processors.validation import parse_contract
from schemas import CODEC
from sinks.clickhouse import event_row, event_sink, events_table, private_database
from streams.edge.kafka import producer, read_topic
from streams.edge.publisher import Publisher
from streams.topics import DEAD_LETTER, INPUT_TOPICS, TIPS
from streams.ops.stack import WorkerProcess
from tests.builders import at, device_signal
from tests.conftest import BINHYEN, EVENTS, CONTRACTS, legacy_event_id, unkeyed_hashes, contract_lines, jsonl, run_cli, stack_environment, wait_for

pytestmark = pytest.mark.integration


def distinct_ids(clickhouse: Any, ids: list[str]) -> int:
    return clickhouse.execute(f"SELECT uniqExact(event_id) FROM {EVENTS} WHERE event_id IN %(ids)s", {"ids": tuple(ids)})[0][0]


def final_count(clickhouse: Any, ids: list[str]) -> int:
    return clickhouse.execute(f"SELECT count() FROM {EVENTS} FINAL WHERE event_id IN %(ids)s", {"ids": tuple(ids)})[0][0]


def heartbeat(event_id: str, commune: int = 18352, second: int = 0) -> dict[str, Any]:
    return device_signal(event_id, at(21, second // 60 % 60, second % 60), commune, f"bell-{commune}", "heartbeat")


def test_second_up_changes_nothing_and_status_reports_health(stack: dict[str, str]) -> None:
    again = run_cli("up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 4  # broker, ClickHouse, Prometheus, gateway
    assert "topics          all present" in again.stdout
    assert "migrations      up to date" in again.stdout
    status = run_cli("status", "--json")
    assert status.returncode == 0
    report = json.loads(status.stdout)
    assert report["broker"]["healthy"] and report["clickhouse"]["healthy"] and report["prometheus"]["healthy"]
    assert report["broker"]["endpoint"] == f"127.0.0.1:{stack['BINHYEN_KAFKA_PORT']}"
    key_file = Path(stack["BINHYEN_STATE_DIR"]) / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_topics_exist_with_the_designed_partition_counts(settings: Any) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        counts = {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in
                  ("binhyen.tips.v1", "binhyen.device-signals.v1", "binhyen.feedback.v1",
                   "binhyen.incidents.v1", "binhyen.model-changes.v1", "binhyen.alerts.v1",
                   "binhyen.alert-actions.v1", DEAD_LETTER)}
    finally:
        consumer.close()
    assert counts == {
        "binhyen.tips.v1": 8, "binhyen.device-signals.v1": 8, "binhyen.feedback.v1": 8,
        "binhyen.incidents.v1": 8, "binhyen.model-changes.v1": 4, "binhyen.alerts.v1": 4,
        "binhyen.alert-actions.v1": 4, DEAD_LETTER: 4,
    }


def test_contract_examples_become_12_distinct_events(worker: WorkerProcess, clickhouse: Any) -> None:
    result = run_cli("publish", str(CONTRACTS / "examples.jsonl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": published ") == 13
    ids = sorted({json.loads(line)["event_id"] for line in contract_lines("examples.jsonl")})
    assert len(ids) == 12
    wait_for(lambda: distinct_ids(clickhouse, ids) == 12, 60, "12 example events in ClickHouse")
    assert final_count(clickhouse, ids) == 12
    rows = dict(clickhouse.execute(
        f"SELECT event_id, commune_code FROM {EVENTS} FINAL WHERE event_id IN ('dev-0003', 'tip-0004', 'aa-0001')"))
    assert rows["dev-0003"] == 31885  # legacy ward 31885 -> 2025 commune Xã Phong Hiệp
    assert rows["aa-0001"] == 0  # alert actions name no commune
    payload = json.loads(clickhouse.execute(f"SELECT any(payload) FROM {EVENTS} WHERE event_id = 'tip-0004'")[0][0])
    assert payload["anonymous"] is True and payload["reporter_pseudonym"] is None


def test_every_invalid_line_is_rejected_and_valid_lines_still_publish(worker: WorkerProcess, clickhouse: Any) -> None:
    marker = heartbeat("it-invalid-marker")
    text = (CONTRACTS / "invalid.jsonl").read_text(encoding="utf-8") + jsonl([marker])
    result = run_cli("publish", "-q", "-", input=text)
    assert result.returncode == 1
    rejected = [line for line in result.stderr.splitlines() if ": rejected " in line]
    assert [line.split(":")[0] for line in rejected] == [f"line {n}" for n in range(1, 12)]
    assert "published 1 (device_signal 1), rejected 11" in result.stderr
    wait_for(lambda: distinct_ids(clickhouse, ["it-invalid-marker"]) == 1, 60, "the marker event")
    bad_ids = [f"bad-{n}" for n in range(1, 11)]
    assert distinct_ids(clickhouse, bad_ids) == 0


def test_raw_garbage_on_every_input_topic_is_dead_lettered_and_the_worker_goes_on(
    worker: WorkerProcess, clickhouse: Any, settings: Any
) -> None:
    raw = producer(settings)
    garbage = {topic: f"garbage-{topic}-{time.time_ns()}".encode() + b"\x00\xff\xc3" for topic in INPUT_TOPICS}
    for topic, value in garbage.items():
        raw.send(topic, key=b"x", value=value)
    # A well-formed Avro tip on the wrong topic, and one that breaks the contract, both bypassing the publisher.
    _, tip, _ = parse_contract(
        {"type": "tip", "event_id": "it-misrouted", "occurred_at": "2025-06-26T06:35:00+07:00",
         "commune_code": 25813, "channel": "sms", "text": "có cháy"}, Pseudonymiser(b"k" * 32))
    raw.send("binhyen.device-signals.v1", key=b"25813", value=CODEC.encode("tip", tip))
    raw.send(TIPS, key=b"1", value=CODEC.encode("tip", dict(tip, event_id="it-bad-commune", commune_code=1)))
    # a "pseudonym" that is a raw phone number, from a producer that bypassed the publisher
    raw.send(TIPS, key=b"25813", value=CODEC.encode("tip", dict(tip, event_id="it-forged-pseudonym",
                                                                  reporter_pseudonym="+84 912 345 678")))
    # a tip dated 2052 (it would move its commune's clock decades ahead) and a raw phone number in a text
    raw.send(TIPS, key=b"25813", value=CODEC.encode("tip", dict(tip, event_id="it-2052",
                                                                  occurred_at_ms=2_587_000_000_000)))
    raw.send(TIPS, key=b"25813", value=CODEC.encode("tip", dict(tip, event_id="it-phone-in-text",
                                                                  text="gọi lại số 0912.345.678")))
    oversize = b"it-oversize" + b"\xff" * 899_989  # 900,000 bytes of garbage, near the broker's limit
    raw.send(TIPS, key=b"big", value=oversize)
    raw.flush()
    raw.close()
    after = [heartbeat(f"it-after-garbage-{n}", second=n) for n in range(5)]
    assert run_cli("publish", "-q", "-", input=jsonl(after)).returncode == 0
    wait_for(lambda: distinct_ids(clickhouse, [e["event_id"] for e in after]) == 5, 60, "events after the garbage")

    def letters() -> list[dict[str, Any]]:
        decoded = [CODEC.decode(record.value)[1] for record in read_topic(settings, DEAD_LETTER, idle_seconds=1)]
        return [d for d in decoded if d["original"] in garbage.values() or d["original"].startswith(b"it-oversize")
                or b"it-misrouted" in d["original"] or b"it-bad-commune" in d["original"]
                or b"it-forged-pseudonym" in d["original"] or b"it-2052" in d["original"]
                or b"it-phone-in-text" in d["original"]]

    found = wait_for(lambda: (lambda got: got if len(got) == 11 else None)(letters()), 30, "11 dead letters")
    big = [letter for letter in found if letter["original"].startswith(b"it-oversize")]
    assert len(big) == 1 and big[0]["original_size"] == 900_000 and len(big[0]["original"]) == 65_536
    found = [letter for letter in found if letter not in big]
    by_original = {letter["original"]: letter for letter in found}
    for topic, value in garbage.items():
        letter = by_original[value]
        assert letter["source_topic"] == topic
        assert letter["reason"] == "not Avro single-object encoded: missing the C3 01 marker"
        assert letter["source_offset"] >= 0
    reasons = sorted(letter["reason"] for letter in found if letter["original"] not in garbage.values())
    assert reasons[0].startswith("a tip event on binhyen.device-signals.v1; publish it to binhyen.tips.v1")
    assert reasons[1].startswith("commune_code: 1 is not a 2025 commune code")
    assert reasons[2].startswith("occurred_at: ") and reasons[2].endswith(
        " minutes ahead of the receiving clock (at most 10 allowed); fix the sender's clock, or send when it happened")
    assert reasons[3] == ("reporter_pseudonym: not a binhyen pseudonym (rp_ and 32 hex digits); "
                          "publish through binhyen's publisher, which pseudonymises contacts")
    assert reasons[4] == ("text: holds a phone number, ID number, e-mail address or profile link; publish "
                          "through `binhyen publish` or the gateway, which replace them with keyed tokens")
    assert distinct_ids(clickhouse, ["it-misrouted", "it-bad-commune", "it-forged-pseudonym", "it-2052",
                                     "it-phone-in-text"]) == 0
    assert worker.alive()


def test_a_verdict_without_a_commune_reaches_its_tips_incident(worker: WorkerProcess, clickhouse: Any) -> None:
    """The verdict names only the tip; the worker finds the tip's commune and re-scores its incident."""
    tip = {"type": "tip", "event_id": "it-verdict-tip", "occurred_at": "2025-06-27T08:00:00+07:00",
           "commune_code": 25813, "channel": "zalo", "reporter_contact": "+84 911 222 333",
           "text": "Có nhóm đánh bạc ở nhà văn hóa ấp 7, khoảng 8 người"}
    assert run_cli("publish", "-q", "-", input=jsonl([tip])).returncode == 0
    wait_for(lambda: distinct_ids(clickhouse, ["it-verdict-tip"]) == 1, 60, "the tip in ClickHouse")
    verdict = {"type": "feedback", "event_id": "it-verdict-no-commune", "occurred_at": "2025-06-27T10:00:00+07:00",
               "tip_event_id": "it-verdict-tip", "verdict": "valuable"}
    assert run_cli("publish", "-q", "-", input=jsonl([verdict])).returncode == 0

    def reasons() -> list[str]:
        rows = clickhouse.execute("SELECT reasons FROM incidents FINAL WHERE incident_id IN (SELECT incident_id "
                                  "FROM incident_members WHERE event_id = 'it-verdict-tip')")
        return [r["signal"] for row in rows for r in json.loads(row[0])]

    signals = wait_for(lambda: (lambda got: got if "officer_valuable" in got else None)(reasons()), 60,
                       "the incident re-scored with the officer's verdict")
    assert signals[0] == "officer_valuable"


def test_publish_rejects_hostile_lines_one_by_one_and_publishes_the_rest(worker: WorkerProcess, clickhouse: Any) -> None:
    good = [json.dumps(heartbeat(f"it-hostile-ok-{n}", second=n)).encode() for n in range(3)]
    hostile = [b'{"type": "tip", "text": "\xff\xfe not UTF-8"}',
               b'{"type": "tip", "event_id": "it-hostile-surrogate", "occurred_at": "2025-06-26T06:35:00+07:00", '
               b'"commune_code": 25813, "channel": "zalo", "text": "ch\\ud83d"}',
               b'{"type": "tip", "commune_code": ' + b"9" * 5000 + b"}",
               b'{"type": "tip", "text": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
               b'{"type": "tip", "text": "' + b"x" * 200_000 + b'"}']
    lines = [good[0], *hostile[:3], good[1], *hostile[3:], good[2]]
    result = subprocess.run([BINHYEN, "publish", "-q", "-"], input=b"\n".join(lines) + b"\n", capture_output=True,
                            timeout=120, env=os.environ.copy())
    assert result.returncode == 1
    rejected = [line for line in result.stderr.decode().splitlines() if ": rejected " in line]
    assert [line.split(":")[0] for line in rejected] == ["line 2", "line 3", "line 4", "line 6", "line 7"]
    assert "not UTF-8 text (byte 0xff" in rejected[0] and "lone UTF-16 surrogate" in rejected[1]
    assert "too long (over 4,300 digits)" in rejected[2] and "nested too deeply" in rejected[3]
    assert "line longer than 65,536 bytes" in rejected[4]
    assert "published 3 (device_signal 3), rejected 5" in result.stderr.decode()
    wait_for(lambda: distinct_ids(clickhouse, [f"it-hostile-ok-{n}" for n in range(3)]) == 3, 60, "the good lines")


def test_worker_restart_mid_stream_leaves_exactly_10000_events(
    worker: WorkerProcess, clickhouse: Any, settings: Any
) -> None:
    total = 10_000
    communes = [18352, 25813, 26680, 26659, 31951, 31885]
    events = [heartbeat(f"it-stream-{n:05d}", communes[n % len(communes)], n % 3600) for n in range(total)]
    ids = [event["event_id"] for event in events]
    publisher = Publisher(producer(settings), settings.pseudonym_key())
    stopped = threading.Event()

    def publish_slowly() -> None:
        """Half the stream while the worker runs, the rest only once it is stopped: however fast
        the worker, it stops in the middle of the stream."""
        for start in range(0, total, 500):
            if start == total // 2:
                stopped.wait(120)
            for event in events[start:start + 500]:
                publisher.publish(event)
            assert publisher.flush() == []
            time.sleep(0.1)

    feeder = threading.Thread(target=publish_slowly)
    feeder.start()
    seen = wait_for(lambda: distinct_ids(clickhouse, ids) >= 1500 and distinct_ids(clickhouse, ids), 90,
                    "the first events of the stream")
    assert worker.stop(signal.SIGTERM) == 0
    stopped.set()
    stopped_at = distinct_ids(clickhouse, ids)
    assert seen <= stopped_at <= total // 2
    feeder.join()
    worker.start()
    wait_for(lambda: distinct_ids(clickhouse, ids) == total, 120, f"{total} distinct events after the restart")
    assert final_count(clickhouse, ids) == total
    assert clickhouse.execute(f"SELECT min(event_id), max(event_id) FROM {EVENTS} WHERE event_id IN %(ids)s",
                              {"ids": tuple(ids)})[0] == ("it-stream-00000", "it-stream-09999")


def test_sink_reinsert_of_a_batch_does_not_double_count(clickhouse: Any) -> None:
    """Into an events table of its own: a row the log does not hold would differ from any replay."""
    scratch = f"sink_reinsert_{uuid.uuid4().hex[:8]}"
    clickhouse.execute(f"CREATE DATABASE {private_database(scratch)}")
    try:
        clickhouse.execute(f"CREATE TABLE {events_table(scratch)} AS {EVENTS}")
        record = {"event_id": "it-sink-replay", "occurred_at_ms": 1_750_895_100_000, "commune_code": 25813}
        sink = event_sink(clickhouse, scratch)
        for attempt in range(3):
            sink.add(event_row("feedback", record, "binhyen.feedback.v1", 0, 7, 1_800_000_000 + attempt))
            assert sink.flush() == 1
        assert clickhouse.execute(f"SELECT count() FROM {events_table(scratch)} FINAL")[0][0] == 1
    finally:
        clickhouse.execute(f"DROP DATABASE IF EXISTS {private_database(scratch)}")


def test_no_reporter_contact_reaches_kafka_or_clickhouse(worker: WorkerProcess, clickhouse: Any, settings: Any) -> None:
    """Neither the contact nor any unkeyed hash of it (ids assigned at the edge included), nor
    a contact typed inside a tip's text, place or source, a verdict's note or a site's name."""
    contacts = ["+84 913 555 7171", "zalo:contact-canary-9917", "0988123456", "0084 977 123 456", "0966 321 789"]
    # the last three written as people evade filters: digit by digit, with zero-width spaces, "(at)"
    in_text = ["0935.777.161", "024 3999 8818", "001203009917", "canary.contact9917@gmail.com", "0979-555-313",
               "(+84) 868 111 929", "0 9 7 8 5 5 5 1 2 3", "0\u200b9\u200b3\u200b2\u200b4\u200b4\u200b1\u200b7\u200b7\u200b1",
               "canary.evasive9917 (at) gmail (dot) com"]
    tips = [{"type": "tip", "event_id": f"it-secret-{n}", "occurred_at": "2025-06-26T06:35:00+07:00",
             "commune_code": 25813, "channel": "zalo", "reporter_contact": contact, "anonymous": n == 2,
             "text": f"Có nhóm thanh niên tụ tập đánh bạc ở bãi đất trống, gọi em số {in_text[0]}",
             "location_text": f"cạnh nhà nghỉ, máy bàn {in_text[1]}, nhà chị Lan sđt {in_text[6]}",
             "source_ref": f"zalo:{in_text[4]}"}
            for n, contact in enumerate(contacts[:3])]
    # sent without an id: the publisher assigns one, for a named and an anonymous reporter
    unnamed = [{"type": "tip", "occurred_at": "2025-06-26T06:36:00+07:00", "commune_code": 25813, "channel": "sms",
                "reporter_contact": contact, "anonymous": n == 1, "text": f"Có trộm chó ở xóm {n} (it-secret-unnamed)"}
               for n, contact in enumerate(contacts[3:])]
    others = [{"type": "feedback", "event_id": "it-secret-note", "occurred_at": "2025-06-26T06:40:00+07:00",
               "commune_code": 25813, "tip_event_id": "it-secret-0", "verdict": "valuable",
               "note": f"đã xác minh, đối tượng CCCD {in_text[2]}, mail {in_text[3]}, em gái {in_text[7]}, "
                       f"thư {in_text[8]}"},
              {"type": "device_signal", "event_id": "it-secret-site", "occurred_at": "2025-06-26T06:41:00+07:00",
               "commune_code": 25813, "device_id": "bell-secret-1", "device_kind": "alarm_bell", "signal": "heartbeat",
               "site_kind": "shop", "site_name": f"Tạp hóa cô Ba {in_text[5]}"}]
    published = run_cli("publish", "-", input=jsonl(tips + unnamed + others))
    assert published.returncode == 0, published.stderr
    # an id that carries a phone number is refused at the edge, without repeating it
    ids_with_contacts = [{**others[1], "event_id": "sms-0912000777-1"},
                         {**others[1], "event_id": "it-secret-dev", "device_id": "bell-0912000778"}]
    refused = run_cli("publish", "-", input=jsonl(ids_with_contacts))
    assert refused.returncode == 1 and "091200077" not in refused.stdout + refused.stderr
    assert [line.split(":", 2)[:2] for line in refused.stderr.splitlines() if line.startswith("line ")] == [
        ["line 1", " rejected -"], ["line 2", " rejected it-secret-dev"]], refused.stderr
    assigned = re.findall(r"published tip (\S+) \(event_id assigned\)", published.stdout)
    assert len(assigned) == 2
    ids = [tip["event_id"] for tip in tips] + assigned
    wait_for(lambda: distinct_ids(clickhouse, ids + ["it-secret-note", "it-secret-site"]) == 7, 60,
             "the planted events in ClickHouse")
    needles = set()
    for contact in contacts + in_text:
        digits = "".join(ch for ch in contact if ch.isdigit())
        needles |= {contact, normalise_contact(contact)} | ({digits, digits[-9:]} if len(digits) >= 9 else set())
        needles |= unkeyed_hashes(contact) | unkeyed_hashes(normalise_contact(contact))
    needles |= {legacy_event_id(tip) for tip in unnamed}  # the review's brute-forceable id
    needles |= {"0912000777", "0912000778", "canary.evasive9917"}

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topics = sorted(admin.list_topics())
    finally:
        admin.close()
    planted_seen: dict[str, int] = {}
    planted_ids = [event_id.encode() for event_id in ids]
    for topic in topics:
        for record in read_topic(settings, topic, idle_seconds=0.5):
            blob = (record.key or b"") + (record.value or b"")
            planted_seen[topic] = planted_seen.get(topic, 0) + any(event_id in blob for event_id in planted_ids)
            for needle in needles:
                assert needle.encode() not in blob, f"{needle!r} found in {topic}"
    # the scan did read the planted tips themselves, their incidents and the worker's state changelog
    assert planted_seen[TIPS] == 5
    assert planted_seen["binhyen.incidents.v1"] >= 1
    assert planted_seen["binhyen-worker-communes-changelog"] >= 1

    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10) as response:  # noqa: S310
        metrics = response.read().decode()
    for needle in needles:  # nor in the worker's log, nor in its metrics
        assert needle not in worker.log_since(0), f"{needle!r} found in the worker log"
        assert needle not in metrics, f"{needle!r} found in the worker's metrics"

    databases = (settings.clickhouse_database, private_database(settings.clickhouse_database))
    columns = clickhouse.execute(
        "SELECT database, table, name FROM system.columns WHERE database IN %(dbs)s AND type LIKE '%%String%%' "
        "AND (database, table) IN (SELECT database, name FROM system.tables WHERE engine NOT LIKE '%%View')",
        {"dbs": databases})  # every stored table; the views only read them
    assert (private_database(settings.clickhouse_database), "events", "payload") in columns
    assert ("binhyen", "incident_members", "event_id") in columns
    ordered = sorted(needles)
    params = {f"n{i}": needle for i, needle in enumerate(ordered)}
    for database, table, column in columns:
        anywhere = " OR ".join(f"position({column}, %(n{i})s) > 0" for i in range(len(ordered)))
        hits = clickhouse.execute(f"SELECT {column} FROM {database}.{table} WHERE {anywhere} LIMIT 1", params)
        assert hits == [], f"{[n for n in ordered if n in hits[0][0]]} found in {database}.{table}.{column}"
    pseudonyms = clickhouse.execute(
        f"SELECT event_id, visitParamExtractString(payload, 'reporter_pseudonym') FROM {EVENTS} FINAL "
        "WHERE event_id IN %(ids)s", {"ids": tuple(ids)})
    by_id = dict(pseudonyms)
    assert sorted(by_id) == sorted(ids)
    assert by_id["it-secret-0"].startswith("rp_") and by_id["it-secret-1"].startswith("rp_")
    assert by_id["it-secret-0"] != by_id["it-secret-1"]
    assert by_id["it-secret-2"] == "" and by_id[assigned[1]] == ""  # anonymous: no pseudonym at all
    assert by_id[assigned[0]].startswith("rp_")


def test_down_stops_only_what_up_started(tmp_path: Path) -> None:
    """A second stack of its own: up, down, and status then reports it down."""
    with stack_environment(tmp_path):
        assert run_cli("up").returncode == 0
        parts = ("broker", "clickhouse", "prometheus", "gateway")
        pids = [int((tmp_path / f"{name}.pid").read_text()) for name in parts]
        stopped = run_cli("down")
        assert stopped.returncode == 0
        assert [f"{name:<15} stopped (pid {pid})" in stopped.stdout for name, pid in zip(parts, pids)] == [True] * 4
        assert f"{'worker':<15} not running" in stopped.stdout  # no demo worker was started
        for pid in pids:
            wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or
                     "State:\tZ" in Path(f"/proc/{pid}/status").read_text(), 20, f"pid {pid} to exit")
        status = run_cli("status")
        assert status.returncode == 1
        assert [line.split()[:2] for line in status.stdout.splitlines() if line.split()[0] in parts] == [
            [name, "down"] for name in parts]
        assert run_cli("down").stdout.count("not running") == 5  # the worker and the four servers
