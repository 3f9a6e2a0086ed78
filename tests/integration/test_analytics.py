"""The analysts' catalog on the real ClickHouse: every query runs (also in clickhouse-client),
answers what Python computes from the same input, and the read-only users cannot write."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from typing import Any

import pytest
from clickhouse_driver.errors import ServerException

from sinks.clickhouse import connect
from streams.ops.catalog import catalog
from streams.sim.simulator import SimConfig, simulate
from streams.ops.stack import WorkerProcess
from tests.conftest import EVENTS, jsonl, offline_run, read_as_tip, run_cli, wait_for

pytestmark = pytest.mark.integration
# Simulated days in a province no other test uses, so the figures are this test's alone.
START, END = "2023-03-01", "2023-03-02"


@pytest.fixture(scope="module")
def simulated(worker: WorkerProcess, clickhouse: Any) -> list[dict[str, Any]]:
    from datetime import datetime

    from streams.sim.simulator import VN

    config = SimConfig(46, days=2, seed=21, scale=0.4, start=datetime(2023, 3, 1, tzinfo=VN))  # a province of its own
    events = [e for e in simulate(config).events if e["type"] in ("tip", "feedback", "device_signal")
              and (e["type"] != "device_signal" or e["signal"] in ("panic_pressed", "gate_forced"))]
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    ids = tuple(e["event_id"] for e in events)
    wait_for(lambda: clickhouse.execute(f"SELECT uniqExact(event_id) FROM {EVENTS} WHERE event_id IN %(ids)s",
                                        {"ids": ids})[0][0] == len(ids), 120, "the simulated days in ClickHouse")
    return events


def run_query(name: str) -> list[dict[str, Any]]:
    result = run_cli("query", name, "--param", f"day_from={START}", "--param", f"day_to={END}", "--format", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_tips_per_commune_match_the_input(simulated: list[dict[str, Any]]) -> None:
    """Tips and, beside them, the messages read as no tip (questions, thanks, news)."""
    place = lambda e: (e["occurred_at"][:10], e["commune_code"], e["channel"])  # noqa: E731
    messages = [e for e in simulated if e["type"] == "tip"]
    tips, not_tips = Counter(place(e) for e in messages if read_as_tip(e)), Counter(
        place(e) for e in messages if not read_as_tip(e))
    assert sum(tips.values()) and sum(not_tips.values())  # the simulated days hold both
    rows = run_query("tips_per_commune")
    assert {(r["day"], r["commune_code"], r["channel"]): (r["tips"], r["not_tips"]) for r in rows} == {
        key: (tips[key], not_tips[key]) for key in tips | not_tips}


def test_valuable_ratio_matches_the_input(simulated: list[dict[str, Any]]) -> None:
    """Verdicts on messages read as no tip do not count."""
    no_tip = {e["event_id"] for e in simulated if e["type"] == "tip" and not read_as_tip(e)}
    verdicts = [e for e in simulated if e["type"] == "feedback" and e.get("tip_event_id") not in no_tip]
    expected = {c: (sum(1 for v in verdicts if v["commune_code"] == c),
                    sum(1 for v in verdicts if v["commune_code"] == c and v["verdict"] == "valuable"))
                for c in {v["commune_code"] for v in verdicts}}
    rows = run_query("valuable_ratio")
    assert {r["commune_code"]: (r["verdicts"], r["valuable"]) for r in rows} == expected
    assert all(r["valuable_ratio"] == round(r["valuable"] / r["verdicts"], 3) for r in rows)


def test_incident_credibility_counts_match_the_offline_run(simulated: list[dict[str, Any]]) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in simulated]
    incidents = [o for o in offline_run().process(lines) if o["kind"] == "incident"]
    expected = Counter(i["category"] or "unknown" for i in incidents)
    several = Counter(i["category"] or "unknown" for i in incidents if sum(e.startswith("sim") and "-tip-" in e
                                                                             for e in i["event_ids"]) >= 2)
    rows = run_query("incident_credibility")
    assert {r["kind"]: r["incidents"] for r in rows} == dict(expected)
    assert {r["kind"]: r["reported_by_several"] for r in rows if r["reported_by_several"]} == dict(several)
    assert all(0 <= r["q25"] <= r["mean_credibility"] + 0.5 and r["q75"] <= 1 for r in rows)


def test_every_catalog_query_runs_unchanged_in_clickhouse_client(stack: dict[str, str], settings: Any) -> None:
    queries = catalog()
    assert set(queries) >= {"tips_per_commune", "valuable_ratio", "incident_credibility", "alert_response_times"}
    for name, query in queries.items():
        assert query.title and query.doc and query.params, name
        result = subprocess.run(
            ["clickhouse-client", "--port", str(settings.clickhouse_port), "--user", "analyst",
             "--password", settings.analyst_password, "--database", settings.clickhouse_database],
            input=query.sql, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def test_query_errors_are_one_clear_line(stack: dict[str, str]) -> None:
    bad = run_cli("query", "tips_per_commune", "--param", "day_from=2025'; DROP TABLE events")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "binhyen: --param day_from=\"2025'; DROP TABLE events\" is not a Date (YYYY-MM-DD)"
    unknown = run_cli("query", "tips_per_commune", "--param", "commune=1")
    assert unknown.returncode == 2 and "has no parameter 'commune'" in unknown.stderr


@pytest.mark.parametrize("user", ["analyst", "grafana"])
def test_read_only_users_cannot_write(user: str, settings: Any) -> None:
    password = settings.analyst_password if user == "analyst" else settings.grafana_password
    client = connect(settings, settings.clickhouse_database, user=user, password=password)
    assert client.execute("SELECT count() FROM tips")[0][0] >= 0
    for statement in ("INSERT INTO tips (event_id) VALUES ('x')", "ALTER TABLE tips DELETE WHERE 1",
                      "DROP TABLE tips", "CREATE TABLE stolen (x UInt8) ENGINE = Memory"):
        with pytest.raises(ServerException) as caught:
            client.execute(statement)
        assert "readonly" in str(caught.value).lower() or "not enough privileges" in str(caught.value).lower()


# A whole simulated province (Lai Châu, which no other test uses): heartbeats, outages, models.
PROVINCE = 12


@pytest.fixture(scope="module")
def province(worker: WorkerProcess, clickhouse: Any) -> list[dict[str, Any]]:
    from datetime import datetime

    from streams.sim.simulator import VN

    events = simulate(SimConfig(PROVINCE, days=2, seed=31, scale=0.3, start=datetime(2024, 5, 1, tzinfo=VN))).events
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    prefix = f"sim31-p{PROVINCE}-"
    assert all(e["event_id"].startswith(prefix) for e in events)
    wait_for(lambda: clickhouse.execute(f"SELECT uniqExact(event_id) FROM {EVENTS} WHERE startsWith(event_id, %(p)s)",
                                        {"p": prefix})[0][0] == len(events), 180, "the simulated province in ClickHouse")
    devices = sum(e["type"] == "device_signal" for e in events)
    wait_for(lambda: clickhouse.execute("SELECT count() FROM device_signals FINAL WHERE startsWith(event_id, %(p)s)",
                                        {"p": prefix})[0][0] == devices, 60, "typed device signals")
    return events


def epoch_ms(event: dict[str, Any]) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(event["occurred_at"]).timestamp() * 1000)


def models_of(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each model's current state, computed from its changes in event-time order."""
    models: dict[str, dict[str, Any]] = {}
    for change in sorted((e for e in events if e["type"] == "model_change"), key=epoch_ms):
        model = models.setdefault(change["model_id"], {"kind": change["model_kind"], "commune": change["commune_code"],
                                                       "members": 0, "status": "active", "parent": None,
                                                       "launched_ms": None})
        model["members"] += change.get("members_delta") or 0
        if change["change"] in ("launched", "replicated"):
            model["status"] = "active"
            if model["launched_ms"] is None:
                model["launched_ms"] = epoch_ms(change)
        elif change["change"] in ("suspended", "closed"):
            model["status"] = change["change"]
        if change["change"] == "replicated":
            model["parent"] = change["replicated_from"]
    return models


def query_rows(name: str, *params: str) -> list[dict[str, Any]]:
    args = [arg for param in params for arg in ("--param", param)]
    result = run_cli("query", name, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_model_coverage_matches_the_input(province: list[dict[str, Any]]) -> None:
    from processors.geography import communes_of_province

    models = models_of(province)
    expected: dict[str, set[int]] = {}
    for model in models.values():
        if model["status"] == "active":
            expected.setdefault(model["kind"], set()).add(model["commune"])
    rows = query_rows("model_coverage", f"province={PROVINCE}")
    total = len(communes_of_province(PROVINCE))
    assert {r["model_kind"]: (r["communes_with_model"], r["communes_total"]) for r in rows} == {
        kind: (len(communes), total) for kind, communes in expected.items()}
    members = Counter()
    for model in models.values():
        if model["status"] == "active":
            members[model["kind"]] += model["members"]
    assert {r["model_kind"]: r["members"] for r in rows} == dict(members)
    assert {r["province_name"] for r in rows} == {"Lai Châu"}


def test_model_replication_tree_matches_the_input(province: list[dict[str, Any]]) -> None:
    models = models_of(province)
    expected = {(model_id, m["parent"], models[m["parent"]]["commune"]) for model_id, m in models.items() if m["parent"]}
    assert expected, "the simulation copies some models"
    rows = [r for r in query_rows("model_replication") if r["model_id"] in models]
    assert {(r["model_id"], r["replicated_from"], r["parent_commune_code"]) for r in rows} == expected


def test_tips_before_and_after_a_launch_match_the_input(province: list[dict[str, Any]]) -> None:
    window_ms = 400 * 86_400_000
    verdicts = {e["tip_event_id"]: e["verdict"] for e in province if e["type"] == "feedback"}
    tips = [(e["commune_code"], epoch_ms(e), verdicts.get(e["event_id"], "")) for e in province
            if e["type"] == "tip" and read_as_tip(e)]
    expected = {}
    for model_id, model in models_of(province).items():
        launch = model["launched_ms"] // 1000 * 1000
        before = [v for c, at, v in tips if c == model["commune"] and launch - window_ms <= at < launch]
        after = [v for c, at, v in tips if c == model["commune"] and launch <= at < launch + window_ms]
        expected[model_id] = (len(before), len(after), sum(v != "" for v in after), sum(v == "valuable" for v in after))
    rows = [r for r in query_rows("model_before_after", "window_days=400") if r["model_id"] in expected]
    assert {r["model_id"]: (r["tips_before"], r["tips_after"], r["verdicts_after"], r["valuable_after"])
            for r in rows} == expected
    assert any(r["tips_after"] for r in rows)


def test_device_health_matches_the_input(province: list[dict[str, Any]]) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in province]
    types = {e["event_id"]: e["type"] for e in province}
    incident_of: dict[str, str] = {}
    false_incident: dict[str, bool] = {}
    for line in offline_run().process(lines):
        if line["kind"] == "incident":
            false_incident[line["incident_id"]] = not any(types.get(i) == "tip" for i in line["event_ids"])
            incident_of.update({event_id: line["incident_id"] for event_id in line["event_ids"]})
    signals: dict[str, list[dict[str, Any]]] = {}
    for event in province:
        if event["type"] == "device_signal":
            signals.setdefault(event["device_id"], []).append(event)
    expected = {}
    for device, timeline in signals.items():
        timeline.sort(key=lambda e: (epoch_ms(e), e["signal"]))
        offline = sum(epoch_ms(nxt) - epoch_ms(cur) for cur, nxt in zip(timeline, timeline[1:])
                      if cur["signal"] == "offline") / 1000
        alarms = {incident_of[e["event_id"]] for e in timeline
                  if e["signal"] in ("panic_pressed", "gate_forced", "tamper") and e["event_id"] in incident_of}
        expected[device] = (len(timeline), sum(e["signal"] == "heartbeat" for e in timeline), len(alarms),
                            sum(false_incident[i] for i in alarms), offline, int(timeline[-1]["signal"] == "offline"))
    rows = query_rows("device_health", f"province={PROVINCE}")
    assert {r["device_id"]: (r["signals"], r["heartbeats"], r["alarm_incidents"], r["false_alarms"],
                             r["offline_seconds"], r["offline_now"]) for r in rows} == expected
    assert any(v[4] or v[5] for v in expected.values()), "the simulation takes some devices offline"
    assert any(v[2] for v in expected.values()), "the simulation presses some alarms"


def test_valuable_ratio_per_source_group_matches_the_input(province: list[dict[str, Any]]) -> None:
    """Of the tips judged: a verdict on a message read as no tip does not count against its group."""
    verdicts = {e["tip_event_id"]: e["verdict"] for e in province if e["type"] == "feedback"}
    expected: dict[tuple[int, str, str], list[int]] = {}
    judged = [e for e in province if e["type"] == "tip" and e["event_id"] in verdicts]
    assert any(not read_as_tip(e) for e in judged)  # the simulated officers judge some messages that are no tip
    for tip in (e for e in judged if read_as_tip(e)):
        counts = expected.setdefault((tip["commune_code"], tip["channel"], tip.get("source_ref") or ""), [0, 0])
        counts[0] += 1
        counts[1] += verdicts[tip["event_id"]] == "valuable"
    rows = query_rows("source_groups", f"province={PROVINCE}")
    assert {(r["commune_code"], r["channel"], r["source_group"]): [r["verdicts"], r["valuable"]] for r in rows} == expected
