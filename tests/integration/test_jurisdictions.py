"""Jurisdictions on the real ClickHouse 18.16: a commune post's user and a province's user read
only their own rows by every query tried; events arriving after `access apply` reach them."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from streams.ops.catalog import catalog
from tests.conftest import jsonl, run_cli, wait_for

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
# Cà Mau ×2, Hà Tĩnh, Hồ Chí Minh City: tips "now" move their communes' clocks, so the two outside
# Cà Mau are communes no other test sends dated tips to.
PHUOC_LONG, BAC_LIEU, NGHI_XUAN, DAT_DO = 31867, 31825, 18199, 25819
CONFIG = {"version": "access-test", "users": [
    {"name": "t_xa_phuoc_long", "jurisdiction": {"commune": PHUOC_LONG}},
    {"name": "t_tinh_ca_mau", "jurisdiction": {"province": 96}},
    {"name": "t_chi_huy", "jurisdiction": {}}]}


def events(tag: str, minutes_ago: int) -> list[dict[str, Any]]:
    """A tip and a panic bell in each of four communes (incidents, alerts, device rows)."""
    at = (datetime.now(VN) - timedelta(minutes=minutes_ago)).replace(microsecond=0).isoformat()
    out = []
    for commune in (PHUOC_LONG, BAC_LIEU, NGHI_XUAN, DAT_DO):
        out.append({"type": "tip", "event_id": f"jur-{tag}-tip-{commune}", "occurred_at": at, "commune_code": commune,
                    "channel": "zalo", "source_ref": f"zalo:grp-{commune}", "category": "theft",
                    "text": f"Mất trộm xe máy ở chợ xã {commune}", "reporter_contact": f"+8491{commune}"})
        out.append({"type": "device_signal", "event_id": f"jur-{tag}-bell-{commune}", "occurred_at": at,
                    "commune_code": commune, "device_id": f"bell-jur-{tag}-{commune}", "device_kind": "alarm_bell",
                    "signal": "panic_pressed", "site_kind": "bank"})
    return out


def client_as(settings: Any, user: str, database: str) -> Any:
    def query(sql: str) -> subprocess.CompletedProcess[str]:
        password = (Path(settings.state_dir) / "access" / f"{user}.password").read_text().strip()
        return subprocess.run(["clickhouse-client", "--port", str(settings.clickhouse_port), "--user", user,
                               "--password", password, "--database", database, "--format", "JSONCompact",
                               "--query", sql], capture_output=True, text=True, timeout=60)
    return query


@pytest.fixture(scope="module")
def applied(worker: Any, settings: Any, clickhouse: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    before = events(tag, 20)
    assert run_cli("publish", "-q", "-", input=jsonl(before)).returncode == 0
    wait_for(lambda: clickhouse.execute("SELECT count() FROM alerts FINAL WHERE alert_id IN (SELECT DISTINCT "
                                        "alert_id FROM alerts WHERE commune_code IN %(c)s AND rule = 'panic_bell' "
                                        "AND at >= now() - 3600)", {"c": (PHUOC_LONG, BAC_LIEU, NGHI_XUAN, DAT_DO)})
             [0][0] >= 4, 90, "the four P1s")
    config = tmp_path_factory.mktemp("access") / "access.json"
    config.write_text(json.dumps(CONFIG))
    result = run_cli("access", "apply", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return {"tag": tag, "out": result.stdout}


def rows(answer: subprocess.CompletedProcess[str]) -> tuple[list[str], list[list[Any]]]:
    assert answer.returncode == 0, answer.stderr
    parsed = json.loads(answer.stdout)
    return [column["name"] for column in parsed["meta"]], parsed["data"]


def assert_only(columns: list[str], data: list[list[Any]], communes: set[int], province: int) -> None:
    for row in data:
        record = dict(zip(columns, row))
        if "commune_code" in record:
            assert int(record["commune_code"]) in communes, record
        if "province_code" in record:
            assert int(record["province_code"]) == province, record


def test_a_commune_post_reads_only_its_commune_by_every_query(applied: dict[str, str], settings: Any) -> None:
    query = client_as(settings, "t_xa_phuoc_long", "binhyen_c31867")
    columns, tables = rows(query("SELECT name FROM system.tables WHERE database = currentDatabase()"))
    names = [t[0] for t in tables]
    assert {"tips", "alerts", "incidents", "tips_per_day", "alert_response", "device_health"} <= set(names)
    for name in names:  # every table and view of its database, whole
        columns, data = rows(query(f"SELECT * FROM {name}"))
        assert_only(columns, data, {PHUOC_LONG}, 96)
    columns, data = rows(query("SELECT commune_code, count() FROM tips FINAL GROUP BY commune_code"))
    assert [int(d[0]) for d in data] == [PHUOC_LONG]
    _, alerts = rows(query(f"SELECT alert_id FROM alerts FINAL WHERE alert_id LIKE 'al-{PHUOC_LONG}-%'"))
    assert alerts  # its own P1 is there
    for name, entry in catalog().items():
        columns, data = rows(query(entry.sql))
        assert_only(columns, data, {PHUOC_LONG}, 96)
        if "commune_name" in columns:
            assert {dict(zip(columns, r))["commune_name"] for r in data} <= {"Xã Phước Long"}, name
    for forbidden in (
            "SELECT count() FROM binhyen.tips", "SELECT count() FROM binhyen_private.events",
            "SELECT count() FROM binhyen_p96.tips",
            "SELECT * FROM tips AS t ANY LEFT JOIN binhyen.tips AS u USING event_id",
            "SELECT * FROM tips WHERE commune_code IN (SELECT commune_code FROM binhyen.tips)",
            "SELECT * FROM merge('binhyen', '^tips$')", "SELECT * FROM remote('127.0.0.1', binhyen.tips)",
            f"SELECT * FROM url('http://127.0.0.1:{settings.clickhouse_http_port}/?query=SELECT%201', TSV, 'x String')",
            "SELECT * FROM file('/etc/passwd', TSV, 'x String')",
            "SET readonly = 0", "CREATE TABLE x (a UInt8) ENGINE = Memory", "INSERT INTO tips (event_id) VALUES ('x')"):
        answer = query(forbidden)
        assert answer.returncode != 0 and ("Access denied" in answer.stderr or "readonly" in answer.stderr
                                           or "Cannot" in answer.stderr), (forbidden, answer.stderr)
    foreign = f"jur-{applied['tag']}-tip-{DAT_DO}"
    for system_table in ("tables", "columns", "parts", "processes", "databases", "settings", "clusters"):
        answer = query(f"SELECT * FROM system.{system_table}")
        assert foreign not in answer.stdout, system_table  # metadata at most, never another commune's rows


def test_a_province_reads_its_communes_and_a_command_reads_all(applied: dict[str, str], settings: Any) -> None:
    province = client_as(settings, "t_tinh_ca_mau", "binhyen_p96")
    columns, data = rows(province(f"SELECT DISTINCT commune_code FROM tips FINAL WHERE event_id LIKE 'jur-{applied['tag']}-%'"))
    assert sorted(int(d[0]) for d in data) == [BAC_LIEU, PHUOC_LONG]
    for name in ("tips", "device_signals", "incidents", "incident_members", "alerts", "communes", "device_health"):
        columns, data = rows(province(f"SELECT * FROM {name}"))
        assert data and all(96 == int(dict(zip(columns, r)).get("province_code", 96)) for r in data), name
        communes = {int(dict(zip(columns, r))["commune_code"]) for r in data}
        assert communes <= {c for c in range(31000, 33000)} and NGHI_XUAN not in communes and DAT_DO not in communes
    command = client_as(settings, "t_chi_huy", "binhyen")
    _, data = rows(command(f"SELECT DISTINCT commune_code FROM tips FINAL WHERE event_id LIKE 'jur-{applied['tag']}-%'"))
    assert sorted(int(d[0]) for d in data) == sorted((PHUOC_LONG, BAC_LIEU, NGHI_XUAN, DAT_DO))
    assert "binhyen_private" in command("SELECT count() FROM binhyen_private.events").stderr  # denied all the same


def test_events_after_apply_reach_the_jurisdictions_copies(applied: dict[str, str], settings: Any) -> None:
    later = events(applied["tag"] + "b", 5)
    assert run_cli("publish", "-q", "-", input=jsonl(later)).returncode == 0
    query = client_as(settings, "t_xa_phuoc_long", "binhyen_c31867")
    wait_for(lambda: rows(query(f"SELECT event_id FROM tips FINAL WHERE event_id LIKE 'jur-{applied['tag']}b-%'"))[1]
             == [[f"jur-{applied['tag']}b-tip-{PHUOC_LONG}"]], 60, "the new tip in the commune's copy")
    _, data = rows(query(f"SELECT commune_code FROM alerts FINAL WHERE incident_id != '' AND at >= now() - 600"))
    assert {int(d[0]) for d in data} == {PHUOC_LONG}


def test_a_verdict_without_a_commune_counts_in_its_tips_commune(applied: dict[str, str], settings: Any,
                                                                clickhouse: Any) -> None:
    """Upstream systems may judge a tip by its id alone: the verdict is stored with the tip's
    commune (its `events` row, then `feedback`), so the post sees it and `valuable_ratio` counts it."""
    at = datetime.now(VN).replace(microsecond=0).isoformat()
    verdicts = [{"type": "feedback", "event_id": f"jur-{applied['tag']}-verdict-{commune}", "occurred_at": at,
                 "tip_event_id": f"jur-{applied['tag']}-tip-{commune}", "verdict": "valuable"}
                for commune in (PHUOC_LONG, DAT_DO)]
    assert run_cli("publish", "-q", "-", input=jsonl(verdicts)).returncode == 0
    ids = tuple(v["event_id"] for v in verdicts)
    wait_for(lambda: len(clickhouse.execute("SELECT event_id FROM feedback FINAL WHERE event_id IN %(ids)s",
                                            {"ids": ids})) == 2, 60, "both verdicts in feedback")
    stored = clickhouse.execute("SELECT event_id, commune_code FROM feedback FINAL WHERE event_id IN %(ids)s "
                                "ORDER BY event_id", {"ids": ids})
    assert stored == [(ids[1], DAT_DO), (ids[0], PHUOC_LONG)]
    recorded = clickhouse.execute("SELECT event_id, commune_code, province_code FROM binhyen_private.events FINAL "
                                  "WHERE event_id IN %(ids)s ORDER BY event_id", {"ids": ids})
    assert recorded == [(ids[1], DAT_DO, 79), (ids[0], PHUOC_LONG, 96)]
    query = client_as(settings, "t_xa_phuoc_long", "binhyen_c31867")
    wait_for(lambda: rows(query(f"SELECT event_id, commune_code, verdict FROM feedback FINAL "
                                f"WHERE event_id LIKE 'jur-{applied['tag']}-verdict-%'"))[1]
             == [[ids[0], PHUOC_LONG, "valuable"]], 60, "the verdict in the commune's copy, and only its own")
    expected = clickhouse.execute("SELECT count(), countIf(verdict = 'valuable') FROM feedback FINAL "
                                  "WHERE commune_code = %(c)s AND toDate(occurred_at) BETWEEN toDate('2025-01-01') "
                                  "AND toDate('2030-12-31') AND (tip_event_id = '' OR tip_event_id IN "
                                  "(SELECT event_id FROM incident_members))",  # the query's default range; tips only
                                  {"c": PHUOC_LONG})[0]
    columns, data = rows(query(catalog()["valuable_ratio"].sql))
    assert [(int(r["commune_code"]), int(r["verdicts"]), int(r["valuable"])) for r in
            (dict(zip(columns, row)) for row in data)] == [(PHUOC_LONG, *expected)]
