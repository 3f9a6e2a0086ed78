"""Pages officers can act on, on the real broker, ClickHouse and worker (issue 16): the
escalation chain step by step, an ack from outside the jurisdiction refused and recorded, a
dead endpoint that delays no other route and is raised when given up, and the night's digest
held across a worker restart and sent once at the start of office hours (event time: the
controlled clock). Communes of Hà Tĩnh that no other module uses."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from schemas import CODEC
from sinks.clickhouse import events_table
from streams.edge.kafka import read_topic
from streams.ops.stack import WorkerProcess
from streams.topics import DEAD_LETTER
from tests.builders import VN, alert_action, at, device_signal, recent, tip
from tests.conftest import WebhookReceiver, alert_id_of, alert_steps, jsonl, run_cli, wait_for

pytestmark = pytest.mark.integration
HUONG_SON, SON_HONG, SON_TIEN, SON_TAY, THANH_SEN = 18133, 18160, 18163, 18172, 18073  # Hà Tĩnh (42)


def bell(commune: int, minutes_ago: float, site: str) -> dict[str, Any]:
    return device_signal(f"rt-{uuid.uuid4().hex[:10]}", recent(minutes_ago), commune, f"bell-{commune}",
                         site_kind="bank", site_name=site)


def steps(clickhouse: Any, alert_id: str) -> list[tuple[str, str]]:
    return [(state, route) for state, _, route in alert_steps(clickhouse, alert_id)]


def publish(*events: dict[str, Any]) -> None:
    published = run_cli("publish", "-q", "-", input=jsonl(list(events)))
    assert published.returncode == 0, published.stderr


def test_an_unacked_p1_climbs_every_step_of_the_chain(worker: WorkerProcess, clickhouse: Any) -> None:
    pressed = bell(HUONG_SON, 16, "Ngân hàng Agribank Hương Sơn")  # both waits (5 + 10 min) are over
    publish(pressed)
    alert_id = wait_for(lambda: alert_id_of(clickhouse, pressed["event_id"]), 60, "the P1")
    wait_for(lambda: len(steps(clickhouse, alert_id)) == 3, 60, "the timer to take it up the chain")
    assert steps(clickhouse, alert_id) == [("raised", "commune-post"), ("escalated", "province-duty"),
                                           ("escalated", "command")]


def test_an_ack_from_outside_the_jurisdiction_is_refused_and_recorded(
        worker: WorkerProcess, clickhouse: Any, settings: Any) -> None:
    pressed = bell(SON_HONG, 1, "Ngân hàng BIDV Sơn Hồng")
    publish(pressed)
    alert_id = wait_for(lambda: alert_id_of(clickhouse, pressed["event_id"]), 60, "the P1")
    outsider = alert_action(f"rt-{uuid.uuid4().hex[:10]}", recent(0.5), alert_id, "ack", by="ca-tinh-ca-mau-truc-ban")
    publish(outsider)  # past the CLI, which would refuse it at once
    reason = f"ack on {alert_id} refused: staff ca-tinh-ca-mau-truc-ban has no jurisdiction over commune {SON_HONG}"

    def refusal() -> list[dict[str, Any]]:
        return [letter for r in read_topic(settings, DEAD_LETTER, idle_seconds=0.5)
                if (letter := CODEC.decode(r.value)[1])["reason"] == reason]

    (letter,) = wait_for(refusal, 60, "the refused ack on the dead-letter topic")
    assert CODEC.decode(letter["original"])[1]["event_id"] == outsider["event_id"]
    assert clickhouse.execute(f"SELECT count() FROM {events_table(settings.clickhouse_database)} FINAL "
                              "WHERE event_id = %(e)s", {"e": outsider["event_id"]}) == [(1,)]  # the action, on record
    acked = run_cli("alert", "ack", alert_id, "--by", "ca-xa-ha-tinh-truc")  # the province's commune posts
    assert acked.returncode == 0, acked.stderr
    wait_for(lambda: ("acked", "commune-post") in steps(clickhouse, alert_id), 60, "the rightful ack")
    assert [state for state, _ in steps(clickhouse, alert_id)] == ["raised", "acked"]


def test_a_dead_endpoint_delays_no_other_route_and_is_raised_when_given_up(
        worker: WorkerProcess, clickhouse: Any, webhook: WebhookReceiver) -> None:
    marker = uuid.uuid4().hex[:8]
    webhook.fail_pages(marker, 10**6, "commune-post")  # the commune post's endpoint is dead for this alert
    stuck = bell(SON_TIEN, 0.5, f"Ngân hàng {marker}")
    other = bell(SON_TAY, 5.5, "Ngân hàng Vietinbank Sơn Tây")  # its 5 minutes are over: on to the province
    try:
        publish(stuck)
        stuck_id = wait_for(lambda: alert_id_of(clickhouse, stuck["event_id"]), 60, "the stuck P1")
        wait_for(lambda: any(marker in body.decode() for _, body, status in webhook.requests if status == 503), 60,
                 "the first refused page")
        publish(other)
        other_id = wait_for(lambda: alert_id_of(clickhouse, other["event_id"]), 60, "the other P1")

        def delivered_to_province() -> int | None:
            return next((i for i, (_, body, status) in enumerate(webhook.requests) if status == 200 and (
                page := json.loads(body))["alert_id"] == other_id and page["route"] == "province-duty"), None)

        wait_for(lambda: delivered_to_province() is not None, 60, "the other alert's province page")
        index = delivered_to_province()
        refused = [i for i, (_, body, status) in enumerate(webhook.requests) if status == 503 and marker in body.decode()]
        # the stuck page was still being retried after the province got its page: it did not wait for it
        wait_for(lambda: any(i > index for i, (_, body, status) in enumerate(webhook.requests)
                             if status == 503 and marker in body.decode()), 40, "a retry after the other page")
        assert refused and refused[0] < index

        def notice() -> list[dict[str, Any]]:
            return [page for page in webhook.delivered() if page["alert_id"] == f"{stuck_id}-undeliverable-commune-post"]

        (page,) = wait_for(notice, 90, "the undeliverable notice on the command route")
        assert (page["rule"], page["route"], page["severity"], page["state"]) == (
            "undeliverable", "command", "P1", "raised")
        assert page["summary"].startswith(f"Không gửi được cảnh báo {stuck_id} tới commune-post sau ")
        assert not [p for p in webhook.delivered() if p["alert_id"] == stuck_id and p["route"] == "commune-post"]
        wait_for(lambda: steps(clickhouse, f"{stuck_id}-undeliverable-commune-post") == [("raised", "command")], 30,
                 "the notice in ClickHouse alerts")  # on record, as a replay of the topic has it
    finally:
        webhook.fail_pages(marker, 0)
        for alert_id in (alert_id_of(clickhouse, stuck["event_id"]), alert_id_of(clickhouse, other["event_id"])):
            if alert_id:  # nobody leaves them climbing the chain for later modules
                run_cli("alert", "resolve", alert_id, "--by", "ca-tinh-ha-tinh-truc-ban")


NIGHT_TIPS = [  # five unrelated, non-urgent reports in half an hour: a tip spike (P2) and five night
    # reports (P3), all held at night
    ("gambling", "Có nhóm đánh bạc ăn tiền ở lán trại cuối xóm Bắc, thường tụ tập sau 22 giờ"),
    ("fraud", "Có người giả danh nhân viên điện lực gọi điện đòi tiền đóng phạt"),
    ("traffic", "Xe tải chở đất rơi vãi trên đường liên xã gây trơn trượt"),
    ("lost_property", "Mất ví màu nâu có giấy tờ tùy thân ở khu vực chợ đêm"),
    ("other", "Nhà văn hóa thôn 2 mở loa quá lớn sau 23 giờ gây mất trật tự"),
]


def night_events(run: str) -> list[dict[str, Any]]:
    """A camera gone offline at 22:00 (P3 device health) and a tip spike at 23:30 (P2), 2024:
    held for the digest whatever the credibility of the tips (nothing here is scored urgent)."""
    offline = device_signal(f"rt-{run}-cam", at(22, 0, day=5, month=5, year=2024), HUONG_SON, "cam-18133-1",
                            "offline", "camera", site_kind=None)
    tips = [tip(f"rt-{run}-spike-{i}", at(23, 30 + i, day=5, month=5, year=2024), text, HUONG_SON, "hotline",
                category=category) for i, (category, text) in enumerate(NIGHT_TIPS)]
    return [offline, *tips]


def test_the_nights_digest_is_held_through_a_restart_and_sent_once_at_seven(
        worker: WorkerProcess, clickhouse: Any, webhook: WebhookReceiver) -> None:
    """Event time is the clock: the worker's tick time for data this old is the highest event time it
    has read since it started, so stopping it first makes the night the latest thing it knows."""
    run = uuid.uuid4().hex[:6]
    night = night_events(run)
    worker.stop()
    publish(*night)
    worker.start()

    def held() -> list[tuple[str, str, str]]:
        return clickhouse.execute(
            "SELECT DISTINCT alert_id, rule, delivery FROM alerts FINAL WHERE commune_code = %(c)s "
            "AND toYear(at) = 2024 ORDER BY rule", {"c": HUONG_SON})

    held_alerts = wait_for(lambda: len(held()) == 7 and held(), 60, "the seven held alerts")
    assert [(rule, delivery) for _, rule, delivery in held_alerts] == [
        ("device_health", "digest"), *[("night_report", "digest")] * 5, ("tip_spike", "digest")]
    digest_query = ("SELECT state, at_ms, route, summary FROM alerts FINAL WHERE commune_code = %(c)s "
                    "AND rule = 'morning_digest'")
    assert clickhouse.execute(digest_query, {"c": HUONG_SON}) == []
    worker.stop()  # a restart in the night: the held list is in the changelogged alert state
    worker.start()
    morning = tip(f"rt-{run}-morning", at(8, 0, day=6, month=5, year=2024), commune=THANH_SEN)
    publish(morning)
    seven = int(datetime(2024, 5, 6, 7, 0, tzinfo=VN).timestamp() * 1000)
    (digest,) = wait_for(lambda: clickhouse.execute(digest_query, {"c": HUONG_SON}), 60, "the morning digest")
    state, at_ms, route, summary = digest
    assert (state, at_ms, route) == ("raised", seven, "commune-post")
    assert summary.startswith("Tổng hợp đầu giờ 07:00 06/05: 7 cảnh báo ngoài giờ chưa xử lý — ")
    assert all(alert_id in summary for alert_id, _, _ in held_alerts)
    pages = wait_for(lambda: [(headers["Idempotency-Key"], json.loads(body)) for headers, body, status
                              in webhook.requests if status == 200
                              and json.loads(body)["rule"] == "morning_digest"
                              and json.loads(body)["commune_code"] == HUONG_SON], 60, "the digest page")
    assert {key for key, _ in pages} == {f"{pages[0][1]['alert_id']}:raised:{seven}"}  # sent once (repeats dropped)
    assert not [p for p in webhook.delivered() if p["alert_id"] in {a for a, _, _ in held_alerts}
                and p["state"] == "raised"]  # the held alerts themselves were never paged
