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
from streams.catalog import catalog
from streams.simulator import SimConfig, simulate
from streams.stack import WorkerProcess
from tests.conftest import jsonl, offline_run, run_cli, wait_for

pytestmark = pytest.mark.integration
# Simulated days no other test uses, so the figures are this test's alone.
START, END = "2033-03-01", "2033-03-02"


@pytest.fixture(scope="module")
def simulated(worker: WorkerProcess, clickhouse: Any) -> list[dict[str, Any]]:
    from datetime import datetime

    from streams.simulator import VN

    config = SimConfig(96, days=2, seed=21, scale=0.4, start=datetime(2033, 3, 1, tzinfo=VN))
    events = [e for e in simulate(config).events if e["type"] in ("tip", "feedback", "device_signal")
              and (e["type"] != "device_signal" or e["signal"] in ("panic_pressed", "gate_forced"))]
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    ids = tuple(e["event_id"] for e in events)
    wait_for(lambda: clickhouse.execute("SELECT uniqExact(event_id) FROM events WHERE event_id IN %(ids)s",
                                        {"ids": ids})[0][0] == len(ids), 120, "the simulated days in ClickHouse")
    return events


def run_query(name: str) -> list[dict[str, Any]]:
    result = run_cli("query", name, "--param", f"day_from={START}", "--param", f"day_to={END}", "--format", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_tips_per_commune_match_the_input(simulated: list[dict[str, Any]]) -> None:
    expected = Counter((e["occurred_at"][:10], e["commune_code"], e["channel"]) for e in simulated if e["type"] == "tip")
    rows = run_query("tips_per_commune")
    assert {(r["day"], r["commune_code"], r["channel"]): r["tips"] for r in rows} == dict(expected)


def test_valuable_ratio_matches_the_input(simulated: list[dict[str, Any]]) -> None:
    verdicts = [e for e in simulated if e["type"] == "feedback"]
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
    assert client.execute("SELECT count() FROM events")[0][0] >= 0
    for statement in ("INSERT INTO events (event_id) VALUES ('x')", "ALTER TABLE events DELETE WHERE 1",
                      "DROP TABLE events", "CREATE TABLE stolen (x UInt8) ENGINE = Memory"):
        with pytest.raises(ServerException) as caught:
            client.execute(statement)
        assert "readonly" in str(caught.value).lower() or "not enough privileges" in str(caught.value).lower()
    if user == "grafana":  # readonly=2 may still change query settings, as Grafana's datasource does
        assert client.execute("SELECT 1", settings={"max_threads": 1}) == [(1,)]
