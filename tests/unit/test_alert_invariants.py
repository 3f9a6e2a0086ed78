"""The paging invariants over simulated weeks of every population: an alert is raised once, a
page nobody answered never closes itself, and a page nobody answered is paged again until the
end of the run (each step's wait, then the re-page interval at the top of the chain)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from processors.alerts import MINUTE_MS, PAGING, AlertConfig
from streams.config import DEFAULT_ALERT_CONFIG
from streams.sim.simulator import POPULATIONS, SimConfig, simulate
from tests.conftest import offline_run


ALERTING = AlertConfig.load(DEFAULT_ALERT_CONFIG)
LONGEST_WAIT_MS = int(max(ALERTING.repage_max_minutes,
                          *(m for step in ALERTING.escalation for m in (step.get("ack_minutes") or {}).values()))
                      * MINUTE_MS)
BY_PERSON = ("đóng theo kết luận của cán bộ",)  # a verdict's resolution says so


@cache
def week(population: str, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The alert events of a simulated week of Cà Mau, and the run's last event time (ms)."""
    simulation = simulate(SimConfig(96, days=7, seed=seed, scale=0.15, population=POPULATIONS[population]))
    lines = [json.dumps(event, ensure_ascii=False) for event in simulation.events]
    output = list(offline_run().process(lines))
    end = max(int(datetime.fromisoformat(e["occurred_at"]).timestamp() * 1000) for e in simulation.events)
    return [line for line in output if line["kind"] == "alert"], end


def lifecycles(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        grouped[alert["alert_id"]].append(alert)
    return grouped


def ms(alert: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(alert["at"]).timestamp() * 1000)


@pytest.mark.parametrize("population", sorted(POPULATIONS))
@pytest.mark.parametrize("seed", [3])
def test_never_raised_twice_never_closed_unanswered_and_paged_until_answered(population: str, seed: int) -> None:
    alerts, end = week(population, seed)
    grouped = lifecycles(alerts)
    paged = {alert_id: steps for alert_id, steps in grouped.items()
             if steps[0]["severity"] in PAGING and steps[0]["delivery"] == "now"}
    assert len(paged) >= 5, f"a week of {population} pages little: {len(paged)} alerts"
    for alert_id, steps in grouped.items():
        states = [step["state"] for step in steps]
        assert states.count("raised") == 1 and states[0] == "raised", (alert_id, states)
        answered = "acked" in states or any(step.get("by") for step in steps) or any(
            words in step["summary"] for step in steps for words in BY_PERSON)
        if steps[-1]["state"] == "resolved" and any(s["severity"] in PAGING for s in steps) and \
                any(s["delivery"] == "now" for s in steps[:-1]):
            assert answered, f"{alert_id} closed itself unanswered: {[(s['state'], s['at']) for s in steps]}"
    for alert_id, steps in paged.items():
        states = [step["state"] for step in steps]
        if "acked" in states or "resolved" in states:
            continue
        moments = [ms(step) for step in steps] + [end]
        gaps = [b - a for a, b in zip(moments, moments[1:])]
        assert max(gaps) <= LONGEST_WAIT_MS, (
            f"{alert_id} went {max(gaps) // MINUTE_MS} minutes without being paged again, unanswered")
