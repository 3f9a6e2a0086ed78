"""Production runs a current ClickHouse: every migration, the rows the worker writes and every
catalog query must work there too, not only on the local 18.16. chdb is ClickHouse 26.x in
process (no server), so this needs nothing running."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from chdb import session

from sinks.clickhouse import (
    ALERT_COLUMNS, EVENT_COLUMNS, INCIDENT_COLUMNS, MEMBER_COLUMNS, MIGRATIONS_DIR, _statements, alert_row, event_row,
    incident_rows,
)
from processors import geography
from streams.ops.catalog import QUERY_DIR, catalog


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        db.query("CREATE DATABASE binhyen")
        db.query("CREATE DATABASE binhyen_private")
        db.query("USE binhyen")
        for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
            for statement in _statements(migration.read_text(encoding="utf-8"), "binhyen"):
                db.query(statement)
        yield db
        db.close()


def insert(db: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    lines = "\n".join(json.dumps(dict(zip(columns, row)), ensure_ascii=False) for row in rows)
    db.query(f"INSERT INTO {table} FORMAT JSONEachRow\n{lines}")


def rows(db: Any, sql: str) -> list[dict[str, Any]]:
    result = db.query(sql + " SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow")
    return [json.loads(line) for line in str(result).splitlines() if line.strip()]


def test_version_is_current(engine: Any) -> None:
    major = int(str(engine.query("SELECT version()", "CSV")).strip().strip('"').split(".")[0])
    assert major >= 24


HCMC = "Thành phố Hồ Chí Minh"


def test_worker_rows_and_catalog_queries_work_on_current_clickhouse(engine: Any) -> None:
    insert(engine, "communes", ("commune_code", "name", "kind", "province_code", "province_name"),
           [(c.code, c.name, "xã", c.province_code, c.province_name) for c in geography.communes_of_province(79)])
    tip = {"event_id": "t1", "occurred_at_ms": 1_756_904_400_000, "utc_offset_min": 420, "commune_code": 26680,
           "channel": "zalo", "text": "Có trộm ở chợ"}
    verdict = {"event_id": "f1", "occurred_at_ms": 1_756_908_000_000, "commune_code": 26680,
               "tip_event_id": "t1", "verdict": "valuable"}
    # a message read as no tip (thanks): recorded, never an incident member, never a tip in a count
    thanks = {**tip, "event_id": "t2", "text": "Cảm ơn các anh công an xã đã hỗ trợ gia đình em", "category": None}
    judged = {**verdict, "event_id": "f2", "tip_event_id": "t2", "verdict": "not_valuable"}
    insert(engine, "binhyen_private.events", EVENT_COLUMNS, [event_row("tip", tip, "binhyen.tips.v1", 0, 1, 1_756_904_401),
                                             event_row("feedback", verdict, "binhyen.feedback.v1", 0, 2, 1_756_908_001),
                                             event_row("tip", thanks, "binhyen.tips.v1", 0, 3, 1_756_904_402),
                                             event_row("feedback", judged, "binhyen.feedback.v1", 0, 4, 1_756_908_002)])
    snapshot = {"incident_id": "inc-1", "version": 2, "commune_code": 26680, "opened_at_ms": 1_756_904_400_000,
                "updated_at_ms": 1_756_904_460_000, "category": "theft", "event_ids": ["t1", "b1"], "tips": 1,
                "device_alarms": 1, "credibility": 0.9,
                "reasons": [{"signal": "device_corroboration", "contribution": 3.5}], "scorer_version": "cred-1"}
    incident, members = incident_rows(snapshot)
    insert(engine, "incidents", INCIDENT_COLUMNS, [incident])
    insert(engine, "incident_members", MEMBER_COLUMNS, members)
    alert = {"alert_id": "al-26680-1", "state": "raised", "severity": "P1", "rule": "panic_bell", "incident_id": "inc-1",
             "commune_code": 26680, "at_ms": 1_756_904_400_000, "by": None, "summary": "x", "route": "commune-post",
             "delivery": "now"}
    insert(engine, "alerts", ALERT_COLUMNS, [alert_row(alert), alert_row({**alert, "state": "acked",
                                                                          "at_ms": 1_756_904_490_000, "by": "ca"})])

    queries = catalog()
    assert rows(engine, queries["tips_per_commune"].sql) == [
        {"day": "2025-09-03", "commune_code": 26680, "commune_name": "Xã Đất Đỏ", "province_name": HCMC,
         "channel": "zalo", "tips": 1, "not_tips": 1}]
    assert rows(engine, queries["valuable_ratio"].sql) == [
        {"commune_code": 26680, "commune_name": "Xã Đất Đỏ", "province_name": HCMC, "verdicts": 1, "valuable": 1,
         "valuable_ratio": 1}]
    credibility = rows(engine, queries["incident_credibility"].sql)
    assert [(r["kind"], r["incidents"]) for r in credibility] == [("theft", 1)]
    response = rows(engine, queries["alert_response_times"].sql)
    assert [(r["commune_code"], r["severity"], r["acked"], r["p50_seconds"]) for r in response] == [
        (26680, "P1", 1, 90)]


def test_typed_tables_views_and_model_queries_work_on_current_clickhouse(engine: Any) -> None:
    """Continues the rows above: a panic press in the incident, a model launched and copied."""
    press = {"event_id": "b1", "occurred_at_ms": 1_756_904_430_000, "commune_code": 26680, "device_id": "bell-1",
             "device_kind": "alarm_bell", "signal": "panic_pressed", "site_kind": "bank", "site_name": None}
    launch = {"event_id": "m1", "occurred_at_ms": 1_756_659_600_000, "commune_code": 26680, "model_id": "zalo-a",
              "model_kind": "zalo_group", "change": "launched", "name": "Kết nối", "members_delta": 500,
              "teams_delta": 10, "replicated_from": None}
    copy = {**launch, "event_id": "m2", "commune_code": 26659, "model_id": "zalo-b", "change": "replicated",
            "replicated_from": "zalo-a", "members_delta": 200}
    insert(engine, "binhyen_private.events", EVENT_COLUMNS, [event_row("device_signal", press, "binhyen.device-signals.v1", 0, 3, 1),
                                             event_row("model_change", launch, "binhyen.model-changes.v1", 0, 1, 1),
                                             event_row("model_change", copy, "binhyen.model-changes.v1", 0, 2, 1)])
    places = geography.communes_of_province(79)  # in `communes` since the test above

    assert rows(engine, "SELECT event_id, channel, anonymous FROM tips ORDER BY event_id") == [
        {"event_id": "t1", "channel": "zalo", "anonymous": 0}, {"event_id": "t2", "channel": "zalo", "anonymous": 0}]
    assert rows(engine, "SELECT event_id, verdict, is_tip FROM tip_verdicts ORDER BY event_id") == [
        {"event_id": "t1", "verdict": "valuable", "is_tip": 1}, {"event_id": "t2", "verdict": "not_valuable", "is_tip": 0}]
    assert rows(engine, "SELECT model_id, members, teams, status, replicated_from FROM community_models "
                        "ORDER BY model_id") == [
        {"model_id": "zalo-a", "members": 500, "teams": 10, "status": "active", "replicated_from": ""},
        {"model_id": "zalo-b", "members": 200, "teams": 10, "status": "active", "replicated_from": "zalo-a"}]
    queries = catalog()
    health = rows(engine, queries["device_health"].sql)
    assert [(r["device_id"], r["alarm_incidents"], r["false_alarms"], r["offline_now"]) for r in health] == [
        ("bell-1", 1, 0, 0)]
    coverage = rows(engine, queries["model_coverage"].sql)
    assert [(r["model_kind"], r["communes_with_model"], r["communes_total"]) for r in coverage] == [
        ("zalo_group", 2, len(places))]
    tree = rows(engine, queries["model_replication"].sql)
    assert [(r["model_id"], r["commune_name"], r["replicated_from"], r["parent_commune_name"]) for r in tree] == [
        ("zalo-b", "Xã Long Điền", "zalo-a", "Xã Đất Đỏ")]
    before_after = rows(engine, queries["model_before_after"].sql)
    assert [(r["model_id"], r["tips_before"], r["tips_after"], r["valuable_after"]) for r in before_after] == [
        ("zalo-b", 0, 0, 0), ("zalo-a", 0, 1, 1)]  # ordered by commune
    groups = rows(engine, queries["source_groups"].sql)
    assert [(r["channel"], r["verdicts"], r["valuable"]) for r in groups] == [("zalo", 1, 1)]  # not the thanks
    for view in ("tips_per_day", "valuable_ratio_by_source", "alert_response", "device_health", "tip_verdicts",
                 "alert_lifecycle", "community_models"):
        named = {(r["commune_name"], r["province_name"]) for r in rows(engine, f"SELECT * FROM {view}")}
        assert named and named <= {("Xã Đất Đỏ", HCMC), ("Xã Long Điền", HCMC)}, (view, named)
    for view in ("credibility_distribution", "model_coverage"):
        assert {r["province_name"] for r in rows(engine, f"SELECT * FROM {view}")} == {HCMC}, view
    for name, query in queries.items():  # every column documented, in the order returned
        assert list(rows(engine, query.sql + " LIMIT 1")[0]) == list(query.columns), name
    assert set(queries) == {path.stem for path in QUERY_DIR.glob("*.sql")}
