"""Missed and needless pages against the simulator's truth, per population.

    .venv/bin/python bench/paging_quality.py --days 7 --seed 2 --population all

Each simulated week goes through `binhyen process`'s offline run (the worker's code). Against the
simulator's ground truth:
- an *urgent* incident is a real one that needs a patrol now: a panic bell was pressed for it,
  or it is a fire or a fight (the simulator writes those as happening when first reported);
- it is *missed* when no page (P1 or P2, delivered now) names an incident holding any of its
  events within 10 minutes of its first event;
- a *needless* page is an alert paged now (P1/P2) whose incident holds nothing real (false
  alarms, pranks, spam, rumours) — counted apart for device presses, which page whatever
  their truth (a pressed bell is always answered).
Only aggregates are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.alerts import AlertConfig  # noqa: E402
from processors.credibility import CredibilityConfig  # noqa: E402
from processors.meaning import MeaningModel  # noqa: E402
from processors.offline import OfflineRun  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG  # noqa: E402
from streams.sim.simulator import POPULATIONS, SimConfig, simulate  # noqa: E402

WITHIN_MS = 10 * 60_000
URGENT_KINDS = ("fire", "fight")


@dataclass
class Figures:
    urgent: int = 0
    missed: int = 0
    pages: int = 0
    needless_tips: int = 0
    needless_devices: int = 0


def measure(events: list[dict[str, Any]], truth: list[dict[str, Any]]) -> Figures:
    run = OfflineRun.create(Pseudonymiser(b"k" * 32), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                            AlertConfig.load(DEFAULT_ALERT_CONFIG), MeaningModel.load(DEFAULT_MEANING_CONFIG))
    members: dict[str, set[str]] = {}
    paged: dict[str, tuple[int, str]] = {}  # alert id -> (first page ms, incident id)
    for out in run.process(json.dumps(event, ensure_ascii=False) for event in events):
        if out["kind"] == "incident":
            members[out["incident_id"]] = set(out["event_ids"])
        elif (out["kind"] == "alert" and out["state"] in ("raised", "escalated") and out["delivery"] == "now"
              and out["severity"] in ("P1", "P2") and out.get("incident_id") and out["alert_id"] not in paged):
            paged[out["alert_id"]] = (int(datetime.fromisoformat(out["at"]).timestamp() * 1000), out["incident_id"])
    by_event = {row["event_id"]: row for row in truth}
    at_ms = {e["event_id"]: int(datetime.fromisoformat(e["occurred_at"]).timestamp() * 1000) for e in events}
    incident_of_event = {event: incident for incident, ids in members.items() for event in ids}

    real: dict[str, list[str]] = defaultdict(list)  # truth incident -> its events
    for row in truth:
        if row.get("real") and row.get("kind") == "incident":
            real[row["incident"]].append(row["event_id"])
    figures = Figures(pages=len(paged))
    paged_at: dict[str, int] = {}
    for at, incident in paged.values():
        paged_at[incident] = min(at, paged_at.get(incident, at))
    for ids in real.values():
        rows = [by_event[i] for i in ids]
        urgent = rows[0].get("category") in URGENT_KINDS or any(r["type"] == "device_signal" for r in rows)
        if not urgent:
            continue
        figures.urgent += 1
        first = min(at_ms[i] for i in ids)
        if not any(paged_at.get(incident_of_event.get(i, ""), 2**62) <= first + WITHIN_MS for i in ids):
            figures.missed += 1
    for _, incident in paged.values():
        held = [by_event[i] for i in members.get(incident, ()) if i in by_event]
        if held and not any(r.get("real") for r in held):
            if any(r["type"] == "device_signal" for r in held):
                figures.needless_devices += 1
            else:
                figures.needless_tips += 1
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--province", type=int, default=96)
    parser.add_argument("--population", choices=[*POPULATIONS, "all"], default="all")
    args = parser.parse_args()
    names = list(POPULATIONS) if args.population == "all" else [args.population]
    print(f"{'population':18} {'urgent':>6} {'missed':>6} {'pages':>6} {'needless (tips)':>15} {'needless (bells)':>16}")
    for name in names:
        simulation = simulate(SimConfig(args.province, days=args.days, seed=args.seed, population=POPULATIONS[name]))
        f = measure(simulation.events, simulation.truth)
        print(f"{name:18} {f.urgent:6d} {f.missed:6d} {f.pages:6d} {f.needless_tips:15d} {f.needless_devices:16d}",
              flush=True)


if __name__ == "__main__":
    main()
