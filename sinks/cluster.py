"""The cluster form of the migrations, compiled from the same files (never a second copy).

Each single-node statement becomes its replicated, sharded equivalent, `ON CLUSTER`:

- a table with a `commune_code` column is *sharded*: `<name>_local`, a Replicated…MergeTree
  whose ZooKeeper path carries the `{shard}` macro, and `<name>`, a Distributed table over it
  sharded by a hash of the commune code — one commune's rows live together, and writers and readers keep
  using `<name>`;
- the reference and bookkeeping tables (communes, legacy codes, processor versions, worker
  heartbeats, schema_migrations) are *everywhere*: one replicated table whose path has no
  shard, so every node holds all of it and joins on it stay local;
- a materialized view reads and writes the local tables of its node (its source and target
  are sharded alike, so a commune's typed rows land on the shard of its events);
- views, drops, added or dropped columns and renames follow the tables they name (a
  Distributed table is made again over its altered local one: ClickHouse refuses to ALTER it ON
  CLUSTER when the shards replicate; it holds no rows, only inserts not yet sent — migrate with
  writers stopped). A column of an everywhere table is added on one node, not ON CLUSTER: the
  table's replication makes the change on every node, and ON CLUSTER each node would make it
  again ("column with this name already exists", whichever comes second).

The compiler walks every migration in order (it must know what each name is), and the
caller applies the statements of the pending ones. Works on ClickHouse 18.16 and current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EVERYWHERE = frozenset({"communes", "legacy_communes", "schema_migrations", "processor_versions",
                        "worker_heartbeats"})
SHARDING_KEY = "cityHash64(commune_code)"  # spread: codes step in 3s, so commune_code % 3 would skew
LOCAL_SUFFIX = "_local"

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>[\w.]+)\s*(?P<columns>\(.*\))\s*"
    r"ENGINE = (?P<engine>\w*MergeTree)\((?P<args>[^)]*)\)(?P<rest>.*)$", re.DOTALL)
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+) TO (?P<target>[\w.]+) AS(?P<body>.*)$", re.DOTALL)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (?P<name>\w+) AS(?P<body>.*)$", re.DOTALL)
_CREATE_DATABASE = re.compile(r"^CREATE DATABASE IF NOT EXISTS (?P<name>\w+)$")
_DROP = re.compile(r"^DROP TABLE IF EXISTS (?P<name>[\w.]+)$")
_ALTER = re.compile(r"^ALTER TABLE (?P<name>[\w.]+) (?P<change>(?:ADD|DROP) COLUMN .*)$", re.DOTALL)
_RENAME = re.compile(r"^RENAME TABLE (?P<source>[\w.]+) TO (?P<target>[\w.]+)$")
_FROM = re.compile(r"\bFROM (?P<name>[\w.]+)")
_SOURCE = re.compile(r"\b(?P<keyword>FROM|JOIN) (?P<name>[A-Za-z_][\w.]*)")


class ClusterDDLError(ValueError):
    """A migration statement the compiler has no cluster form for; name it and add one."""


@dataclass
class Layout:
    """What the compiler knows of each qualified table so far: sharded, or everywhere."""

    database: str
    cluster: str
    sharded: set[str] = field(default_factory=set)
    everywhere: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)

    def qualified(self, name: str) -> str:
        return name if "." in name else f"{self.database}.{name}"

    def local(self, qualified: str) -> str:
        return qualified + LOCAL_SUFFIX


def replicated_engine(engine: str, args: str, zookeeper_path: str) -> str:
    """`ReplacingMergeTree(version)` -> `ReplicatedReplacingMergeTree('path', '{replica}', version)`."""
    head = f"'{zookeeper_path}', '{{replica}}'"
    return f"Replicated{engine}({head}{', ' + args.strip() if args.strip() else ''})"


def compile_statement(statement: str, layout: Layout) -> list[str]:
    """The cluster statements for one single-node statement (updating `layout`)."""
    on = f"ON CLUSTER {layout.cluster}"
    if match := _CREATE_DATABASE.match(statement):
        return [f"CREATE DATABASE IF NOT EXISTS {match['name']} {on}"]
    if match := _CREATE_TABLE.match(statement):
        name = layout.qualified(match["name"])
        columns, engine, args, rest = match["columns"], match["engine"], match["args"], match["rest"]
        short = name.split(".", 1)[1]
        if short in EVERYWHERE or not re.search(r"^\s*commune_code\s", columns, re.MULTILINE):
            layout.everywhere.add(name)
            path = f"/clickhouse/tables/all/{name}"
            return [f"CREATE TABLE IF NOT EXISTS {name} {on}\n{columns}\n"
                    f"ENGINE = {replicated_engine(engine, args, path)}{rest}"]
        layout.sharded.add(name)
        local = layout.local(name)
        path = "/clickhouse/tables/{shard}/" + name
        return [f"CREATE TABLE IF NOT EXISTS {local} {on}\n{columns}\nENGINE = {replicated_engine(engine, args, path)}"
                f"{rest}", distributed_table(name, layout.cluster)]
    if match := _CREATE_MV.match(statement):
        target = layout.qualified(match["target"])
        body = _FROM.sub(lambda m: f"FROM {_local_if_sharded(layout.qualified(m['name']), layout)}", match["body"])
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {layout.qualified(match['name'])} {on} "
                f"TO {_local_if_sharded(target, layout)} AS{body}"]
    if match := _CREATE_VIEW.match(statement):
        name = layout.qualified(match["name"])
        layout.views.add(name)
        # Each node runs the DDL in its default database: the body names its tables in full.
        body = _SOURCE.sub(lambda m: f"{m['keyword']} {_known(layout.qualified(m['name']), layout) or m['name']}",
                           match["body"])
        return [f"CREATE VIEW IF NOT EXISTS {name} {on} AS{body}"]
    if match := _DROP.match(statement):
        name = layout.qualified(match["name"])
        out = [f"DROP TABLE IF EXISTS {name} {on}"]
        if name in layout.sharded:
            out.append(f"DROP TABLE IF EXISTS {layout.local(name)} {on}")
            layout.sharded.discard(name)
        layout.everywhere.discard(name)
        layout.views.discard(name)
        return out
    if match := _ALTER.match(statement):
        name = layout.qualified(match["name"])
        if name in layout.everywhere:  # one replicated table on every node: its replication carries the change
            return [f"ALTER TABLE {name} {match['change']}"]  # ON CLUSTER, each node would make it again
        out = [f"ALTER TABLE {_local_if_sharded(name, layout)} {on} {match['change']}"]
        if name in layout.sharded:  # ClickHouse alters no Distributed table ON CLUSTER: it is made again over the local
            out += [f"DROP TABLE IF EXISTS {name} {on}", distributed_table(name, layout.cluster)]
        return out
    if match := _RENAME.match(statement):
        source, target = layout.qualified(match["source"]), layout.qualified(match["target"])
        if source not in layout.sharded:
            layout.everywhere.discard(source)
            layout.everywhere.add(target)
            return [f"RENAME TABLE {source} TO {target} {on}"]
        layout.sharded.discard(source)
        layout.sharded.add(target)
        return [f"RENAME TABLE {layout.local(source)} TO {layout.local(target)} {on}",
                f"DROP TABLE IF EXISTS {source} {on}", distributed_table(target, layout.cluster)]
    raise ClusterDDLError(f"no cluster form for the migration statement {statement.splitlines()[0]!r}: "
                          "teach sinks/cluster.py this kind of statement")


def distributed_table(name: str, cluster: str) -> str:
    """The Distributed table `name` (qualified) over `name`_local, sharded by commune."""
    database, short = name.split(".", 1)
    return (f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {name}{LOCAL_SUFFIX} "
            f"ENGINE = Distributed({cluster}, {database}, {short}{LOCAL_SUFFIX}, {SHARDING_KEY})")


def _known(name: str, layout: Layout) -> str | None:
    return name if name in layout.sharded | layout.everywhere | layout.views else None


def _local_if_sharded(name: str, layout: Layout) -> str:
    return layout.local(name) if name in layout.sharded else name


def schema_migrations_ddl(database: str, cluster: str) -> str:
    """The record of applied migrations, once for the whole cluster (replicated everywhere)."""
    name = f"{database}.schema_migrations"
    return (f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} "
            "(version UInt32, name String, checksum String, applied_at DateTime) "
            f"ENGINE = {replicated_engine('MergeTree', '', f'/clickhouse/tables/all/{name}')} ORDER BY version")
