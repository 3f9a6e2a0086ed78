"""Faults on the real stack: the worker killed with SIGKILL mid-stream, ClickHouse stopped for
30 s mid-stream. Nothing is lost, nothing counted twice, no alert paged twice."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

from streams.ops import stack
from streams.ops.stack import WorkerProcess
from streams.ops.verify import verify_delivery
from tests.conftest import EVENTS, WebhookReceiver, publish_in_background, wait_for

pytestmark = pytest.mark.integration
COMMUNES = [18352, 25813, 26680, 26659, 31951, 31885]


def delivered(clickhouse: Any, events: list[dict[str, Any]]) -> str:
    """The verifier's line for these events (ALL-RECORDS-DELIVERED: … when nothing is amiss)."""
    return verify_delivery(clickhouse, "binhyen", [(e["event_id"], e["type"]) for e in events]).line()


def stream_events(tag: str, total: int, presses_every: int) -> list[dict[str, Any]]:
    events = []
    for n in range(total):
        press = n % presses_every == 0
        events.append({"type": "device_signal", "event_id": f"it-{tag}-{n:06d}", "commune_code": COMMUNES[n % 6],
                       "occurred_at": f"2024-0{1 + n // 40000}-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}+07:00",
                       "device_id": f"{tag}-{'bell' if press else 'cam'}-{n}", "device_kind": "alarm_bell",
                       "signal": "panic_pressed" if press else "heartbeat", "site_kind": "bank"})
    return events


def distinct(clickhouse: Any, tag: str) -> int:
    return clickhouse.execute(f"SELECT uniqExact(event_id) FROM {EVENTS} WHERE event_id LIKE %(p)s",
                              {"p": f"it-{tag}-%"})[0][0]


def test_kill_9_three_times_during_50000_events_loses_nothing_and_pages_once(
    worker: WorkerProcess, clickhouse: Any, settings: Any, webhook: WebhookReceiver
) -> None:
    total, presses_every = 50_000, 500
    events = stream_events("kill9", total, presses_every)
    feeder = publish_in_background(settings, events, chunk=2000, pause=0.3)
    for threshold in (8_000, 20_000, 35_000):
        wait_for(lambda t=threshold: distinct(clickhouse, "kill9") >= t, 180, f"{threshold} events before the kill")
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        worker.start()
    feeder.join()
    wait_for(lambda: distinct(clickhouse, "kill9") == total, 300, f"all {total} events after three kills")
    line = delivered(clickhouse, events)
    print(line)
    assert line.startswith("ALL-RECORDS-DELIVERED: 50000 events, each once")

    presses = [e["event_id"] for e in events if e["signal"] == "panic_pressed"]
    raised = clickhouse.execute(
        "SELECT alert_id, count() FROM alerts FINAL WHERE state = 'raised' AND incident_id IN "
        "(SELECT incident_id FROM incident_members WHERE event_id IN %(ids)s) GROUP BY alert_id",
        {"ids": tuple(presses)})
    assert len(raised) == len(presses) == total // presses_every
    assert {n for _, n in raised} == {1}  # one P1 per bell, never paged twice
    ours = {alert_id for alert_id, _ in raised}

    def delivered_keys() -> Counter[str]:
        return Counter(headers["Idempotency-Key"] for headers, body, status in webhook.requests
                       if status == 200 and json.loads(body)["alert_id"] in ours and json.loads(body)["state"] == "raised")

    # every page reached the endpoint; a repeat after a crash carries the same key, for the receiver to drop
    keys = wait_for(lambda: (lambda got: got if len(got) == len(ours) else None)(delivered_keys()), 60,
                    "every raised P1 at the webhook")
    assert {key.split(":")[0] for key in keys} == ours


def test_clickhouse_down_for_30_s_mid_stream_loses_nothing(worker: WorkerProcess, clickhouse: Any, settings: Any) -> None:
    total = 6_000
    events = stream_events("chdown", total, presses_every=10**9)
    clickhouse_part = next(part for part in stack.parts(settings) if part.name == "clickhouse")
    feeder = publish_in_background(settings, events, chunk=500, pause=0.5)
    wait_for(lambda: distinct(clickhouse, "chdown") >= 1_000, 60, "the first events")
    log_mark = len(worker.log_since(0))
    assert stack.stop(clickhouse_part).startswith("stopped")
    time.sleep(30)
    assert stack.start(clickhouse_part).startswith("started")
    feeder.join()
    clickhouse.disconnect()
    wait_for(lambda: distinct(clickhouse, "chdown") == total, 120, f"all {total} events after the outage")
    assert delivered(clickhouse, events).startswith("ALL-RECORDS-DELIVERED: 6000 events")
    during = worker.log_since(0)[log_mark:]
    assert "ClickHouse insert of" in during and "retrying in" in during  # it said what it was doing
    assert worker.alive()


def test_broker_restarted_without_its_data_worker_recovers_without_a_crash_loop(tmp_path: Any) -> None:
    """The local broker loses everything on restart: the worker says what happens, keeps its log
    readable, rebuilds its state once and processes new events; it never loops."""
    from sinks.clickhouse import connect
    from streams.config import Settings
    from tests.conftest import jsonl, run_cli, stack_environment

    with stack_environment(tmp_path / "state"):
        assert run_cli("up").returncode == 0
        settings = Settings.from_env()
        client = connect(settings, settings.clickhouse_database)
        broker = next(part for part in stack.parts(settings) if part.name == "broker")
        worker = WorkerProcess(tmp_path / "worker.log")
        worker.start()
        try:
            before = stream_events("brk-before", 300, presses_every=50)
            assert run_cli("publish", "-q", "-", input=jsonl(before)).returncode == 0
            wait_for(lambda: distinct(client, "brk-before") == 300, 60, "events before the restart")

            mark = len(worker.log_since(0))
            assert stack.stop(broker).startswith("stopped")
            wait_for(lambda: "is not reachable; retrying" in worker.log_since(0)[mark:], 60,
                     "the worker to say the broker is gone")
            outage = worker.log_since(0)[mark:]
            assert "Kafka at 127.0.0.1:" in outage
            # Pages of the events before may still be logged; the client's errors are what must not flood.
            complaints = [line for line in outage.splitlines() if ("[ERROR]" in line or "[WARNING]" in line)
                          and "] ALERT " not in line]
            assert 1 <= len(complaints) < 40, "the client's repeated errors are collapsed"

            restarted = run_cli("up")
            assert restarted.returncode == 0, restarted.stdout + restarted.stderr
            assert "worker state    cleared" in restarted.stdout
            after = stream_events("brk-after", 300, presses_every=50)
            assert run_cli("publish", "-q", "-", input=jsonl(after)).returncode == 0
            wait_for(lambda: distinct(client, "brk-after") == 300, 120, "events after the restart")
            assert delivered(client, after).startswith("ALL-RECORDS-DELIVERED: 300 events")
            log = worker.log_since(0)
            # its local state named changelog offsets the new broker lacks: cleared once, said once
            assert log.count("the broker lost its data") == 1
            assert log.count("restarting to rebuild it from the broker") == 1
            assert worker.alive()
        finally:
            worker.stop()


def test_verify_command_says_all_delivered_or_what_is_missing(worker: WorkerProcess, tmp_path: Any) -> None:
    from tests.conftest import jsonl, run_cli

    events = stream_events("verify", 20, presses_every=10**9)
    published = tmp_path / "published.jsonl"
    published.write_text(jsonl(events), encoding="utf-8")
    assert run_cli("publish", "-q", str(published)).returncode == 0
    ok = run_cli("verify", "--wait", "60", str(published))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ALL-RECORDS-DELIVERED: 20 events, each once")

    never = {**events[0], "event_id": "it-verify-never-published"}
    claimed = tmp_path / "claimed.jsonl"
    claimed.write_text(jsonl([*events, never]) + "not json\n", encoding="utf-8")
    missing = run_cli("verify", str(claimed))
    assert missing.returncode == 1
    assert missing.stdout.startswith("NOT ALL DELIVERED of 21 events: LOST 1 ['it-verify-never-published']")
    assert "missing from device_signals: 1" in missing.stdout
    assert missing.stderr.strip() == "1 lines without an event_id or type were not checked"


def test_worker_started_before_the_servers_waits_and_says_so(tmp_path: Any) -> None:
    from streams.config import Settings
    from tests.conftest import jsonl, run_cli, stack_environment

    with stack_environment(tmp_path / "state"):
        settings = Settings.from_env()
        worker = WorkerProcess(tmp_path / "worker.log")
        starting = threading.Thread(target=worker.start, kwargs={"timeout": 120})
        starting.start()
        try:
            wait_for(lambda: "waiting for Kafka at 127.0.0.1:" in worker.log_since(0), 30, "the worker to say it waits")
            broker = next(part for part in stack.parts(settings) if part.name == "broker")
            assert stack.start(broker).startswith("started")
            wait_for(lambda: "waiting for ClickHouse at 127.0.0.1:" in worker.log_since(0), 30,
                     "the worker to wait for ClickHouse next")
            assert "answers now; starting" in worker.log_since(0)
            started = run_cli("up")
            assert started.returncode == 0, started.stdout + started.stderr
            starting.join()
            assert worker.alive()
            events = stream_events("late", 50, presses_every=10)
            assert run_cli("publish", "-q", "-", input=jsonl(events)).returncode == 0
            verified = run_cli("verify", "--wait", "60", "-", input=jsonl(events))
            assert verified.stdout.startswith("ALL-RECORDS-DELIVERED: 50 events"), verified.stdout + verified.stderr
            log = worker.log_since(0)
            assert log.count("waiting for Kafka at") == 1  # said once, not once per attempt
        finally:
            starting.join()
            if worker.alive():
                worker.stop()
