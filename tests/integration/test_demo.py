"""`binhyen demo`, shortened, from nothing running to its summary (what CI can afford)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli, stack_environment

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
        assert "11 invalid lines rejected by the publisher" in out
        assert "Dead-letter topic binhyen.dead-letter.v1 (last 10 of 1)" in out
        assert "not Avro single-object encoded" in out
        assert (tmp_path / "simulation-seed4.truth.jsonl").exists()
        assert not (tmp_path / "demo-worker.log").read_text().count("Traceback")
        # The demo leaves the stack up for queries; stack_environment's `down` stops it.
        assert run_cli("status").returncode == 0
