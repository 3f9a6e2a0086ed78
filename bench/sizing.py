"""Rows and bytes on disk per day, per 1,000 communes, from a simulated province through a worker.

    .venv/bin/python bench/sizing.py [--province 96] [--days 2] [--cluster]

A stack of its own on free loopback ports (with `--cluster`, the local 2-shard cluster):
every simulated event, heartbeats included, is published, one worker writes it, parts are
merged (`OPTIMIZE … FINAL`), and `system.parts` gives each table's active rows and bytes on
disk (on every node). Figures are scaled by 1,000 / the province's communes and by the days.
Memory: the resident size of each ClickHouse and ZooKeeper process at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", type=int, default=96)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()

    from bench.own_stack import use_own_stack
    from bench.throughput import rss_mib
    from streams.ops.stack import free_port_block

    state = use_own_stack("binhyen-sizing-", BINHYEN_CLUSTER_PORT=str(free_port_block(4)))

    from dataclasses import replace

    from processors import geography
    from sinks.clickhouse import connect
    from streams.config import Settings
    from streams.ops import stack
    from streams.sim.simulator import VN, SimConfig, simulate

    settings = Settings.from_env()
    if args.cluster:
        settings = stack.choose_cluster(settings)
    stack.bring_up(settings, lambda line: None)
    events_file = Path(state) / "events.jsonl"
    worker = None
    try:
        simulation = simulate(SimConfig(args.province, days=args.days, seed=5, start=datetime(2025, 9, 1, tzinfo=VN)))
        import json

        events_file.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in simulation.events),
                               encoding="utf-8")
        worker = stack.WorkerProcess(Path(state) / "worker.log")
        worker.start()
        started = time.monotonic()
        import subprocess

        subprocess.run([stack.BINHYEN, "publish", "-q", str(events_file)], check=True, env=os.environ.copy())
        subprocess.run([stack.BINHYEN, "verify", str(events_file), "--wait", "600"], check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL)
        print(f"{len(simulation.events):,} events ({args.days} simulated days of province {args.province}) "
              f"through one worker in {time.monotonic() - started:.0f} s", flush=True)
        totals: dict[str, list[int]] = {}
        for node in stack.clickhouse_nodes(settings):
            client = connect(replace(settings, clickhouse_port=node.tcp_port), settings.clickhouse_database)
            tables = client.execute(
                "SELECT database, table FROM system.parts WHERE active AND database LIKE 'binhyen%' "
                "GROUP BY database, table")
            for database, table in tables:
                engine = client.execute(f"SELECT engine FROM system.tables WHERE database = '{database}' "
                                        f"AND name = '{table}'")[0][0]
                # A table replicated to every node would forward OPTIMIZE to its leader as a user
                # without a password (18.16); it holds reference data, not the figures.
                if "MergeTree" in engine and not (engine.startswith("Replicated") and not table.endswith("_local")):
                    client.execute(f"OPTIMIZE TABLE {database}.{table} FINAL")
            for table, rows, size in client.execute(
                    "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND database LIKE "
                    "'binhyen%' GROUP BY table ORDER BY table"):
                name = table.removesuffix("_local")
                totals.setdefault(name, [0, 0])
                totals[name][0] += rows
                totals[name][1] += size
        communes = len(geography.communes_of_province(args.province))
        per = 1000 / communes / args.days
        print(f"{communes} communes; per 1,000 communes per day:")
        print(f"  {'table':<22}{'rows/day':>14}{'MiB/day on disk':>18}")
        for name, (rows, size) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
            if name in ("communes", "legacy_communes", "schema_migrations"):
                continue
            print(f"  {name:<22}{rows * per:>14,.0f}{size * per / 2**20:>18,.1f}")
        rows_all = sum(r for n, (r, _) in totals.items() if n not in ("communes", "legacy_communes"))
        size_all = sum(s for n, (_, s) in totals.items() if n not in ("communes", "legacy_communes"))
        print(f"  {'all':<22}{rows_all * per:>14,.0f}{size_all * per / 2**20:>18,.1f}")
        for part in stack.parts(settings):
            if part.name.startswith(("clickhouse", "zookeeper")):
                pid = stack.running_pid(part)
                print(f"memory: {part.name} {rss_mib(pid):.0f} MiB resident" if pid else f"memory: {part.name} not running")
    finally:
        if worker is not None and worker.alive():
            worker.stop()
        for part in reversed(stack.parts(settings)):
            stack.stop(part)


if __name__ == "__main__":
    main()
