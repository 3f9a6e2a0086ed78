"""Simulated populations (streams.sim.simulator.Population): each changes what it says it
changes, and the default is the province the project was built on, event for event."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any

from streams.sim.simulator import POPULATIONS, SimConfig, Simulation, id_prefix, simulate

PROVINCE = 96


@cache
def run(name: str) -> Simulation:
    return simulate(SimConfig(PROVINCE, days=2, seed=5, population=POPULATIONS[name]))


def tips(simulation: Simulation) -> list[dict[str, Any]]:
    return [e for e in simulation.events if e["type"] == "tip"]


def share(counts: Counter[str], key: str) -> float:
    return counts[key] / sum(counts.values())


def test_the_default_population_keeps_the_ids_and_others_name_themselves() -> None:
    assert id_prefix(SimConfig(PROVINCE, seed=5, scale=0.3)) == "sim5-p96-x0.3-20250901-"
    assert id_prefix(SimConfig(PROVINCE, seed=5, scale=0.3, population=POPULATIONS["spam-heavy"])) == \
        "sim5-p96-x0.3-20250901-spam-heavy-"
    assert run("default").events == simulate(SimConfig(PROVINCE, days=2, seed=5)).events


def test_reporter_mix_changes_who_sends_the_tips() -> None:
    def behaviours(name: str) -> Counter[str]:
        return Counter(row["behaviour"] for row in run(name).truth if row["type"] == "tip")

    default = behaviours("default")  # tips, weighted by how often each kind reports: shares move less
    assert share(behaviours("spam-heavy"), "spammer") > 1.5 * share(default, "spammer")
    assert share(behaviours("spam-heavy"), "reliable") < 0.85 * share(default, "reliable")
    assert share(behaviours("few-reliable"), "reliable") < 0.6 * share(default, "reliable")


def test_channel_mix_changes_the_channels() -> None:
    def channels(name: str) -> Counter[str]:
        return Counter(tip["channel"] for tip in tips(run(name)))

    assert share(channels("hotline-province"), "hotline") > 1.5 * share(channels("default"), "hotline")
    assert share(channels("hotline-province"), "zalo") < 0.5 * share(channels("default"), "zalo")


def test_a_rumour_storm_forwards_more_chain_messages() -> None:
    def chains(name: str) -> int:
        return sum(1 for row in run(name).truth if row.get("kind") == "chain")

    assert chains("rumour-storm") > 2.5 * chains("default") > 0


def test_sparse_verdicts_are_fewer_and_later() -> None:
    def verdicts(name: str) -> tuple[float, list[float]]:
        simulation = run(name)
        at = {e["event_id"]: datetime.fromisoformat(e["occurred_at"]) for e in tips(simulation)}
        delays = [(datetime.fromisoformat(e["occurred_at"]) - at[e["tip_event_id"]]).total_seconds() / 3600
                  for e in simulation.events if e["type"] == "feedback"]
        return len(delays) / len(at), delays

    coverage, delays = verdicts("sparse-verdicts")
    default_coverage, default_delays = verdicts("default")
    assert coverage < 0.5 * default_coverage
    assert min(delays) >= 12 and max(default_delays) <= 12


def test_an_unknown_population_is_one_clear_line(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    binhyen = Path(sys.executable).parent / "binhyen"
    result = subprocess.run([binhyen, "simulate", "--province", "96", "--population", "calm", "--output",
                             str(tmp_path / "x.jsonl")], capture_output=True, text=True,
                            env={**os.environ, "BINHYEN_STATE_DIR": str(tmp_path)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == ("binhyen: unknown population 'calm'; use one of default, spam-heavy, "
                                     "few-reliable, hotline-province, rumour-storm, sparse-verdicts")
    assert not (tmp_path / "x.jsonl").exists()
