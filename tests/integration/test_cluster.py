"""The analytics on a real ClickHouse cluster (`binhyen up --cluster`): ZooKeeper and two
shards of one replica each, on loopback, with a broker and a worker of its own. The
migrations' cluster form is applied on both nodes and recorded once; the worker writes
through the Distributed tables; each shard holds exactly its communes; a node stopped
mid-stream gets every row it missed once it is back."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from sinks.clickhouse import connect
from streams.config import Settings
from streams.ops import stack
from streams.ops.stack import WorkerProcess, free_port_block
from streams.sim.simulator import VN, SimConfig, simulate
from tests.conftest import jsonl, run_cli, running_worker, stack_environment, wait_for

pytestmark = pytest.mark.integration
DAY = SimConfig(96, days=1, seed=61, scale=0.5, start=datetime(2024, 4, 2, tzinfo=VN))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state = tmp_path_factory.mktemp("cluster") / "state"
    with stack_environment(state, cluster=True):
        started = run_cli("up", "--cluster", timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        yield Settings.from_env()


@pytest.fixture(scope="module")
def cluster_worker(cluster: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    import os

    with running_worker(tmp_path_factory.mktemp("cluster-worker") / "worker.log",
                        env={**os.environ, "BINHYEN_METRICS_PORT": str(free_port_block(1))}) as running:
        yield running


def node(settings: Settings, number: int) -> Any:
    """A client of one node (native port), as the writer."""
    from dataclasses import replace

    port = next(n.tcp_port for n in stack.clickhouse_nodes(settings) if n.number == number)
    return connect(replace(settings, clickhouse_port=port), settings.clickhouse_database)


def day_events(seed_offset: int = 0) -> list[dict[str, Any]]:
    config = SimConfig(DAY.province_code, days=1, seed=DAY.seed + seed_offset, scale=DAY.scale,
                       start=DAY.start.replace(day=DAY.start.day + seed_offset))
    return [e for e in simulate(config).events if e["type"] in ("tip", "feedback", "model_change")
            or (e["type"] == "device_signal" and e["signal"] in ("panic_pressed", "gate_forced", "motion"))]


def verify(events: list[dict[str, Any]], tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(jsonl(events), encoding="utf-8")
    done = run_cli("verify", str(path), "--wait", "180", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_migrations_cluster_form_is_on_both_nodes_and_recorded_once(cluster: Settings) -> None:
    one, two = node(cluster, 1), node(cluster, 2)
    files = sorted(p.name.removesuffix(".sql") for p in (Path(__file__).parents[2] / "infra" / "clickhouse" /
                                                         "migrations").glob("*.sql"))
    for client in (one, two):
        engines = dict(client.execute(
            "SELECT name, engine FROM system.tables WHERE database IN ('binhyen', 'binhyen_private')"))
        assert engines["incidents"] == "Distributed" and engines["incidents_local"] == "ReplicatedReplacingMergeTree"
        assert engines["events"] == "Distributed" and engines["events_local"] == "ReplicatedReplacingMergeTree"
        assert engines["communes"] == "ReplicatedReplacingMergeTree" and engines["tips_from_events"] == "MaterializedView"
        assert engines["tip_verdicts"] == "View"
        assert [f"{v:04d}_{n}" for v, n in client.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version")] == files  # one record, on every node
        assert client.execute("SELECT count() FROM communes")[0][0] == 3321
    again = run_cli("migrate")
    assert again.returncode == 0 and again.stdout.strip() == "migrations up to date"


def test_the_worker_writes_through_the_distributed_tables_each_commune_on_its_shard(
        cluster: Settings, cluster_worker: WorkerProcess, tmp_path: Path) -> None:
    events = day_events()
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    assert "ALL-RECORDS-DELIVERED" in verify(events, tmp_path, "day")
    tips = {e["event_id"]: e["commune_code"] for e in events if e["type"] == "tip"}
    held: dict[str, int] = {}
    communes: dict[int, set[int]] = {}
    for number in (1, 2):
        rows = node(cluster, number).execute("SELECT event_id, commune_code FROM tips_local FINAL")
        assert not set(held) & {event_id for event_id, _ in rows}  # no tip on both shards
        held.update({event_id: number for event_id, _ in rows})
        communes[number] = {commune for _, commune in rows}
        assert communes[number] == on_shard(cluster, set(tips.values()), number)
    assert set(held) == set(tips)  # every tip, each on one shard
    assert communes[1] and communes[2] and not communes[1] & communes[2]  # a commune's rows live together
    incidents = node(cluster, 1).execute("SELECT count(), uniqExact(incident_id) FROM incidents FINAL")[0]
    assert incidents[0] == incidents[1] > 0


def test_a_node_stopped_mid_stream_gets_every_row_it_missed(
        cluster: Settings, cluster_worker: WorkerProcess, tmp_path: Path) -> None:
    events = day_events(seed_offset=1)
    second = next(part for part in stack.parts(cluster) if part.name == "clickhouse-2")
    half = len(events) // 2
    assert run_cli("publish", "-q", "-", input=jsonl(events[:half]), timeout=300).returncode == 0
    assert stack.stop(second).startswith("stopped")
    publisher = threading.Thread(target=lambda: run_cli("publish", "-q", "-", input=jsonl(events[half:]),
                                                        timeout=300))
    publisher.start()
    publisher.join()
    ids = tuple(e["event_id"] for e in events)
    wait_for(lambda: node(cluster, 1).execute(
        "SELECT count() FROM binhyen_private.events_local WHERE event_id IN %(ids)s", {"ids": ids})[0][0] > 0,
        120, "the worker writing the first shard's rows while the second node is down")
    assert cluster_worker.alive()
    assert stack.start(second).startswith("started")
    assert "ALL-RECORDS-DELIVERED" in verify(events, tmp_path, "second-day")
    second_communes = on_shard(cluster, {e["commune_code"] for e in events if e["type"] == "tip"}, 2)
    expected = {e["event_id"] for e in events if e["type"] == "tip" and e["commune_code"] in second_communes}
    on_second = {event_id for (event_id,) in node(cluster, 2).execute(
        "SELECT event_id FROM tips_local WHERE event_id IN %(ids)s", {"ids": tuple(expected)})}
    assert expected and on_second == expected  # the rows for its communes, those written while it was down too


def test_each_jurisdiction_reads_only_its_communes_on_every_node(
        cluster: Settings, cluster_worker: WorkerProcess, tmp_path: Path) -> None:
    """`binhyen access apply` on the cluster: a jurisdiction's copies are sharded like the
    originals, its users are on both nodes, and rows written after apply reach both shards' copies."""
    import json
    from dataclasses import replace

    from clickhouse_driver.errors import ServerException

    from streams.ops.catalog import catalog

    writer = node(cluster, 1)
    tips = dict(writer.execute("SELECT commune_code, count() FROM tips FINAL WHERE province_code = 96 "
                               "GROUP BY commune_code ORDER BY count() DESC, commune_code"))
    commune = next(iter(tips))
    config = tmp_path / "access.json"
    config.write_text(json.dumps({"version": "access-cluster-test", "users": [
        {"name": "k_xa", "jurisdiction": {"commune": commune}}, {"name": "k_tinh", "jurisdiction": {"province": 96}}]}))
    done = run_cli("access", "apply", "--config", str(config), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    def reader(name: str, number: int) -> Any:
        port = next(n.tcp_port for n in stack.clickhouse_nodes(cluster) if n.number == number)
        password = (cluster.state_dir / "access" / f"{name}.password").read_text().strip()
        database = f"binhyen_c{commune}" if name == "k_xa" else "binhyen_p96"
        return connect(replace(cluster, clickhouse_port=port), database, user=name, password=password)

    for number in (1, 2):
        province, post = reader("k_tinh", number), reader("k_xa", number)
        assert dict(province.execute("SELECT commune_code, count() FROM tips FINAL GROUP BY commune_code")) == tips
        assert post.execute("SELECT commune_code, count() FROM tips FINAL GROUP BY commune_code") == [
            (commune, tips[commune])]
        held_here = {c for (c,) in province.execute("SELECT DISTINCT commune_code FROM tips_local")}
        assert held_here == on_shard(cluster, set(tips), number)  # the copy is sharded as the original
        for name, entry in catalog().items():
            answer, types = post.execute(entry.sql, with_column_types=True)
            columns = [column for column, _ in types]
            if "commune_code" in columns:
                assert {row[columns.index("commune_code")] for row in answer} <= {commune}, name
        for forbidden in ("SELECT count() FROM binhyen.tips", "SELECT count() FROM binhyen.tips_local",
                          "SELECT count() FROM binhyen_private.events_local", "SELECT count() FROM binhyen_p96.tips"):
            with pytest.raises(ServerException, match="Access denied"):
                post.execute(forbidden)
    later = [{"type": "tip", "event_id": f"cluster-access-{code}", "occurred_at": "2024-04-02T11:00:00+07:00",
              "commune_code": code, "channel": "hotline", "text": "Thanh niên tụ tập đua xe trên đường tỉnh"}
             for code in (min(on_shard(cluster, set(tips), 1)), min(on_shard(cluster, set(tips), 2)), 18199)]
    assert run_cli("publish", "-q", "-", input=jsonl(later)).returncode == 0
    for number in (1, 2):  # each shard's copy gets its commune's new tip; Hà Tĩnh's goes to neither
        wait_for(lambda: reader("k_tinh", number).execute(
            "SELECT event_id FROM tips_local WHERE event_id LIKE 'cluster-access-%'") == [
            (f"cluster-access-{min(on_shard(cluster, set(tips), number))}",)], 60, f"the new tip in shard {number}'s copy")


def on_shard(settings: Settings, communes: set[int], number: int) -> set[int]:
    """The communes Distributed sends to shard `number` of 2: cityHash64(commune_code) % 2 == number - 1."""
    rows = node(settings, 1).execute(
        "SELECT c FROM (SELECT arrayJoin(CAST(%(codes)s AS Array(UInt32))) AS c) WHERE modulo(cityHash64(c), 2) = %(r)s",
        {"codes": sorted(communes), "r": number - 1})
    return {c for (c,) in rows}


def simulated_rows() -> dict[str, list[tuple[Any, ...]]]:
    """The rows a worker writes for two simulated days (heartbeats thinned), computed once."""
    from processors.alerts import AlertConfig
    from processors.credibility import CredibilityConfig
    from processors.pipeline import EventProcessor, ProcessorState
    from processors.pseudonym import Pseudonymiser
    from processors.validation import parse_contract
    from schemas import CODEC
    from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
    from streams.runtime.batch import BatchStep, Message
    from streams.runtime.state import EventCursor
    from streams.topics import TOPIC_OF_TYPE

    events = simulate(SimConfig(42, days=2, seed=62, scale=0.4, start=datetime(2025, 9, 1, tzinfo=VN))).events
    events = [e for i, e in enumerate(events) if e.get("signal") != "heartbeat" or i % 25 == 0]
    messages = []
    for offset, event in enumerate(events):
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        messages.append(Message(TOPIC_OF_TYPE[event_type], 0, offset, CODEC.encode(event_type, record)))
    step = BatchStep(EventProcessor(ProcessorState(), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                                    AlertConfig.load(DEFAULT_ALERT_CONFIG)), EventCursor())
    return step.run(messages, int(datetime(2025, 9, 3, tzinfo=VN).timestamp() * 1000)).rows


def test_every_catalog_query_answers_on_the_cluster_as_on_one_node(cluster: Settings) -> None:
    """The same rows in a single-node database and in a cluster database (both on 18.16)."""
    from dataclasses import replace

    from sinks.clickhouse import (ALERT_COLUMNS, EVENT_COLUMNS, INCIDENT_COLUMNS, MEMBER_COLUMNS, TIP_SCORE_COLUMNS,
                                  TableSink, migrate, private_database)
    from streams.ops.catalog import catalog

    rows = simulated_rows()
    columns = {"events": EVENT_COLUMNS, "incidents": INCIDENT_COLUMNS, "incident_members": MEMBER_COLUMNS,
               "alerts": ALERT_COLUMNS, "tip_scores": TIP_SCORE_COLUMNS}
    assert all(rows.get(table) for table in columns)
    answers = {}
    for database, settings in (("catalog_single", replace(cluster, clickhouse_cluster="")),
                               ("catalog_cluster", cluster)):
        migrate(settings, database=database)
        client = connect(settings, database)
        for table, table_columns in columns.items():
            qualified = f"{private_database(database)}.{table}" if table in ("events", "tip_scores") else table
            sink = TableSink(client, qualified, table_columns)
            for row in rows[table]:
                sink.add(row)
            assert sink.flush() == len(rows[table])
        engine = client.execute(f"SELECT engine FROM system.tables WHERE database = '{database}' AND name = 'tips'")
        assert engine == [("Distributed" if settings.clickhouse_cluster else "ReplacingMergeTree",)]
        if settings.clickhouse_cluster:  # Distributed inserts are sent to the shards in the background
            wait_for(lambda: client.execute("SELECT count() FROM tips")[0][0] == sum(
                1 for row in rows["events"] if row[1] == "tip"), 60, "the cluster's tips from the events")
        answers[database] = {name: sorted((_comparable(row) for row in client.execute(query.sql)), key=repr)
                             for name, query in catalog().items()}
    assert answers["catalog_single"].keys() == answers["catalog_cluster"].keys() and len(answers["catalog_single"]) == 9
    for name, single in answers["catalog_single"].items():
        assert single, f"{name}: no rows on one node: the comparison would prove nothing"
        assert answers["catalog_cluster"][name] == single, name


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """NaN (a percentile of nothing) equals itself here."""
    return tuple("NaN" if isinstance(value, float) and value != value else value for value in row)


def cluster_projections(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows through the Distributed tables (FINAL, sorted), without `ingested_at`."""
    from sinks.clickhouse import PROJECTION_TABLES, projection_table

    client, out = node(settings, 1), {}
    for role, table in PROJECTION_TABLES:
        qualified = projection_table(settings.clickhouse_database, role, table)
        database = qualified.split(".")[0]
        columns = [name for (name,) in client.execute(
            "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s AND name != 'ingested_at'",
            {"db": database, "t": table})]
        out[table] = sorted(client.execute(f"SELECT {', '.join(columns)} FROM {qualified} FINAL"), key=repr)
    return out


def test_replay_rebuilds_the_projections_on_the_cluster(cluster: Settings, cluster_worker: WorkerProcess) -> None:
    from streams.topics import COMMUNE_CONTROL
    from tests.conftest import settled

    settled(cluster, cluster.worker_group, COMMUNE_CONTROL)
    live = cluster_projections(cluster)
    assert live["events"] and live["tips"] and live["incidents"]
    done = run_cli("replay", "--quiet", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cluster_projections(cluster) == live
    for number in (1, 2):
        client = node(cluster, number)
        assert not {name for (name,) in client.execute("SHOW DATABASES")} & {"binhyen_replay", "binhyen_replay_private"}
        engines = dict(client.execute("SELECT name, engine FROM system.tables WHERE database = 'binhyen'"))
        assert (engines["tips"], engines["tips_local"]) == ("Distributed", "ReplicatedReplacingMergeTree")
    tip = {"type": "tip", "event_id": "cluster-after-replay", "occurred_at": "2024-04-02T09:00:00+07:00",
           "commune_code": 31867, "channel": "hotline", "text": "Có người lạ đi xe máy không biển số quanh chợ"}
    assert run_cli("publish", "-q", "-", input=jsonl([tip])).returncode == 0
    wait_for(lambda: node(cluster, 1).execute("SELECT count() FROM tips WHERE event_id = 'cluster-after-replay'")
             [0][0] == 1, 60, "a new tip in the typed table through the re-created views")


def test_reprocessing_promotes_a_new_version_on_the_cluster(
        cluster: Settings, cluster_worker: WorkerProcess, tmp_path: Path) -> None:
    """Last in the module: the live worker moves to the new version. The swap renames the
    replicated local tables ON CLUSTER under the Distributed ones, on both nodes."""
    import json

    from streams.config import DEFAULT_CREDIBILITY_CONFIG

    config = tmp_path / "credibility.json"
    shipped = json.loads(DEFAULT_CREDIBILITY_CONFIG.read_text(encoding="utf-8"))
    config.write_text(json.dumps({**shipped, "version": "cred-9", "calibration_intercept": -2.6}), encoding="utf-8")
    before = node(cluster, 1).execute("SELECT count() FROM incidents FINAL")[0][0]
    done = run_cli("reprocess", "--credibility", str(config), "--promote", "--quiet", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "promoted cred-9-alerts-3-meaning-2 (was the configs from files)" in done.stdout
    for number in (1, 2):
        client = node(cluster, number)
        assert client.execute("SELECT groupUniqArray(scorer_version) FROM incidents_local")[0][0] in ([], ["cred-9"])
        assert client.execute("SELECT engine FROM system.tables WHERE database = 'binhyen' AND name = 'incidents'"
                              )[0][0] == "Distributed"
    assert node(cluster, 1).execute("SELECT groupUniqArray(scorer_version), count() FROM incidents FINAL")[0] == (
        ["cred-9"], before)
    assert node(cluster, 1).execute(
        "SELECT groupUniqArray(scorer_version) FROM binhyen_cred_9_alerts_3_meaning_2.incidents FINAL")[0][0] == ["cred-2"]
    wait_for(lambda: "processor version cred-9-alerts-3-meaning-2 (live)" in cluster_worker.log_since(0), 120,
             "the live worker under cred-9")
