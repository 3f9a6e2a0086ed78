"""ClickHouse at the edge: connections, versioned migrations, and the table sinks.

A table sink keeps its rows until an insert succeeds, so a caller that retries `flush()`
re-sends exactly the same rows (deterministic batch boundaries); the tables are
ReplacingMergeTree on the event id, so a re-sent row never counts twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as ClickHouseError

from processors import geography
from sinks.base import SinkError
from sinks.cluster import LOCAL_SUFFIX, Layout, compile_statement, schema_migrations_ddl

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "infra" / "clickhouse" / "migrations"
_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class ClickHouseSettings(Protocol):
    """Where ClickHouse is and who writes (streams.config.Settings has these)."""

    clickhouse_host: str
    clickhouse_port: int
    clickhouse_user: str
    clickhouse_database: str
    clickhouse_secure: bool
    clickhouse_ca_file: Path | None

    @property
    def clickhouse_password(self) -> str: ...


def connect(settings: ClickHouseSettings, database: str | None = None, user: str | None = None,
            password: str | None = None, **client_settings: Any) -> Client:
    """A client for the writer (default) or another user (the analysts' read-only one)."""
    if getattr(settings, "reprocessing", False) and getattr(settings, "clickhouse_cluster", ""):
        # History's rows must be in the shards before its tables are swapped in: a Distributed
        # table's queue would deliver them later into the tables swapped out.
        client_settings.setdefault("insert_distributed_sync", 1)
    return Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=user or settings.clickhouse_user,
        password=settings.clickhouse_password if password is None else password,
        database=database or "default",
        connect_timeout=3,
        send_receive_timeout=30,
        settings=client_settings or None,
        secure=settings.clickhouse_secure,
        ca_certs=str(settings.clickhouse_ca_file) if settings.clickhouse_ca_file else None,
    )


def private_database(database: str) -> str:
    """The writer-only database beside `database`: the raw event store, which no reader may see."""
    return f"{database}_private"


def events_table(database: str) -> str:
    """`events` (every field as sent, tip text included), qualified: it is not in `database`."""
    return f"{private_database(database)}.events"


def _statements(sql: str, database: str) -> list[str]:
    """Split a migration file on `;` at line ends; comment lines are dropped, `{private}` filled in."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    body = body.replace("{private}", private_database(database))
    return [part.strip() for part in re.split(r";\s*$", body, flags=re.MULTILINE) if part.strip()]


def pending_migrations(applied: set[int], directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql")
        if int(match["version"]) not in applied:
            found.append((int(match["version"]), match["name"], path))
    return found


def migrate(settings: ClickHouseSettings, directory: Path = MIGRATIONS_DIR, database: str | None = None,
            cluster: str | None = None) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`; returns their names. With a
    `cluster`, their cluster form (sinks/cluster.py), on every node, recorded once."""
    database = database or settings.clickhouse_database
    cluster = cluster or getattr(settings, "clickhouse_cluster", "") or None  # streams.config.Settings has one
    on = f" ON CLUSTER {cluster}" if cluster else ""
    admin = connect(settings)
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {database}{on}")
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {private_database(database)}{on}")
    client = connect(settings, database)
    client.execute(schema_migrations_ddl(database, cluster) if cluster else
                   "CREATE TABLE IF NOT EXISTS schema_migrations "
                   "(version UInt32, name String, checksum String, applied_at DateTime) "
                   "ENGINE = MergeTree() ORDER BY version")
    applied = {row[0] for row in client.execute("SELECT version FROM schema_migrations")}
    layout = Layout(database, cluster) if cluster else None
    done = []
    for version, name, path in pending_migrations(set() if layout else applied, directory):
        sql = path.read_text(encoding="utf-8")
        statements = _statements(sql, database)
        if layout is not None:  # every file compiles (the layout needs them all); the pending ones run
            statements = [out for statement in statements for out in compile_statement(statement, layout)]
            if version in applied:
                continue
        for statement in statements:
            client.execute(statement)
        client.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES",
            [(version, name, hashlib.sha256(sql.encode()).hexdigest(), datetime.now().replace(microsecond=0))],
        )
        done.append(path.name)
    seed_communes(client)
    return done


def cluster_ddl(database: str, cluster: str, directory: Path = MIGRATIONS_DIR) -> str:
    """Every migration's cluster form as one SQL text (`binhyen migrate --cluster NAME --print`):
    what production reviews and applies; infra/production/clickhouse/cluster.sql is this, generated."""
    layout = Layout(database, cluster)
    parts = [f"-- Generated by `binhyen migrate --cluster {cluster} --print` from infra/clickhouse/migrations "
             "(sinks/cluster.py); do not edit.\n-- `binhyen migrate --cluster NAME` applies it and records each "
             "migration once in schema_migrations:\n"
             f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster};\n"
             f"CREATE DATABASE IF NOT EXISTS {private_database(database)} ON CLUSTER {cluster};\n"
             + schema_migrations_ddl(database, cluster) + ";\n"]
    for _, name, path in pending_migrations(set(), directory):
        statements = [out for statement in _statements(path.read_text(encoding="utf-8"), database)
                      for out in compile_statement(statement, layout)]
        parts.append(f"-- {path.name}\n" + "".join(f"{statement};\n\n" for statement in statements).rstrip() + "\n")
    return "\n".join(parts)


# Every table rebuilt from the Kafka log by `binhyen replay` (the typed tables through the
# materialized views from `events`), as (database role, table): "private" tables live in
# `private_database(db)`.
PROJECTION_TABLES = (("private", "events"), ("", "tips"), ("", "device_signals"), ("", "feedback"),
                     ("", "model_changes"), ("", "incidents"), ("", "incident_members"), ("", "alerts"))


def projection_table(database: str, role: str, table: str) -> str:
    return f"{private_database(database) if role == 'private' else database}.{table}"
_MATERIALIZED_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+)")
_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (?P<name>\w+)")
_DROPPED = re.compile(r"^DROP TABLE IF EXISTS (?P<name>\w+)$")


def defined_by_migrations(kind: re.Pattern[str], database: str, directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Name -> latest CREATE statement of every object of `kind` the migrations define for
    `database`, in the order each first appears (so what a view reads is created before it)."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for statement in _statements(path.read_text(encoding="utf-8"), database):
            match = kind.match(statement)
            if match:
                found[match["name"]] = statement
    return found


def cluster_materialized_views(database: str, cluster: str, directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Name -> the cluster form of every materialized view the migrations leave for `database`."""
    layout = Layout(database, cluster)
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for statement in _statements(path.read_text(encoding="utf-8"), database):
            match = _MATERIALIZED_VIEW.match(statement) or _DROPPED.match(statement)
            compiled = compile_statement(statement, layout)
            if match and statement.startswith("CREATE"):
                found[match["name"]] = compiled[0]
            elif match:
                found.pop(match["name"], None)
    return found


def materialized_views(database: str, directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Name -> CREATE statement of every materialized view the migrations define for `database`."""
    return defined_by_migrations(_MATERIALIZED_VIEW, database, directory)


def analysts_views(database: str, directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Name -> CREATE statement of every (plain) view the migrations define for `database`."""
    return defined_by_migrations(_VIEW, database, directory)


class SwapError(RuntimeError):
    """The projections could not be swapped in; the message says in what state it left them."""


def swap_projections(client: Client, live: str, fresh: str, cluster: str | None = None) -> None:
    """Put `fresh`'s projection tables in place of `live`'s; the old ones move into `fresh`.

    `client` must be connected to the `live` database.
    Materialized views are dropped on both sides and re-created on the live tables: a view
    follows a renamed source table by name on 18.16 and by UUID on current releases, so only
    re-creating it behaves the same on both. Events inserted into `live` while its views are
    away miss the typed tables; the caller replays the log's tail again after the swap.
    A fresh table missing stops it before anything changed; a failed rename is undone
    (`rename_all`) and the live tables get their views back. On a `cluster` the replicated local
    tables are swapped on every node, under the Distributed tables, and the views are the
    cluster form's.
    """
    suffix, on = (LOCAL_SUFFIX, f" ON CLUSTER {cluster}") if cluster else ("", "")
    missing = [name for name in (projection_table(fresh, role, table) + suffix for role, table in PROJECTION_TABLES)
               if not client.execute(f"EXISTS TABLE {name}")[0][0]]
    if missing:
        raise SwapError(f"the rebuilt table {missing[0]} is missing, so nothing was swapped and the live projections "
                        "are as they were; run `binhyen replay` again")
    for database in (fresh, live):
        for name in materialized_views(database):
            client.execute(f"DROP TABLE IF EXISTS {database}.{name}{on}")
    renames = []
    for role, table in PROJECTION_TABLES:
        live_name, fresh_name = projection_table(live, role, table) + suffix, projection_table(fresh, role, table) + suffix
        renames += [(live_name, f"{fresh_name}__old"), (fresh_name, live_name)]
    try:
        rename_all(client, renames, cluster)
    finally:
        for statement in (cluster_materialized_views(live, cluster) if cluster else materialized_views(live)).values():
            client.execute(statement)  # single-node form: unqualified names, the client's database


def rename_all(client: Client, renames: list[tuple[str, str]], cluster: str | None = None) -> None:
    """Rename each (source, target) in turn; if one fails, undo those done, newest first, and
    raise SwapError. One multi-table RENAME would not do: it stops half-way on a failure, on
    18.16 and on current releases alike. With a `cluster`, each RENAME runs ON CLUSTER."""
    on = f" ON CLUSTER {cluster}" if cluster else ""
    done: list[tuple[str, str]] = []
    try:
        for source, target in renames:
            client.execute(f"RENAME TABLE {source} TO {target}{on}")
            done.append((source, target))
    except ClickHouseError as exc:
        failed = renames[len(done)]
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        for source, target in reversed(done):
            client.execute(f"RENAME TABLE {target} TO {source}{on}")
        raise SwapError(f"renaming {failed[0]} to {failed[1]} failed ({reason}); every table was put back as it "
                        "was") from None


def seed_communes(client: Client) -> None:
    """Fill the communes dimension from the packaged geography when it differs (idempotent)."""
    places = geography.communes()
    kinds = geography.commune_kinds()
    legacy = geography.legacy_to_2025()
    if client.execute("SELECT uniqExact(commune_code) FROM communes")[0][0] != len(places):
        client.execute(
            "INSERT INTO communes (commune_code, name, kind, province_code, province_name) VALUES",
            [(c.code, c.name, kinds[c.code], c.province_code, c.province_name) for c in places.values()],
        )
    if client.execute("SELECT uniqExact(legacy_code) FROM legacy_communes")[0][0] != len(legacy):
        client.execute("INSERT INTO legacy_communes (legacy_code, commune_code) VALUES", list(legacy.items()))



EVENT_COLUMNS = (
    "event_id", "event_type", "occurred_at", "occurred_at_ms", "utc_offset_min", "commune_code",
    "province_code", "payload", "source_topic", "source_partition", "source_offset", "ingested_at",
)


def event_row(
    event_type: str, record: dict[str, Any], topic: str, partition: int, offset: int, ingested_at_s: int
) -> tuple[Any, ...]:
    """One `events` row; times stay integers (the driver takes epoch seconds for DateTime)."""
    code = record.get("commune_code") or 0
    place = geography.commune(code) if code else None
    return (
        record["event_id"],
        event_type,
        record["occurred_at_ms"] // 1000,
        record["occurred_at_ms"],
        record.get("utc_offset_min") or 0,
        code,
        place.province_code if place else 0,
        json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")),  # compact: visitParam* functions need it
        topic,
        partition,
        offset,
        ingested_at_s,
    )


def incident_rows(snapshot: dict[str, Any]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One `incidents` row and its `incident_members` rows."""
    place = geography.commune(snapshot["commune_code"])
    opened = snapshot["opened_at_ms"] // 1000
    row = (
        snapshot["incident_id"], snapshot["version"], snapshot["commune_code"],
        place.province_code if place else 0, opened, snapshot["updated_at_ms"] // 1000,
        snapshot["category"] or "", snapshot["tips"], snapshot["device_alarms"], snapshot["credibility"],
        json.dumps(snapshot["reasons"], ensure_ascii=False, separators=(",", ":")), snapshot["scorer_version"],
        features_json(snapshot),
    )
    members = [(snapshot["incident_id"], event_id, snapshot["commune_code"], opened) for event_id in snapshot["event_ids"]]
    return row, members


INCIDENT_COLUMNS = (
    "incident_id", "version", "commune_code", "province_code", "opened_at", "updated_at", "category",
    "tips", "device_alarms", "credibility", "reasons", "scorer_version", "features",
)
MEMBER_COLUMNS = ("incident_id", "event_id", "commune_code", "opened_at")
TIP_SCORE_COLUMNS = ("event_id", "incident_id", "commune_code", "occurred_at", "scorer_version", "credibility", "features")


def features_json(snapshot: dict[str, Any]) -> str:
    """The snapshot's features as {"signal": value} ('' before incident.v2)."""
    values = {f["signal"]: round(float(f["value"]), 6) for f in snapshot.get("features") or []}  # 2.0 as Avro gives it
    return json.dumps(values, separators=(",", ":")) if values else ""


def tip_score_row(tip: dict[str, Any], snapshot: dict[str, Any]) -> tuple[Any, ...]:
    """The score `tip` got when it joined `snapshot`'s incident, with what it was computed from."""
    return (tip["event_id"], snapshot["incident_id"], snapshot["commune_code"], tip["occurred_at_ms"] // 1000,
            snapshot["scorer_version"], snapshot["credibility"], features_json(snapshot))


class TableSink:
    """Batched, idempotent writer of one table (ReplacingMergeTree keyed so re-inserts collapse)."""

    def __init__(self, client: Client, table: str, columns: Sequence[str]) -> None:
        self.client = client
        self.name = table
        self.columns = tuple(columns)
        self.rows: list[tuple[Any, ...]] = []

    @property
    def pending(self) -> int:
        return len(self.rows)

    def add(self, item: tuple[Any, ...]) -> None:
        self.rows.append(item)

    def flush(self) -> int:
        """Insert every pending row in one insert; on failure they stay for the caller's retry."""
        if not self.rows:
            return 0
        try:
            self.client.execute(
                f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES", self.rows, types_check=False
            )
        except (ClickHouseError, OSError, EOFError) as exc:
            first_line = (str(exc).splitlines() or [""])[0][:200]
            raise SinkError(f"ClickHouse insert of {len(self.rows)} rows into {self.name} failed "
                            f"({type(exc).__name__}: {first_line})") from None
        written, self.rows = len(self.rows), []
        return written


ALERT_COLUMNS = (
    "alert_id", "state", "severity", "rule", "incident_id", "commune_code", "province_code", "at", "at_ms", "by",
    "route", "delivery", "summary", "config_version",
)


def alert_row(alert: dict[str, Any]) -> tuple[Any, ...]:
    place = geography.commune(alert["commune_code"])
    return (
        alert["alert_id"], alert["state"], alert["severity"], alert["rule"], alert["incident_id"] or "",
        alert["commune_code"], place.province_code if place else 0, alert["at_ms"] // 1000, alert["at_ms"],
        alert.get("by") or "", alert["route"], alert["delivery"], alert["summary"], alert.get("config_version") or "",
    )


def alert_sink(client: Client) -> TableSink:
    return TableSink(client, "alerts", ALERT_COLUMNS)


def event_sink(client: Client, database: str) -> TableSink:
    return TableSink(client, events_table(database), EVENT_COLUMNS)


def incident_sinks(client: Client) -> tuple[TableSink, TableSink]:
    return TableSink(client, "incidents", INCIDENT_COLUMNS), TableSink(client, "incident_members", MEMBER_COLUMNS)


def tip_score_sink(client: Client, database: str) -> TableSink:
    return TableSink(client, f"{private_database(database)}.tip_scores", TIP_SCORE_COLUMNS)
