"""The gateway's scope, links and errors over HTTP, in process (FastAPI's TestClient).

Kafka's acknowledgement is the only thing stood in for (`AckingProducer` records what would be
produced); the key store, the staff registry file and the used-links store are the real files.
The same paths against the real broker and worker are in tests/integration/test_gateway.py.
"""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from processors.staff import StaffRegistry
from schemas import CODEC
from sinks.action_links import new_link
from streams.config import DEFAULT_STAFF_CONFIG, INFRA_DIR, Settings
from streams.edge.api_keys import ApiKey, KeyStore
from streams.edge.gateway import Metrics, create_app, early_refusal, scope_refusal
from streams.edge.publisher import Publisher

KEY = b"k" * 32
SECRET = "s" * 32
HA_TINH_ALERT = "al-18352-98fd6459b56cfba6"  # Xã Nghi Xuân, Hà Tĩnh (42)
CA_MAU_COMMUNE = 31867  # Xã Phước Long, Cà Mau (96)
STAFF = StaffRegistry.load(DEFAULT_STAFF_CONFIG)


class AckingProducer:
    """Takes every record at once, as a broker that acknowledged it (offsets count up)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.lock = threading.Lock()

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        with self.lock:
            self.sent.append((topic, key, value))
            offset = len(self.sent)
        return SimpleNamespace(succeeded=lambda: True, failed=lambda: False, exception=None,
                               value=SimpleNamespace(partition=0, offset=offset))

    def flush(self, timeout: float | None = None) -> None:
        return None

    def actions(self) -> list[dict[str, Any]]:
        return [CODEC.decode(value)[1] for topic, _, value in self.sent if topic.startswith("binhyen.alert-actions")]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    staff = tmp_path / "staff.json"
    shutil.copy(DEFAULT_STAFF_CONFIG, staff)
    monkeypatch.setenv("BINHYEN_STAFF_CONFIG", str(staff))
    monkeypatch.setenv("BINHYEN_LINK_SECRET", SECRET)
    settings = replace(Settings.from_env(), state_dir=tmp_path / "state")
    producer = AckingProducer()
    keys = KeyStore(settings.gateway_keys_file)
    return SimpleNamespace(settings=settings, producer=producer, keys=keys, staff_file=staff,
                           app=lambda: create_app(settings, Publisher(producer, KEY), Metrics()))


def post(client: TestClient, token: str, *events: dict[str, Any]) -> Any:
    body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
    return client.post("/v1/events", content=body.encode(),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})


def action(alert_id: str, by: str, **extra: Any) -> dict[str, Any]:
    return {"type": "alert_action", "event_id": f"aa-{alert_id}-{by}-{len(extra)}", "alert_id": alert_id,
            "action": "ack", "by": by, "occurred_at": "2025-09-03T21:03:30+07:00", **extra}


def test_a_province_key_cannot_act_on_another_provinces_alert_by_claiming_its_own_commune(env: SimpleNamespace) -> None:
    token = env.keys.create("desk-ca-mau", ["alert_action", "feedback"], [96], staff=["route:province-duty"])
    with TestClient(env.app()) as client:
        answer = post(client, token, action(HA_TINH_ALERT, "ca-tinh-ca-mau-truc-ban", commune_code=CA_MAU_COMMUNE),
                      action(HA_TINH_ALERT, "bo-chi-huy-truc", commune_code=CA_MAU_COMMUNE),
                      action(HA_TINH_ALERT, "ca-tinh-ca-mau-truc-ban"))
    assert answer.status_code == 403
    assert [line["reason"] for line in answer.json()["lines"]] == [
        f"forbidden: commune_code {CA_MAU_COMMUNE} is not the commune of alert {HA_TINH_ALERT} (18352); "
        "send the alert's own commune, or none"] * 2 + [
        "forbidden: key desk-ca-mau may publish for province(s) 96, not province 42"]
    assert env.producer.sent == []


def test_a_key_acts_only_for_the_staff_it_is_bound_to_and_they_must_cover_the_alert(env: SimpleNamespace) -> None:
    own = "al-31867-0a1b2c3d4e5f6a7b"  # an alert of Xã Phước Long, Cà Mau
    desk = env.keys.create("desk-ca-mau", ["alert_action"], [96], staff=["ca-xa-phuoc-long-01", "route:province-duty"])
    unbound = env.keys.create("hotline-ca-mau", ["*"], [96])
    with TestClient(env.app()) as client:
        bound = post(client, desk, action(own, "ca-xa-phuoc-long-01"), action(own, "ca-tinh-ca-mau-truc-ban"),
                     action(own, "bo-chi-huy-truc"), action(own, "ca-tinh-ha-tinh-truc-ban"))
        nobody = post(client, unbound, action(own, "ca-xa-phuoc-long-01"))
    assert [(line["status"], line["reason"]) for line in bound.json()["lines"]] == [
        ("published", None), ("published", None),
        ("rejected", "forbidden: key desk-ca-mau may act for ca-xa-phuoc-long-01, route:province-duty, "
                     "not bo-chi-huy-truc"),
        ("rejected", "forbidden: staff ca-tinh-ha-tinh-truc-ban has no jurisdiction over commune 31867")]
    assert nobody.status_code == 403 and nobody.json()["lines"][0]["reason"] == (
        "forbidden: key hotline-ca-mau may act for no staff member; create it with --staff ID,… (or route:NAME) "
        "to send alert actions")
    assert [a["by"] for a in env.producer.actions()] == ["ca-xa-phuoc-long-01", "ca-tinh-ca-mau-truc-ban"]


def test_a_line_outside_the_keys_scope_is_refused_before_its_text_is_read() -> None:
    tips_of_ca_mau = ApiKey("hotline-ca-mau", "x", ("tip",), (96,), "2026-12-07")
    huge = {"type": "tip", "commune_code": 18352, "text": "a@" * 30_000, "location_text": "@a." * 20_000}
    assert early_refusal(tips_of_ca_mau, huge) == "forbidden: key hotline-ca-mau may publish for province(s) 96, " \
                                                  "not province 42"
    assert early_refusal(tips_of_ca_mau, {**huge, "type": "device_signal"}).startswith(
        "forbidden: key hotline-ca-mau may publish tip, not device_signal")
    assert early_refusal(tips_of_ca_mau, {"type": "tip", "legacy_commune_code": "x"}) is None  # the contract says
    assert early_refusal(tips_of_ca_mau, {**huge, "commune_code": CA_MAU_COMMUNE}) is None  # in scope: parsed


def test_scope_of_verdicts_and_actions_comes_from_what_they_refer_to() -> None:
    desk = ApiKey("desk", "x", ("*",), (96,), "2026-12-07", staff=("*",))
    assert scope_refusal(desk, STAFF, "feedback", {"commune_code": CA_MAU_COMMUNE}) is None
    assert scope_refusal(desk, STAFF, "feedback", {"commune_code": None}).endswith("not an event with no commune")
    assert scope_refusal(desk, STAFF, "alert_action", {"alert_id": "al-31867-ab", "by": "ca-xa-ca-mau-truc",
                                                      "commune_code": None}) is None
    assert scope_refusal(desk, STAFF, "alert_action", {"alert_id": "al-31867-ab", "by": "nobody",
                                                      "commune_code": None}) == (
        "forbidden: 'nobody' is not in the staff registry (staff-2); an action's `by` must be a staff id from it")


def test_an_action_link_acts_once_across_gateway_restarts_and_concurrent_presses(env: SimpleNamespace) -> None:
    own = "al-31867-0a1b2c3d4e5f6a7b"
    link = new_link(SECRET.encode(), own, "ack", "ca-xa-phuoc-long-01", expires_s=4_000_000_000)
    with TestClient(env.app()) as first:
        assert first.post(f"/v1/actions/{link}").status_code == 200
    with TestClient(env.app()) as restarted:  # a new process: the same state folder, nothing in memory
        again = restarted.post(f"/v1/actions/{link}")
    assert again.status_code == 403 and "đã được dùng" in again.text
    other = new_link(SECRET.encode(), own, "resolve", "ca-xa-phuoc-long-01", expires_s=4_000_000_000)
    replicas = [TestClient(env.app()) for _ in range(2)]  # two replicas sharing the state volume
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: replicas[i % 2].post(f"/v1/actions/{other}").status_code, range(8)))
    assert sorted(codes) == [200] + [403] * 7
    assert [a["action"] for a in env.producer.actions()] == ["ack", "resolve"]


def test_a_member_removed_from_the_registry_cannot_act_from_the_next_press_on(env: SimpleNamespace) -> None:
    own = "al-31867-0a1b2c3d4e5f6a7b"
    links = [new_link(SECRET.encode(), own, "ack", "ca-xa-phuoc-long-01", expires_s=4_000_000_000) for _ in range(2)]
    with TestClient(env.app()) as client:
        assert client.post(f"/v1/actions/{links[0]}").status_code == 200
        registry = json.loads(env.staff_file.read_text(encoding="utf-8"))
        registry["staff"] = [m for m in registry["staff"] if m["id"] != "ca-xa-phuoc-long-01"]
        env.staff_file.write_text(json.dumps(registry, ensure_ascii=False), encoding="utf-8")
        refused = client.post(f"/v1/actions/{links[1]}")
    assert refused.status_code == 403 and "no longer in the registry" in refused.text


def test_a_fault_is_a_json_500_logged_and_counted_and_labels_stay_bounded(
        env: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    token = env.keys.create("t-any", ["*"], [], staff=["*"])
    metrics = Metrics()
    app = create_app(env.settings, Publisher(env.producer, KEY), metrics)
    with TestClient(app, raise_server_exceptions=False) as client:
        made_up = [{"type": f"kind-{i}", "text": "x"} for i in range(30)]
        assert post(client, token, *made_up).status_code == 422
        env.producer.send = None  # type: ignore[assignment]  # a bug in the produce path
        broken = post(client, token, {"type": "tip", "occurred_at": "2025-09-03T21:00:00+07:00",
                                      "commune_code": CA_MAU_COMMUNE, "channel": "hotline", "text": "có trộm"})
    assert broken.status_code == 500 and broken.headers["content-type"] == "application/json"
    assert broken.json()["error"].startswith("internal error")
    assert "POST /v1/events failed" in caplog.text
    from prometheus_client import generate_latest

    exposed = generate_latest(metrics.registry).decode()
    assert 'binhyen_gateway_requests_total{code="500",key="t-any",path="/v1/events"} 1.0' in exposed
    assert 'binhyen_gateway_events_total{key="t-any",status="rejected",type="other"} 30.0' in exposed
    assert "kind-" not in exposed


def test_the_openapi_document_declares_the_bearer_key_and_every_status_the_gateway_answers(
        env: SimpleNamespace) -> None:
    document = json.loads((INFRA_DIR / "gateway" / "openapi.json").read_text(encoding="utf-8"))
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "The API key `binhyen gateway key create` printed once"}
    events = document["paths"]["/v1/events"]["post"]
    assert events["security"] == [{"HTTPBearer": []}]
    documented = {int(code) for code in events["responses"]}
    token = env.keys.create("t-doc", ["tip"], [96], staff=[])
    tip = {"type": "tip", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": CA_MAU_COMMUNE,
           "channel": "hotline", "text": "có trộm"}
    seen = set()
    with TestClient(env.app()) as client:
        seen.add(post(client, token, tip).status_code)  # 200
        seen.add(post(client, "bh_wrong", tip).status_code)  # 401
        seen.add(post(client, token, {**tip, "commune_code": 18352}).status_code)  # 403
        seen.add(post(client, token, {**tip, "text": ""}).status_code)  # 422
        seen.add(client.post("/v1/events", content=b"{", headers={"Authorization": f"Bearer {token}",
                                                                   "Content-Type": "application/json"}).status_code)
        seen.add(client.post("/v1/events", content=b"{}", headers={"Authorization": f"Bearer {token}",
                                                                    "Content-Type": "text/csv"}).status_code)
        seen.add(client.post("/v1/events", content=b"{}\n" * 5_001,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/x-ndjson"}).status_code)
        assert client.get("/metrics").status_code == 404  # metrics are on the internal listener only
    assert seen == {200, 401, 403, 422, 400, 415, 413}
    assert seen <= documented
    for path in ("/v1/actions/{link}",):
        for method, operation in document["paths"][path].items():
            assert {"200", "403"} <= set(operation["responses"]), (method, operation["responses"])


def test_hostile_values_are_rejected_lines_and_the_rest_of_the_request_is_published(env: SimpleNamespace) -> None:
    token = env.keys.create("t-models", ["*"], [], staff=["*"])
    model = {"type": "model_change", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": CA_MAU_COMMUNE,
             "model_id": "zalo-phuoc-long", "model_kind": "zalo_group", "change": "launched"}
    tip = {"type": "tip", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": CA_MAU_COMMUNE,
           "channel": "hotline", "text": "có trộm"}
    with TestClient(env.app()) as client:
        answer = client.post("/v1/events", headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/x-ndjson"},
                             content=(json.dumps(model) + "\n" + json.dumps({**model, "members_delta": 99999999999})
                                      + "\n" + json.dumps(tip)[:-1] + ', "lat": ' + "9" * 400 + ', "lon": 105.1}\n'
                                      + json.dumps(tip) + "\n").encode())
    assert answer.status_code == 200
    lines = answer.json()["lines"]
    assert [line["status"] for line in lines] == ["published", "rejected", "rejected", "published"]
    assert "99999999999" not in answer.text and "9" * 40 not in answer.text
    assert all(line["reason"] and "\n" not in line["reason"] for line in lines[1:3])


def test_an_id_holding_a_contact_is_refused_and_never_repeated(env: SimpleNamespace) -> None:
    token = env.keys.create("t-sms", ["tip"], [], staff=[])
    tip = {"type": "tip", "event_id": "sms-0912000777-1", "occurred_at": "2025-09-03T21:00:00+07:00",
           "commune_code": CA_MAU_COMMUNE, "channel": "sms", "text": "có trộm"}
    with TestClient(env.app()) as client:
        answer = post(client, token, tip)
    assert answer.status_code == 422 and "0912000777" not in answer.text
    (line,) = answer.json()["lines"]
    assert line["event_id"] is None and line["reason"].startswith("event_id: ")
    assert env.producer.sent == []
