"""The cluster form of the migrations, compiled from the same files (sinks/cluster.py)."""

from __future__ import annotations

import pytest

from sinks.clickhouse import MIGRATIONS_DIR, _statements, pending_migrations
from sinks.cluster import ClusterDDLError, Layout, compile_statement

CLUSTER = "binhyen_local"


def compiled() -> tuple[Layout, dict[str, list[str]]]:
    layout = Layout("binhyen", CLUSTER)
    out = {}
    for _, name, path in pending_migrations(set(), MIGRATIONS_DIR):
        out[name] = [cluster for statement in _statements(path.read_text(encoding="utf-8"), "binhyen")
                     for cluster in compile_statement(statement, layout)]
    return layout, out


def test_every_migration_compiles_and_every_statement_runs_on_the_whole_cluster() -> None:
    layout, statements = compiled()
    assert len(statements) == len(list(MIGRATIONS_DIR.glob("*.sql")))
    # ... but a column added to an everywhere table: its replication carries it to every node, and
    # ON CLUSTER each node would add it again ("column with this name already exists")
    assert statements["meaning_version"] == [
        "ALTER TABLE binhyen_private.processor_versions ADD COLUMN meaning String DEFAULT ''"]
    assert all(f"ON CLUSTER {CLUSTER}" in statement for name, body in statements.items() for statement in body
               if name != "meaning_version")
    assert layout.sharded == {
        "binhyen_private.events", "binhyen.tips", "binhyen.device_signals", "binhyen.feedback",
        "binhyen.model_changes", "binhyen.incidents", "binhyen.incident_members", "binhyen.alerts",
        "binhyen_private.tip_scores"}
    assert layout.everywhere == {"binhyen.communes", "binhyen.legacy_communes", "binhyen_private.processor_versions",
                                 "binhyen_private.worker_heartbeats"}


def test_a_commune_table_is_replicated_per_shard_and_distributed_by_commune() -> None:
    _, statements = compiled()
    local, distributed = statements["incidents"][:2]
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS binhyen.incidents_local ON CLUSTER {CLUSTER}\n(")
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/binhyen.incidents', '{replica}', "
            "version)\nPARTITION BY toYYYYMM(opened_at)\nORDER BY (commune_code, incident_id)") in local
    assert distributed == (f"CREATE TABLE IF NOT EXISTS binhyen.incidents ON CLUSTER {CLUSTER} AS "
                           f"binhyen.incidents_local ENGINE = Distributed({CLUSTER}, binhyen, incidents_local, "
                           "cityHash64(commune_code))")


def test_reference_tables_are_whole_on_every_node() -> None:
    _, statements = compiled()
    communes = next(s for s in statements["typed_events"]
                    if "binhyen.communes ON CLUSTER" in s and s.startswith("CREATE TABLE"))
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/all/binhyen.communes', '{replica}')" in communes


def test_views_and_renames_follow_the_local_tables() -> None:
    _, statements = compiled()
    moved = statements["private_events"]
    assert moved[:4] == [
        f"CREATE DATABASE IF NOT EXISTS binhyen_private ON CLUSTER {CLUSTER}",
        f"RENAME TABLE binhyen.events_local TO binhyen_private.events_local ON CLUSTER {CLUSTER}",
        f"DROP TABLE IF EXISTS binhyen.events ON CLUSTER {CLUSTER}",
        f"CREATE TABLE IF NOT EXISTS binhyen_private.events ON CLUSTER {CLUSTER} AS binhyen_private.events_local "
        f"ENGINE = Distributed({CLUSTER}, binhyen_private, events_local, cityHash64(commune_code))"]
    tips_view = next(s for s in moved if "MATERIALIZED VIEW IF NOT EXISTS binhyen.tips_from_events" in s)
    assert f"ON CLUSTER {CLUSTER} TO binhyen.tips_local AS" in tips_view
    assert "FROM binhyen_private.events_local\nWHERE event_type = 'tip'" in tips_view
    features = statements["credibility_features"]
    assert features[:3] == [
        f"ALTER TABLE binhyen.incidents_local ON CLUSTER {CLUSTER} ADD COLUMN features String DEFAULT ''",
        f"DROP TABLE IF EXISTS binhyen.incidents ON CLUSTER {CLUSTER}",
        f"CREATE TABLE IF NOT EXISTS binhyen.incidents ON CLUSTER {CLUSTER} AS binhyen.incidents_local "
        f"ENGINE = Distributed({CLUSTER}, binhyen, incidents_local, cityHash64(commune_code))"]
    dropped = statements["tips_without_pseudonym"]  # the feed goes first, and comes back without the column
    assert dropped[:4] == [
        f"DROP TABLE IF EXISTS binhyen.tips_from_events ON CLUSTER {CLUSTER}",
        f"ALTER TABLE binhyen.tips_local ON CLUSTER {CLUSTER} DROP COLUMN reporter_pseudonym",
        f"DROP TABLE IF EXISTS binhyen.tips ON CLUSTER {CLUSTER}",
        f"CREATE TABLE IF NOT EXISTS binhyen.tips ON CLUSTER {CLUSTER} AS binhyen.tips_local "
        f"ENGINE = Distributed({CLUSTER}, binhyen, tips_local, cityHash64(commune_code))"]
    assert f"ON CLUSTER {CLUSTER} TO binhyen.tips_local AS" in dropped[4] and "reporter_pseudonym" not in dropped[4]


def test_a_statement_without_a_cluster_form_is_named() -> None:
    with pytest.raises(ClusterDDLError, match=r"^no cluster form for the migration statement 'OPTIMIZE TABLE x': "
                                              r"teach sinks/cluster.py"):
        compile_statement("OPTIMIZE TABLE x", Layout("binhyen", CLUSTER))


def test_the_production_reference_is_the_generated_cluster_ddl() -> None:
    from pathlib import Path

    from sinks.clickhouse import cluster_ddl

    shipped = Path(__file__).parents[2] / "infra" / "production" / "clickhouse" / "cluster.sql"
    assert shipped.read_text(encoding="utf-8") == cluster_ddl("binhyen", "binhyen"), (
        "regenerate it: binhyen migrate --cluster binhyen --print > infra/production/clickhouse/cluster.sql")


def test_the_views_a_swap_recreates_are_the_cluster_forms_the_migrations_leave() -> None:
    from sinks.clickhouse import cluster_materialized_views, materialized_views

    views = cluster_materialized_views("binhyen", CLUSTER)
    assert set(views) == set(materialized_views("binhyen")) == {
        "tips_from_events", "device_signals_from_events", "feedback_from_events", "model_changes_from_events"}
    assert views["feedback_from_events"].startswith(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS binhyen.feedback_from_events ON CLUSTER {CLUSTER} "
        "TO binhyen.feedback_local AS")
    assert all("FROM binhyen_private.events_local" in statement for statement in views.values())
