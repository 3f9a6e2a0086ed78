"""The access config: validation, and the committed production SQL and Grafana datasources it generates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sinks.clickhouse import analysts_views
from streams.config import ConfigError, INFRA_DIR
from streams.ops.access import (DEFAULT_ACCESS_CONFIG, GRAFANA_DATASOURCES, TABLES, AccessConfig, grafana_datasources,
                                production_sql, typed_feeds)

CONFIG = AccessConfig.load(DEFAULT_ACCESS_CONFIG)


@pytest.mark.parametrize("user, message", [
    ({"name": "Bad-Name", "jurisdiction": {}}, "user name 'Bad-Name'"),
    ({"name": "analyst", "jurisdiction": {}}, "not a built-in user"),
    ({"name": "x_tinh", "jurisdiction": {"province": 99}}, "province 99 is not a 2025 province code"),
    ({"name": "x_xa", "jurisdiction": {"commune": 1}}, "commune 1 is not a 2025 commune code"),
])
def test_a_bad_access_config_says_what_is_wrong(tmp_path: Path, user: dict, message: str) -> None:
    path = tmp_path / "access.json"
    path.write_text(json.dumps({"version": "x", "users": [user]}))
    with pytest.raises(ConfigError, match=re.escape(message)):
        AccessConfig.load(path)


def test_jurisdictions_cover_their_communes() -> None:
    users = {u.name: u for u in CONFIG.users}
    assert users["ca_xa_phuoc_long"].communes() == [31867] and users["ca_xa_phuoc_long"].jurisdiction == "c31867"
    assert len(users["ca_tinh_ca_mau"].communes()) == 64 and users["ca_tinh_ca_mau"].jurisdiction == "p96"
    assert users["bo_chi_huy"].everything and users["bo_chi_huy"].communes() == []


def test_the_production_row_policies_restrict_every_table_for_every_user() -> None:
    sql = production_sql(CONFIG)
    assert (INFRA_DIR / "production" / "clickhouse" / "access.sql").read_text(encoding="utf-8") == sql, (
        "run `binhyen access sql > infra/production/clickhouse/access.sql`")
    for table in TABLES:
        policies = re.findall(rf"CREATE ROW POLICY OR REPLACE (\w+) ON binhyen\.{table} FOR SELECT USING (.+?) TO (.+);", sql)
        assert {name for name, _, _ in policies} == {u.name for u in CONFIG.users} | {"everyone_else"}, table
        using = {name: (condition, to) for name, condition, to in policies}
        assert using["ca_xa_phuoc_long"] == ("commune_code IN (31867)", "ca_xa_phuoc_long")
        assert using["bo_chi_huy"][0] == "1" and using["everyone_else"][1].startswith("ALL EXCEPT ca_tinh_ca_mau")
    assert "binhyen_private" not in sql


def test_on_a_cluster_every_statement_runs_on_every_node_and_policies_hold_the_shards_rows() -> None:
    sql = production_sql(CONFIG, cluster="binhyen")
    assert (INFRA_DIR / "production" / "clickhouse" / "access-cluster.sql").read_text(encoding="utf-8") == sql, (
        "run `binhyen access sql --cluster binhyen > infra/production/clickhouse/access-cluster.sql`")
    statements = [line for line in sql.splitlines() if not line.startswith("--")]
    assert statements and all(" ON CLUSTER binhyen " in line for line in statements)
    for table in TABLES:  # a row policy applies where rows are read: the shards' local tables, communes everywhere
        held = f"binhyen.{table}" if table == "communes" else f"binhyen.{table}_local"
        policies = re.findall(rf"CREATE ROW POLICY OR REPLACE (\w+) ON CLUSTER binhyen ON {held} FOR SELECT USING (.+?) "
                              rf"TO (.+);", sql)
        assert {name: using for name, using, _ in policies} == {
            **{u.name: "1" if u.everything else f"commune_code IN ({', '.join(map(str, u.communes()))})"
               for u in CONFIG.users}, "everyone_else": "1"}, table
    assert not re.search(r" ON binhyen\.(?!communes )\w+(?<!_local) FOR SELECT", sql)  # none on a Distributed table


def test_the_production_access_sql_parses_on_a_current_clickhouse() -> None:
    """chdb (ClickHouse 26.x in process) parses every statement; it has no users or cluster to run them."""
    import tempfile

    from chdb import session

    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        for cluster in (None, "binhyen"):
            for statement in production_sql(CONFIG, cluster=cluster).splitlines():
                if not statement.startswith("--"):
                    assert str(db.query(f"EXPLAIN AST {statement.rstrip(';')}")).strip(), statement
        with pytest.raises(Exception, match="Syntax error"):  # what a statement that does not parse does
            db.query("EXPLAIN AST CREATE ROW POLICY p ON CLUSTER binhyen ON binhyen.tips USING 1 TO nobody ON")


def test_a_grafana_datasource_per_jurisdiction_is_provisioned() -> None:
    assert GRAFANA_DATASOURCES.read_text(encoding="utf-8") == grafana_datasources(CONFIG), (
        "run `binhyen access grafana`")
    assert GRAFANA_DATASOURCES.read_text().count("username: ") == len(CONFIG.users)


def test_a_jurisdiction_gets_every_analysts_view_and_a_feed_for_every_typed_table() -> None:
    views = list(analysts_views("binhyen"))
    assert {"tips_per_day", "tip_verdicts", "alert_lifecycle", "alert_response", "device_health", "community_models",
            "model_coverage", "valuable_ratio_by_source", "credibility_distribution"} == set(views)
    assert views.index("tip_verdicts") < views.index("valuable_ratio_by_source")  # dependencies first
    feeds = typed_feeds("binhyen")
    assert set(feeds) == {"tips", "device_signals", "feedback", "model_changes"}
    assert all(select.rstrip().endswith("'") and "FROM binhyen_private.events" in select for select in feeds.values())
    on_cluster = typed_feeds("binhyen", "binhyen")  # each node's feed reads the events inserted on that node
    assert on_cluster.keys() == feeds.keys()
    assert all(select.replace("FROM binhyen_private.events_local\n", "FROM binhyen_private.events\n") == feeds[table]
               for table, select in on_cluster.items())
