"""The HTTP gateway against the real broker, ClickHouse and worker, with a real HTTP client.

The session stack's `binhyen up` started the gateway (its pid file, its log); each test makes
keys of its own with the CLI, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from processors.geography import communes_of_province
from schemas import CODEC, DecodeError
from sinks.action_links import new_link
from streams.edge.kafka import read_topic
from streams.ops.stack import BINHYEN, free_port_block
from streams.ops.stack import http_ok
from streams.topics import TIPS
from tests import builders
from tests.builders import device_signal, recent
from tests.conftest import CONTRACTS, EVENTS, REPO, WebhookReceiver, contract_lines, run_cli, wait_for

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
CA_MAU = [c.code for c in communes_of_province(96)][:5]


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str], worker: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack['BINHYEN_GATEWAY_PORT']}", timeout=60) as client:
        yield client


def new_key(types: str = "*", provinces: str = "*", staff: str = "*") -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    created = run_cli("gateway", "key", "create", name, "--types", types, "--provinces", provinces, "--staff", staff)
    assert created.returncode == 0, created.stderr
    return name, created.stdout.strip().rsplit(" ", 1)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client: httpx.Client, token: str, lines: list[str], content_type: str = "application/x-ndjson") -> httpx.Response:
    return client.post("/v1/events", content="".join(line + "\n" for line in lines).encode(),
                       headers={**bearer(token), "Content-Type": content_type})


def tip(commune: int = 31867, **extra: Any) -> dict[str, Any]:
    return builders.tip(f"gw-{uuid.uuid4().hex[:16]}", recent(), **{
        "commune": commune, "channel": "hotline", "text": "Có người lạ đi xe máy dò xét nhà dân ban đêm",
        "reporter_contact": "+84 912 000 111", **extra})


def heartbeat(commune: int) -> dict[str, Any]:
    return device_signal(f"gw-{uuid.uuid4().hex[:16]}", recent(), commune, f"cam-gw-{commune}", "heartbeat", "camera", site_kind=None)


def in_clickhouse(clickhouse: Any, ids: list[str], final: bool = True) -> int:
    return clickhouse.execute(f"SELECT count() FROM {EVENTS} {'FINAL' if final else ''} WHERE event_id IN %(ids)s",
                              {"ids": tuple(ids)})[0][0]


def on_topic(settings: Any, topic: str, ids: set[str]) -> list[str]:
    """The ids among `ids` on `topic` (other modules' raw garbage on it is not ours to decode)."""
    found = []
    for message in read_topic(settings, topic):
        try:
            event_id = CODEC.decode(message.value)[1]["event_id"]
        except DecodeError:
            continue
        if event_id in ids:
            found.append(event_id)
    return found


def test_every_contract_example_and_invalid_line_over_http(gateway: httpx.Client, settings: Any) -> None:
    """The examples dated in 2020: a tip moves its commune's clock on the shared worker, and the
    clustering test (test_incidents) sends the same communes' tips dated 2021."""
    _, token = new_key()
    answer = post(gateway, token, [line.replace('"2025-', '"2020-') for line in contract_lines("examples.jsonl")])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["published"], body["rejected"], body["failed"]) == (13, 0, 0)
    assert all(line["topic"].startswith("binhyen.") and line["offset"] >= 0 for line in body["lines"])
    verified = run_cli("verify", str(CONTRACTS / "examples.jsonl"), "--wait", "60")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    expected = [json.loads(line)["reason"]
                for line in run_cli("publish", str(CONTRACTS / "invalid.jsonl"), "--dry-run").stdout.splitlines()]
    for line, reason in zip(contract_lines("invalid.jsonl"), expected, strict=True):
        answer = post(gateway, token, [line])
        assert answer.status_code in (400, 422), answer.text
        if answer.status_code == 422:  # the publisher's own words
            assert answer.json()["lines"][0]["reason"] == reason
        else:  # not JSON: the whole request is refused
            assert answer.json()["error"] == f"line 1: {reason}; nothing of this request was published"


def test_wrong_revoked_and_out_of_scope_keys_publish_nothing(gateway: httpx.Client, settings: Any) -> None:
    assert post(gateway, "bh_not-a-key", [json.dumps(tip())]).status_code == 401
    assert gateway.post("/v1/events", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 401
    name, token = new_key(types="tip", provinces="96")  # a Cà Mau hotline desk
    fine, other_province = tip(commune=31867), tip(commune=26680)  # Cà Mau; Hồ Chí Minh City
    bell = {"type": "device_signal", "event_id": f"gw-{uuid.uuid4().hex[:16]}", "occurred_at": fine["occurred_at"],
            "commune_code": 31867, "device_id": "bell-gw", "device_kind": "alarm_bell", "signal": "panic_pressed"}
    answer = post(gateway, token, [json.dumps(fine), json.dumps(other_province), json.dumps(bell)])
    assert answer.status_code == 200
    assert [(line["status"], (line["reason"] or "")[:9]) for line in answer.json()["lines"]] == [
        ("published", ""), ("rejected", "forbidden"), ("rejected", "forbidden")]
    assert f"key {name} may publish for province(s) 96, not province 79" in answer.json()["lines"][1]["reason"]
    only_forbidden = post(gateway, token, [json.dumps(tip(commune=26680))])
    assert only_forbidden.status_code == 403
    assert run_cli("gateway", "key", "revoke", name).returncode == 0
    revoked = post(gateway, token, [json.dumps(tip())])
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    assert on_topic(settings, TIPS, {other_province["event_id"], bell["event_id"]}) == []


def test_malformed_and_oversize_bodies_get_4xx_and_nothing_is_produced(gateway: httpx.Client, settings: Any) -> None:
    _, token = new_key()
    first, second = tip(), tip()
    truncated = json.dumps(first) + "\n" + json.dumps(second) + "\n" + json.dumps(tip())[:40]
    answer = gateway.post("/v1/events", content=truncated.encode(),
                          headers={**bearer(token), "Content-Type": "application/x-ndjson"})
    assert answer.status_code == 400 and answer.json()["error"].startswith("line 3: not valid JSON")
    assert "nothing of this request was published" in answer.json()["error"]
    assert post(gateway, token, [json.dumps(tip())], content_type="text/plain").status_code == 415
    deep = post(gateway, token, ["[" * 20_000 + "]" * 20_000])
    assert deep.status_code == 400 and deep.json()["error"].startswith("line 1: JSON nested too deeply")
    huge = post(gateway, token, [json.dumps(tip(text="x" * 70_000))])
    assert huge.status_code == 400 and "line longer than 65,536 bytes" in huge.json()["error"]
    too_big = post(gateway, token, [json.dumps(tip(text="y" * 60_000))] * 80)  # ~4.8 MB > 4 MiB
    assert too_big.status_code == 413 and "over the limit" in too_big.json()["error"]
    too_many = post(gateway, token, [json.dumps(tip())] * 5_001)
    assert too_many.status_code == 413 and "more than 5,000 events" in too_many.json()["error"]
    assert post(gateway, token, [""]).status_code == 400
    assert on_topic(settings, TIPS, {first["event_id"], second["event_id"]}) == []


def test_a_retried_batch_is_answered_the_same_and_produces_no_duplicate(
        gateway: httpx.Client, settings: Any, clickhouse: Any) -> None:
    _, token = new_key()
    lines = [json.dumps(tip(commune=CA_MAU[i % 3])) for i in range(20)]
    first = post(gateway, token, lines)
    again = post(gateway, token, lines)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()  # same partitions and offsets: answered from memory
    ids = [json.loads(line)["event_id"] for line in lines]
    wait_for(lambda: in_clickhouse(clickhouse, ids) == 20, 60, "the batch in ClickHouse")
    assert in_clickhouse(clickhouse, ids, final=False) == 20  # no second copy was ever written
    assert sorted(on_topic(settings, TIPS, set(ids))) == sorted(ids)


def test_a_key_over_its_rate_gets_429_with_retry_after(gateway: httpx.Client) -> None:
    _, token = new_key()
    codes = [gateway.post("/v1/events", content=b"", headers={**bearer(token), "Content-Type": "application/json"})
             for _ in range(300)]
    assert [c.status_code for c in codes[:100]] == [400] * 100  # the burst (the body is empty)
    limited = [c for c in codes[100:] if c.status_code == 429]
    assert limited and all(int(c.headers["Retry-After"]) >= 1 for c in limited)


def test_openapi_health_readiness_metrics_and_access_log(gateway: httpx.Client, stack: dict[str, str]) -> None:
    committed = json.loads((REPO / "infra" / "gateway" / "openapi.json").read_text())
    assert gateway.get("/openapi.json").json() == committed
    assert gateway.get("/healthz").json() == {"status": "ok"} and gateway.get("/readyz").status_code == 200
    name, token = new_key()
    event = tip(reporter_contact="+84 987 654 321", text="Báo tin bí mật ở chợ Phước Long")
    assert post(gateway, token, [json.dumps(event)]).status_code == 200
    assert gateway.get("/metrics").status_code == 404  # not on the public listener
    metrics = httpx.get(f"http://127.0.0.1:{stack['BINHYEN_GATEWAY_METRICS_PORT']}/metrics", timeout=10).text
    assert f'binhyen_gateway_events_total{{key="{name}",status="published",type="tip"}} 1.0' in metrics
    assert "binhyen_gateway_produce_seconds_count" in metrics
    log = (Path(stack["BINHYEN_STATE_DIR"]) / "gateway.log").read_text()
    entry = [json.loads(line.split("binhyen.gateway.access: ", 1)[1]) for line in log.splitlines()
             if "binhyen.gateway.access" in line and f'"key": "{name}"' in line][-1]
    assert entry["path"] == "/v1/events" and entry["status"] == 200 and entry["published"] == 1
    for secret in (token, "987 654 321", "987654321", "Báo tin bí mật", event["event_id"]):
        assert secret not in log


def test_pages_carry_action_links_that_ack_once_and_refuse_the_rest(
        gateway: httpx.Client, settings: Any, clickhouse: Any, webhook: WebhookReceiver) -> None:
    _, token = new_key()
    pressed = datetime.now(VN).replace(microsecond=0) - timedelta(seconds=30)
    bell = {"type": "device_signal", "event_id": f"gw-{uuid.uuid4().hex[:16]}", "occurred_at": pressed.isoformat(),
            "commune_code": 18352, "device_id": f"bell-{uuid.uuid4().hex[:6]}", "device_kind": "alarm_bell",
            "signal": "panic_pressed", "site_kind": "bank"}  # Xã Nghi Xuân, Hà Tĩnh
    assert post(gateway, token, [json.dumps(bell)]).status_code == 200
    page = wait_for(lambda: next((p for p in webhook.delivered() if p["commune_code"] == 18352 and p["state"] == "raised"
                                  and p["at_ms"] == int(pressed.timestamp() * 1000)), None), 60, "the page")
    [on_call] = page["actions"]  # Hà Tĩnh's commune-post staff
    assert on_call["staff"] == "ca-xa-ha-tinh-truc" and on_call["ack"].startswith(settings.gateway_url + "/v1/actions/")
    link = on_call["ack"].removeprefix(settings.gateway_url)
    assert gateway.get(link).status_code == 200  # a preview shows a button and acts on nothing
    secret = settings.link_secret()
    expired = "/v1/actions/" + new_link(secret, page["alert_id"], "ack", "ca-xa-ha-tinh-truc", int(time.time()) - 1)
    stranger = "/v1/actions/" + new_link(secret, page["alert_id"], "ack", "ca-xa-phuoc-long-01", int(time.time()) + 600)
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    for refused, why in ((expired, "hết hạn"), (stranger, "no jurisdiction"), (tampered, "chữ ký")):
        answer = gateway.post(refused)
        assert answer.status_code == 403 and why in answer.text, answer.text
    done = gateway.post(link)
    assert done.status_code == 200 and "Đã xác nhận" in done.text
    assert gateway.post(link).status_code == 403  # replayed
    wait_for(lambda: clickhouse.execute("SELECT by FROM alerts FINAL WHERE alert_id = %(a)s AND state = 'acked'",
                                        {"a": page["alert_id"]}) == [("ca-xa-ha-tinh-truc",)], 60, "the ack")


def test_a_gateway_killed_mid_stream_loses_nothing_it_answered_published_for(
        stack: dict[str, str], worker: Any, clickhouse: Any, tmp_path: Path) -> None:
    port = free_port_block(2)
    env = {**os.environ, "BINHYEN_GATEWAY_PORT": str(port), "BINHYEN_GATEWAY_METRICS_PORT": str(port + 1)}
    log = tmp_path / "gateway-kill.log"  # the test's own, not in the (private) state folder

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([BINHYEN, "gateway"], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: process.poll() is not None or http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "the gateway")
        assert process.poll() is None, log.read_text()[-2000:]
        return process

    _, token = new_key()
    published: list[str] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while not stop.is_set():
                lines = [json.dumps(heartbeat(CA_MAU[i % 5])) for i in range(50)]  # cheap for the shared worker
                try:
                    answer = post(client, token, lines)
                except httpx.TransportError:
                    time.sleep(0.2)  # the gateway is down: send it again (as a client would)
                    continue
                if answer.status_code == 200:
                    published.extend(line["event_id"] for line in answer.json()["lines"] if line["status"] == "published")

    gateway_process = start()
    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: len(published) >= 500, 60, "500 events published")
    gateway_process.send_signal(signal.SIGKILL)
    gateway_process.wait()
    before_restart = len(published)
    gateway_process = start()
    wait_for(lambda: len(published) >= before_restart + 500, 60, "500 more after the restart")
    stop.set()
    sender.join()
    gateway_process.send_signal(signal.SIGTERM)
    gateway_process.wait(30)
    wait_for(lambda: in_clickhouse(clickhouse, published) == len(set(published)), 120,
             f"all {len(published)} events answered 'published'")


def test_a_ca_mau_key_can_neither_act_on_nor_judge_what_belongs_to_ha_tinh(
        gateway: httpx.Client, settings: Any, clickhouse: Any, webhook: WebhookReceiver) -> None:
    """The review's attack: a Cà Mau desk's key acks a Hà Tĩnh P1 and resolves another by claiming
    a Cà Mau commune, with `by` any registry id, and sends false_report verdicts on a Hà Tĩnh tip
    the same way. The actions are refused at the gateway; the verdicts, which the gateway cannot
    place, are dead-lettered by the worker with the reason, and the alert stays unacknowledged."""
    from streams.topics import DEAD_LETTER

    _, anyone = new_key()
    pressed = datetime.now(VN).replace(microsecond=0) - timedelta(seconds=20)
    bell = {"type": "device_signal", "event_id": f"gw-{uuid.uuid4().hex[:16]}", "occurred_at": pressed.isoformat(),
            "commune_code": 18352, "device_id": f"bell-{uuid.uuid4().hex[:6]}", "device_kind": "alarm_bell",
            "signal": "panic_pressed", "site_kind": "bank"}  # Xã Nghi Xuân, Hà Tĩnh
    ha_tinh_tip = tip(commune=18352, text="Có người lạ cạy cửa nhà dân ở xóm 3", reporter_contact="+84 912 000 333")
    assert post(gateway, anyone, [json.dumps(bell), json.dumps(ha_tinh_tip)]).status_code == 200
    page = wait_for(lambda: next((p for p in webhook.delivered() if p["commune_code"] == 18352 and p["state"] == "raised"
                                  and p["at_ms"] == int(pressed.timestamp() * 1000)), None), 60, "the page")
    wait_for(lambda: in_clickhouse(clickhouse, [ha_tinh_tip["event_id"]]) == 1, 60, "the Hà Tĩnh tip")

    _, ca_mau = new_key(types="alert_action,feedback", provinces="96", staff="route:province-duty")
    claim = {"commune_code": CA_MAU[0], "occurred_at": recent(0)}
    acts = [{"type": "alert_action", "event_id": f"gw-{uuid.uuid4().hex[:16]}", "alert_id": page["alert_id"],
             "action": action, "by": by, **claim}
            for action, by in (("ack", "ca-tinh-ca-mau-truc-ban"), ("resolve", "bo-chi-huy-truc"))]
    refused = post(gateway, ca_mau, [json.dumps(a) for a in acts])
    assert refused.status_code == 403
    assert {line["reason"] for line in refused.json()["lines"]} == {
        f"forbidden: commune_code {CA_MAU[0]} is not the commune of alert {page['alert_id']} (18352); "
        "send the alert's own commune, or none"}
    verdicts = [{"type": "feedback", "event_id": f"gw-{uuid.uuid4().hex[:16]}", "verdict": "false_report",
                 "tip_event_id": ha_tinh_tip["event_id"], **claim} for _ in range(6)]
    sent = post(gateway, ca_mau, [json.dumps(v) for v in verdicts])
    assert sent.json()["published"] == 6  # the gateway cannot tell whose tip it is: the worker can
    ids = {v["event_id"].encode() for v in verdicts}
    expected = (f"verdict on tip {ha_tinh_tip['event_id']} refused: commune_code {CA_MAU[0]} is not the commune of "
                "that tip (18352); send the verdict with the judged one's commune")

    def dead_lettered() -> list[str]:
        return [CODEC.decode(r.value)[1]["reason"] for r in read_topic(settings, DEAD_LETTER, idle_seconds=0.5)
                if r.value and any(i in r.value for i in ids)]

    assert wait_for(lambda: len(found := dead_lettered()) == 6 and found, 60, "six dead letters") == [expected] * 6
    states = clickhouse.execute("SELECT state FROM alerts FINAL WHERE alert_id = %(a)s", {"a": page["alert_id"]})
    assert {state for (state,) in states} <= {"raised", "escalated"}
