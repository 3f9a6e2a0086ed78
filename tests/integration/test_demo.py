"""`binhyen demo`, shortened, from nothing running to its summary (what CI can afford)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import connect
from streams.config import Settings
from tests.conftest import run_cli, stack_environment, wait_for

pytestmark = pytest.mark.integration


def test_short_demo_runs_the_whole_path(tmp_path: Path) -> None:
    with stack_environment(tmp_path):
        result = run_cli("demo", "--scale", "0.1", "--pace", "0", "--seed", "4", timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        assert "broker          started" in out and "clickhouse      started" in out
        assert "worker      ready" in out
        simulated = int(re.search(r"Cà Mau, 1 day\(s\) from 2025-09-01: ([\d,]+) events", out)[1].replace(",", ""))
        counts = {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"│ (\w+)\s+│\s+([\d,]+) │\s+\d+ │", out)}
        assert sum(counts[t] for t in ("device_signal", "tip", "feedback", "model_change", "alert_action")
                   if t in counts) == simulated
        assert "through the gateway" in out and "11 invalid lines rejected by it" in out
        assert "Dead-letter topic binhyen.dead-letter.v1 (last 10 of 1)" in out
        assert "not Avro single-object encoded" in out
        assert (tmp_path / "simulation-seed4.truth.jsonl").exists()
        assert not (tmp_path / "demo-worker.log").read_text().count("Traceback")
        # The demo leaves the stack and its worker up: an on-call ack of one of its alerts is processed.
        pid = int((tmp_path / "worker.pid").read_text())

        def worker_status() -> dict[str, Any]:
            status = run_cli("status", "--json")
            assert status.returncode == 0, status.stderr
            [worker] = json.loads(status.stdout)["workers"]
            return worker

        worker = wait_for(lambda: (w := worker_status())["partitions"] and w, 30, "the worker's partitions (metrics)")
        assert worker["pid"] == pid and worker["group"] == "binhyen-worker" and worker["answering"], worker
        assert worker["partitions"]["binhyen.tips.v1"] == list(range(8)), worker  # alone in its group: every commune
        assert "(started by `binhyen demo`; `binhyen down` stops it)" in run_cli("status").stdout
        settings = Settings.from_env()
        client = connect(settings, settings.clickhouse_database)
        [(alert_id,)] = client.execute("SELECT alert_id FROM alert_lifecycle WHERE acked_ms = 0 AND resolved_ms = 0 "
                                       "ORDER BY severity, raised_ms, alert_id LIMIT 1")
        acked = run_cli("alert", "ack", alert_id, "--by", "bo-chi-huy-truc")
        assert acked.returncode == 0, acked.stderr
        wait_for(lambda: client.execute("SELECT by FROM alerts FINAL WHERE alert_id = %(a)s AND state = 'acked'",
                                        {"a": alert_id}) == [("bo-chi-huy-truc",)], 30, f"the ack of {alert_id}")
        down = run_cli("down")
        assert f"worker          stopped (pid {pid})" in down.stdout
        assert not Path(f"/proc/{pid}").exists() and not (tmp_path / "worker.pid").exists()
