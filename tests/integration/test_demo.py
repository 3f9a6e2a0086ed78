"""`binhyen demo`, shortened, from nothing running to its summary (what CI can afford)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import connect
from streams.config import Settings
from tests.builders import device_signal, recent
from tests.conftest import alert_id_of, jsonl, run_cli, stack_environment, wait_for

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
        assert "Pages as the officers on call receive them" in out
        page = re.search(r"^  \d\d/09 \d\d:\d\d → (commune-post|province-duty|command): (.+)\n"
                         r"      \[(P[123])(, chuyển cấp)?\] (.+)\n      mã cảnh báo (al-\S+) — ", out, re.M)
        assert page, out[-4000:]
        route, on_call, severity, _, text, alert_id = page.groups()
        assert "Cà Mau" in on_call or route == "command"  # the registry's staff on the route who cover it
        assert "Cà Mau" in text and alert_id.startswith("al-")  # where it happened, and the id to quote
        assert (tmp_path / "simulation-seed4.truth.jsonl").exists()
        assert not (tmp_path / "demo-worker.log").read_text().count("Traceback")
        # The demo leaves the stack and its worker up: an on-call ack is processed.
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
        # A drill press now (an alert of the simulated day went quiet in event time long ago: too late to ack).
        drill = device_signal(f"drill-{uuid.uuid4().hex[:8]}", recent(0.5), 31867, "bell-drill-1",
                              site_name="Agribank Phước Long (diễn tập)")
        assert run_cli("publish", "-q", "-", input=jsonl([drill])).returncode == 0
        alert_id = wait_for(lambda: alert_id_of(client, drill["event_id"]), 30, "the drill's P1")
        acked = run_cli("alert", "ack", alert_id, "--by", "ca-xa-phuoc-long-01")
        assert acked.returncode == 0, acked.stderr
        wait_for(lambda: client.execute("SELECT by FROM alerts FINAL WHERE alert_id = %(a)s AND state = 'acked'",
                                        {"a": alert_id}) == [("ca-xa-phuoc-long-01",)], 30, f"the ack of {alert_id}")
        down = run_cli("down")
        assert f"worker          stopped (pid {pid})" in down.stdout
        assert not Path(f"/proc/{pid}").exists() and not (tmp_path / "worker.pid").exists()
