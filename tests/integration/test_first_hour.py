"""README's "The first hour": every walkthrough block run as it stands, after a (short) demo.

The blocks name the default local ports; they run here on the test stack's own ports, the only
change made to them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, run_cli, stack_environment

pytestmark = pytest.mark.integration

BLOCK = re.compile(r"<!-- first-hour: (?P<who>[\w-]+) -->\n```sh\n(?P<body>.*?)```", re.S)
WALKTHROUGHS = {m["who"]: m["body"] for m in BLOCK.finditer((REPO / "README.md").read_text(encoding="utf-8"))}
DEFAULT_PORTS = {"19092": "BINHYEN_KAFKA_PORT", "19000": "BINHYEN_CLICKHOUSE_PORT",
                 "18123": "BINHYEN_CLICKHOUSE_HTTP_PORT", "19090": "BINHYEN_PROMETHEUS_PORT",
                 "18080": "BINHYEN_GATEWAY_PORT"}


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with stack_environment(tmp_path_factory.mktemp("first-hour")) as env:
        demo = run_cli("demo", "--scale", "0.1", "--pace", "0", "--seed", "5", timeout=300)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        yield env


def walk(who: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    body = WALKTHROUGHS[who]
    for default, setting in DEFAULT_PORTS.items():
        body = re.sub(rf"\b{default}\b", env[setting], body)
    result = subprocess.run(["bash", "-eu", "-c", body], cwd=REPO, capture_output=True, text=True, timeout=240,
                            env=os.environ.copy())
    assert result.returncode == 0, (who, result.stdout[-3000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_the_readme_has_the_three_walkthroughs() -> None:
    assert set(WALKTHROUGHS) == {"integrator", "analyst", "on-call"}


def test_an_integrators_first_hour(after_demo: dict[str, str]) -> None:
    out = walk("integrator", after_demo).stdout
    assert out.count('"status": "would_publish"') == 2
    assert out.count('"status": "rejected"') == len((REPO / "tests/data/contracts/invalid.jsonl").read_text().splitlines())
    assert "exit 1: lines rejected, each with its reason" in out
    assert "ALL-RECORDS-DELIVERED: 12 events, each once" in out
    answer = json.loads(out.strip().splitlines()[-1])  # curl's: the gateway's answer
    assert (answer["published"], answer["lines"][0]["event_id"], answer["lines"][0]["topic"]) == (
        1, "hl-2025-000123", "binhyen.tips.v1")


def test_an_analysts_first_hour(after_demo: dict[str, str]) -> None:
    out = walk("analyst", after_demo).stdout
    assert "tips_per_commune  Tips per commune, day and channel" in out
    assert "  commune_name: the commune's name (xã, phường or đặc khu)" in out
    assert "day,commune_code,commune_name,province_name,channel,tips,not_tips\n2025-09-01," in out
    top = [line.split("\t") for line in out.splitlines() if "\t" in line]
    assert len(top) == 5 and all(name.startswith(("Xã ", "Phường ", "Đặc khu ")) and int(tips) >= 1 for name, tips in top)


def test_an_on_call_officers_first_hour(after_demo: dict[str, str]) -> None:
    out = walk("on-call", after_demo).stdout
    assert re.search(r"^worker\s+up pid \d+, group binhyen-worker", out, re.M), out
    assert "ack al-" in out and "acked\tca-xa-phuoc-long-01" in out
    assert '"status":"success"' in out  # Prometheus answered with its alerts
