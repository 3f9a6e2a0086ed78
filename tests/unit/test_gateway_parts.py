"""The gateway's parts without a server: keys, rate limit, body parsing, action links, OpenAPI."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import HTTPException

from processors.staff import StaffRegistry
from sinks.action_links import ActionLink, LinkRefused, links_for, new_link, sign, verify
from streams.config import DEFAULT_STAFF_CONFIG, INFRA_DIR, ConfigError, Settings
from streams.edge.api_keys import KeyStore
from streams.edge.gateway import RateLimiter, create_app, parse_body, province_of

SECRET = b"s" * 32
STAFF = StaffRegistry.load(DEFAULT_STAFF_CONFIG)


def test_a_key_is_stored_only_as_a_hash_and_works_until_revoked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    token = store.create("hotline-ca-mau", ["tip"], [96])
    text = (tmp_path / "keys.json").read_text()
    assert token not in text and token[3:] not in text
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    key = KeyStore(tmp_path / "keys.json").authenticate(token)  # a gateway reading the file
    assert key is not None and key.name == "hotline-ca-mau"
    assert store.authenticate(token + "x") is None and store.authenticate("") is None
    assert key.refuses("tip", 96) is None
    assert key.refuses("device_signal", 96) == "forbidden: key hotline-ca-mau may publish tip, not device_signal"
    assert key.refuses("tip", 79) == "forbidden: key hotline-ca-mau may publish for province(s) 96, not province 79"
    assert key.refuses("tip", None).endswith("not an event with no commune")
    with pytest.raises(ConfigError, match="exists; revoke it first"):
        store.create("hotline-ca-mau", ["tip"], [96])
    store.revoke("hotline-ca-mau")
    assert store.authenticate(token) is None


@pytest.mark.parametrize("name, types, provinces, message", [
    ("Bad Name", ["tip"], [], "use 2-63 lower-case letters"),
    ("ok-name", ["tips"], [], r"tips: use \* or some of tip, device_signal, model_change, feedback, alert_action$"),
    ("ok-name", [], [], "none given"),
    ("ok-name", ["tip"], [99], "99 is not a 2025 province code"),
])
def test_bad_key_requests_say_what_to_do(tmp_path: Path, name: str, types: list[str], provinces: list[int],
                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyStore(tmp_path / "keys.json").create(name, types, provinces)


def test_the_rate_limit_allows_a_burst_then_says_how_long_to_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=3, clock=lambda: now[0])
    assert [limiter.wait_for("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.wait_for("k") == pytest.approx(0.1)
    assert limiter.wait_for("other") == 0  # per key
    now[0] = 0.25  # 2.5 tokens back
    assert [limiter.wait_for("k") for _ in range(3)] == [0, 0, pytest.approx(0.05)]


def test_a_body_that_is_not_json_lines_is_refused_whole() -> None:
    assert parse_body(b'{"a": 1}\n\n{"b": 2}', "application/x-ndjson", 10) == [(1, {"a": 1}), (3, {"b": 2})]
    assert parse_body(b'{"a": 1}', "application/json", 10) == [(1, {"a": 1})]
    assert parse_body(b"[1, 2]", "application/json", 10) == [(1, [1, 2])]  # JSON: the contract rejects it per line
    for body, content_type, code, words in (
            (b'{"a": 1}\n{"b": ', "application/x-ndjson", 400, "line 2: not valid JSON"),
            (b"{}", "text/csv", 415, "Content-Type text/csv"),
            (b"{}\n{}\n{}", "application/x-ndjson", 413, "more than 2 events"),
            (b"\n \n", "application/x-ndjson", 400, "holds no event")):
        with pytest.raises(HTTPException) as raised:
            parse_body(body, content_type, 2)
        assert raised.value.status_code == code and words in raised.value.detail


def test_a_commune_code_is_placed_in_its_province() -> None:
    assert province_of(31867) == 96 and province_of(18352) == 42
    assert province_of(None) is None and province_of(True) is None and province_of(1) is None


def test_action_links_verify_and_refuse_tampering_expiry_strangers() -> None:
    alert = {"alert_id": "al-18352-98fd6459b56cfba6", "route": "commune-post", "commune_code": 18352}
    [on_call] = links_for(alert, STAFF, SECRET, "https://gw", expires_s=2_000)
    assert on_call["staff"] == "ca-xa-ha-tinh-truc"
    token = on_call["ack"].removeprefix("https://gw/v1/actions/")
    link, member = verify(SECRET, token, STAFF, now_s=1_000)
    assert (link.alert_id, link.action, member.id) == (alert["alert_id"], "ack", "ca-xa-ha-tinh-truc")
    for bad, now, why in ((token, 2_001, "hết hạn"), (token[:-2] + "xx", 1_000, "chữ ký"),
                          (token[:-2] + "đ", 1_000, "chữ ký"), ("no-dot", 1_000, "chữ ký"),
                          (new_link(b"t" * 32, alert["alert_id"], "ack", member.id, 2_000), 1_000, "chữ ký"),
                          (new_link(SECRET, alert["alert_id"], "ack", "ca-xa-phuoc-long-01", 2_000), 1_000,
                           "no jurisdiction"),
                          (new_link(SECRET, alert["alert_id"], "ack", "nobody", 2_000), 1_000, "no longer"),
                          (sign(SECRET, ActionLink(alert["alert_id"], "delete", member.id, 2_000, "n")), 1_000,
                           "unknown action")):
        with pytest.raises(LinkRefused, match=why):
            verify(SECRET, bad, STAFF, now_s=now)
    escalated = {**alert, "route": "province-duty"}
    assert {m["staff"] for m in links_for(escalated, STAFF, SECRET, "https://gw", 2_000)} == {
        "ca-tinh-ha-tinh-truc-ban"}
    at_the_top = {**alert, "route": "command"}  # the chain's last step: the command desk covers the country
    assert {m["staff"] for m in links_for(at_the_top, STAFF, SECRET, "https://gw", 2_000)} == {"bo-chi-huy-truc"}


def test_the_committed_openapi_document_is_the_gateways() -> None:
    settings = replace(Settings.from_env(), state_dir=Path("/nonexistent"))
    document = create_app(settings).openapi()
    assert json.loads((INFRA_DIR / "gateway" / "openapi.json").read_text(encoding="utf-8")) == document, (
        "run `binhyen gateway openapi` and commit infra/gateway/openapi.json")
    assert {"/v1/events", "/healthz", "/readyz", "/v1/actions/{link}"} == set(document["paths"])
