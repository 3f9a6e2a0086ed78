"""Jurisdictions: a province user sees only its province's rows, a commune post only its commune's.

One versioned access config (`infra/config/access.v1.json`) names the users and their
jurisdiction: a province, a commune, or nothing (province-wide command: everything).

ClickHouse 18.16 (the local server) has no row policies — measured: a users.xml `<filter>` is
ignored, and a view in one database over another's tables is refused to a user allowed only
the first. So `apply` gives each jurisdiction a database of its own (`<db>_p96`,
`<db>_c31867`) holding copies of the analytics tables restricted to its communes, fed on
insert by materialized views that live in the writer-only private database, filled once from
what exists, and the analysts' views re-created over those copies; its users are allowed that
database only (`config.d/access.xml`, read by the server within seconds). A current ClickHouse
(production) gets the same config as row policies (`production_sql`). On the local cluster
(`binhyen up --cluster`) the copies are sharded like the originals and the users are on every node.

After `binhyen replay` or a `reprocess --promote` (which swap the tables the feeds read),
run `apply` again: it rebuilds every jurisdiction's copies.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from processors.geography import commune as commune_of
from processors.geography import communes_of_province, provinces
from sinks.clickhouse import (analysts_views, cluster_materialized_views, connect, materialized_views,
                              private_database)
from sinks.cluster import EVERYWHERE, LOCAL_SUFFIX, Layout, compile_statement, distributed_table
from streams.config import INFRA_DIR, ConfigError, Settings
from streams.ops.stack import clickhouse_nodes

DEFAULT_ACCESS_CONFIG = INFRA_DIR / "config" / "access.v1.json"
# The analytics tables a jurisdiction gets copies of (the analysts' views read only these).
TABLES = ("tips", "device_signals", "feedback", "model_changes", "incidents", "incident_members", "alerts", "communes")
_USER = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_FEED = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS [\w.]+(?: ON CLUSTER \w+)? TO (?P<table>[\w.]+) AS\s+"
                   r"(?P<select>SELECT\b.*\bWHERE [^;]*)$", re.S)


@dataclass(frozen=True)
class AccessUser:
    name: str
    province: int | None = None
    commune: int | None = None

    @property
    def everything(self) -> bool:
        return self.province is None and self.commune is None

    @property
    def jurisdiction(self) -> str:
        """`p96`, `c31867`, or `all`."""
        return f"c{self.commune}" if self.commune is not None else f"p{self.province}" if self.province else "all"

    def communes(self) -> list[int]:
        if self.commune is not None:
            return [self.commune]
        return [c.code for c in communes_of_province(self.province)] if self.province is not None else []


@dataclass(frozen=True)
class AccessConfig:
    version: str
    users: list[AccessUser]

    @classmethod
    def load(cls, path: Path) -> "AccessConfig":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"access config {path} not found") from None
        except ValueError as exc:
            raise ConfigError(f"access config {path} is not JSON ({exc}); fix it") from None
        users = []
        for entry in raw.get("users", []):
            name, where = entry.get("name", ""), entry.get("jurisdiction") or {}
            if not _USER.match(name) or name in ("default", "analyst", "grafana"):
                raise ConfigError(f"access config {path}: user name {name!r}: use 2-41 lower-case letters, digits "
                                  "and underscores, not a built-in user")
            user = AccessUser(name, where.get("province"), where.get("commune"))
            if user.province is not None and user.province not in provinces():
                raise ConfigError(f"access config {path}: {name}: province {user.province} is not a 2025 province code")
            if user.commune is not None and commune_of(user.commune) is None:
                raise ConfigError(f"access config {path}: {name}: commune {user.commune} is not a 2025 commune code")
            users.append(user)
        if len({u.name for u in users}) != len(users):
            raise ConfigError(f"access config {path}: a user name appears twice")
        return cls(raw["version"], users)


def jurisdiction_database(settings: Settings, user: AccessUser) -> str:
    return settings.clickhouse_database if user.everything else f"{settings.clickhouse_database}_{user.jurisdiction}"


def typed_feeds(database: str, cluster: str | None = None) -> dict[str, str]:
    """Typed table -> the SELECT (ending in its WHERE clause) that the migrations feed it with from
    `events` (on a `cluster`, each node's own `events_local`)."""
    views = cluster_materialized_views(database, cluster) if cluster else materialized_views(database)
    feeds = {}
    for statement in views.values():
        match = _FEED.match(statement)
        if match:
            feeds[match["table"].rsplit(".", 1)[-1].removesuffix(LOCAL_SUFFIX)] = match["select"]
    return feeds


def copy_table(client: Any, main: str, database: str, table: str, cluster: str | None) -> tuple[list[str], str, str]:
    """(statements creating the jurisdiction's copy of `table`, the table its feed writes, the one it reads).

    On a cluster the copy is laid out as the original, on every node: a sharded table's copy is a
    replicated `_local` table under a Distributed one sharded alike (so a node's feed, which sees
    only the inserts made on that node, writes its own shard's rows), `communes` is replicated whole.
    Each copy gets a replication path of its own."""
    if not cluster:
        return [f"CREATE TABLE {database}.{table} AS {main}.{table}"], f"{database}.{table}", f"{main}.{table}"
    local = bool(client.execute(f"EXISTS TABLE {main}.{table}{LOCAL_SUFFIX}")[0][0])
    name = table + (LOCAL_SUFFIX if local else "")
    engine = client.execute("SELECT engine_full FROM system.tables WHERE database = %(db)s AND name = %(name)s",
                            {"db": main, "name": name})[0][0]
    path, own_path = f"/{main}.{table}'", f"/{database}.{table}'"
    if path not in engine:
        raise ConfigError(f"{main}.{name} is not a replicated table of the cluster form (engine {engine}); "
                          f"run `binhyen migrate --cluster {cluster}` on a new database")
    statements = [f"CREATE TABLE {database}.{name} ON CLUSTER {cluster} AS {main}.{name} "
                  f"ENGINE = {engine.replace(path, own_path)}"]
    if local:
        statements.append(distributed_table(f"{database}.{table}", cluster))
    return statements, f"{database}.{name}", f"{main}.{name}"


def build_jurisdiction(client: Any, settings: Settings, user: AccessUser) -> dict[str, int]:
    """(Re)build the jurisdiction's database: copies, feeds, backfill, views. Rows copied per table.
    `client` is the writer's, on the main database (on a cluster: inserts into Distributed tables synchronous)."""
    main, private = settings.clickhouse_database, private_database(settings.clickhouse_database)
    cluster = settings.clickhouse_cluster or None
    on = f" ON CLUSTER {cluster}" if cluster else ""
    database = jurisdiction_database(settings, user)
    where = f"commune_code IN ({', '.join(map(str, user.communes()))})"
    client.execute(f"CREATE DATABASE IF NOT EXISTS {database}{on}")
    copied = {}
    typed = typed_feeds(main, cluster)
    for table in TABLES:
        feed = f"{private}.feed_{user.jurisdiction}_{table}"
        client.execute(f"DROP TABLE IF EXISTS {feed}{on}")
        statements, target, source = copy_table(client, main, database, table, cluster)
        for name in {f"{database}.{table}", target}:
            client.execute(f"DROP TABLE IF EXISTS {name}{on}")
        for statement in statements:
            client.execute(statement)
        # 18.16 does not cascade materialized views: the typed tables' own feed from `events`
        # does not trigger a view on them, so their copies are fed from `events` the same way.
        select = typed[table] if table in typed else f"SELECT * FROM {source} WHERE 1"
        client.execute(f"CREATE MATERIALIZED VIEW {feed}{on} TO {target} AS {select} AND {where}")
        client.execute(f"INSERT INTO {database}.{table} SELECT * FROM {main}.{table} WHERE {where}")
        copied[table] = client.execute(f"SELECT count() FROM {database}.{table}")[0][0]
    if cluster:  # every node gets the views, their tables named in full
        layout = Layout(database, cluster, sharded={f"{database}.{t}" for t in TABLES if t not in EVERYWHERE},
                        everywhere={f"{database}.{t}" for t in TABLES if t in EVERYWHERE})
        views = {view: compile_statement(statement, layout)[0] for view, statement in analysts_views(database).items()}
    else:
        client = connect(settings, database)  # the views' unqualified tables are this database's copies
        views = analysts_views(database)
    for view, statement in views.items():
        client.execute(f"DROP TABLE IF EXISTS {database}.{view}{on}")
        client.execute(statement)
    return copied


def users_xml(settings: Settings, config: AccessConfig, passwords: dict[str, str]) -> str:
    """The server's users for the config: read-only, loopback, their jurisdiction's database only."""
    users = "".join(
        f"    <{u.name}>\n"
        f"      <password_sha256_hex>{hashlib.sha256(passwords[u.name].encode()).hexdigest()}</password_sha256_hex>\n"
        f"      <networks><ip>127.0.0.1</ip></networks>\n      <profile>readonly</profile>\n"
        f"      <quota>default</quota>\n"
        f"      <allow_databases><database>{jurisdiction_database(settings, u)}</database></allow_databases>\n"
        f"    </{u.name}>\n" for u in config.users)
    return (f"<!-- Generated by `binhyen access apply` from access config {config.version}; do not edit. -->\n"
            f"<yandex>\n  <users>\n{users}  </users>\n</yandex>\n")


def password_of(settings: Settings, name: str) -> str:
    """The user's password from its file in the state folder (created on first apply, mode 0600)."""
    path = settings.state_dir / "access" / f"{name}.password"
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(16))
    return path.read_text().strip()


def apply(settings: Settings, config: AccessConfig, report: Any = print, timeout: float = 30) -> dict[str, str]:
    """Build every jurisdiction's database and the users, on every node of the local stack;
    returns user -> database."""
    # A copy's backfill goes through Distributed tables on a cluster: synchronous, so it is counted whole.
    client = connect(settings, settings.clickhouse_database,
                     **({"insert_distributed_sync": 1} if settings.clickhouse_cluster else {}))
    built: dict[str, dict[str, int]] = {}
    for user in config.users:
        if not user.everything and user.jurisdiction not in built:
            built[user.jurisdiction] = build_jurisdiction(client, settings, user)
            report(f"{jurisdiction_database(settings, user):<24} {sum(built[user.jurisdiction].values()):,} rows "
                   f"copied ({', '.join(f'{t} {n:,}' for t, n in built[user.jurisdiction].items() if n)})")
    passwords = {u.name: password_of(settings, u.name) for u in config.users}
    nodes = clickhouse_nodes(settings)
    for node in nodes:
        path = node.directory / "config.d" / "access.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(users_xml(settings, config, passwords), encoding="utf-8")
    deadline = time.monotonic() + timeout
    for user in config.users:  # each server reads its users again within seconds
        for node in nodes:
            while True:
                try:
                    connect(replace(settings, clickhouse_port=node.tcp_port), jurisdiction_database(settings, user),
                            user=user.name, password=passwords[user.name]).execute("SELECT 1")
                    break
                except Exception:  # not loaded yet
                    if time.monotonic() > deadline:
                        raise ConfigError(f"ClickHouse did not take user {user.name} within {timeout:.0f}s; "
                                          f"see {settings.state_dir}/{node.name}.log") from None
                    time.sleep(0.5)
        report(f"user {user.name:<20} {user.jurisdiction:<8} database {jurisdiction_database(settings, user)}, "
               f"password in {settings.state_dir}/access/{user.name}.password")
    return {u.name: jurisdiction_database(settings, u) for u in config.users}


def production_sql(config: AccessConfig, database: str = "binhyen", cluster: str | None = None) -> str:
    """The same jurisdictions as row policies for a current ClickHouse (production): each user
    reads the analysts' database, and every analytics table only its communes' rows.

    On a `cluster` (the migrations' cluster form) everything is made ON CLUSTER and the policies
    sit on the tables that hold rows — a sharded table's `_local` one on every node: ClickHouse
    applies a row policy where a table is read locally, and a shard reading for a Distributed
    query applies the initial user's policies."""
    on = f" ON CLUSTER {cluster}" if cluster else ""
    names = ", ".join(u.name for u in config.users)
    lines = [f"-- Generated by `binhyen access sql{' --cluster ' + cluster if cluster else ''}` from access config "
             f"{config.version}; do not edit.",
             "-- Each user is created locked (a digest nobody has a password for): set its password with",
             f"-- ALTER USER name{on} IDENTIFIED WITH sha256_hash BY '<sha256 of the password>'."]
    if cluster:
        lines.append(f"-- Give the cluster {cluster} an interserver <secret> in remote_servers, so shards run a "
                     "Distributed query as its initial user; keep serialize_query_plan off (ClickHouse issue 112891).")
    for user in config.users:
        lines.append(f"CREATE USER IF NOT EXISTS {user.name}{on} IDENTIFIED WITH sha256_hash BY '{'0' * 64}';")
        lines.append(f"GRANT{on} SELECT ON {database}.* TO {user.name};")
    for table in TABLES:
        name = f"{database}.{table}{LOCAL_SUFFIX if cluster and table not in EVERYWHERE else ''}"
        # Once a table has a row policy, a user without one sees nothing: everybody else keeps every row.
        lines.append(f"CREATE ROW POLICY OR REPLACE everyone_else{on} ON {name} FOR SELECT USING 1 "
                     f"TO ALL EXCEPT {names};")
        for user in config.users:
            using = "1" if user.everything else f"commune_code IN ({', '.join(map(str, user.communes()))})"
            lines.append(f"CREATE ROW POLICY OR REPLACE {user.name}{on} ON {name} "
                         f"FOR SELECT USING {using} TO {user.name};")
    return "\n".join(lines) + "\n"


GRAFANA_DATASOURCES = INFRA_DIR / "grafana" / "provisioning" / "datasources" / "jurisdictions.yaml"


def grafana_datasources(config: AccessConfig) -> str:
    """One Grafana ClickHouse datasource per access user (production: the row policies of
    `production_sql` restrict each to its jurisdiction); a team's dashboards use its own."""
    lines = [f"# Generated by `binhyen access grafana` from access config {config.version}; do not edit.",
             "# One ClickHouse datasource per jurisdiction's user (row policies: infra via `binhyen access sql`).",
             "apiVersion: 1", "datasources:"]
    for user in config.users:
        lines += [f"  - name: ClickHouse ({user.name}, {user.jurisdiction})",
                  f"    uid: binhyen-clickhouse-{user.name.replace('_', '-')}",
                  "    type: grafana-clickhouse-datasource",
                  "    jsonData:",
                  "      host: ${BINHYEN_CLICKHOUSE_HOST}",
                  "      port: 9000",
                  "      protocol: native",
                  f"      username: {user.name}",
                  "      defaultDatabase: binhyen",
                  "    secureJsonData:",
                  f"      password: ${{BINHYEN_ACCESS_PASSWORD_{user.name.upper()}}}"]
    return "\n".join(lines) + "\n"
