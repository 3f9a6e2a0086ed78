"""What a simulated province costs to make, against writing it out.

    .venv/bin/python bench/simulator.py [--province 96] [--days 14]

Simulates a province (default: Cà Mau, a fortnight, ~580,000 events, mostly device heartbeats)
and times it against the baseline run in the same process on the same events: encoding every
event as the JSON line `binhyen simulate` writes. Also times the event-time stamp the simulator
puts on every event against `datetime.fromtimestamp(...).isoformat()`, which it replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.sim.simulator import VN, SimConfig, simulate, vietnam_time  # noqa: E402


def timed(work: Callable[[], object]) -> tuple[float, object]:
    """(seconds `work` took, what it returned)."""
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", type=int, default=96)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    if args.days < 1:
        parser.error(f"--days {args.days}: simulate at least one day")
    config = SimConfig(args.province, days=args.days, seed=2, start=datetime(2025, 3, 1, tzinfo=VN))
    try:
        simulate_s, simulation = timed(lambda: simulate(config))
    except ValueError as exc:  # a province code with no communes
        parser.error(f"--province {args.province}: {exc}")
    events = simulation.events  # type: ignore[attr-defined]
    encode_s, _ = timed(lambda: [json.dumps(event, ensure_ascii=False) for event in events])
    seconds = [int(datetime.fromisoformat(event["occurred_at"]).timestamp()) for event in events]
    stamp_s, _ = timed(lambda: [vietnam_time(at) for at in seconds])
    datetime_s, _ = timed(lambda: [datetime.fromtimestamp(at, VN).isoformat() for at in seconds])
    assert [vietnam_time(at) for at in seconds[:1000]] == [event["occurred_at"] for event in events[:1000]]
    print(f"province {args.province}, {args.days} days: {len(events):,} events")
    print(f"simulate  {simulate_s:6.2f} s  {len(events) / simulate_s:9,.0f} events/s  "
          f"{simulate_s / encode_s:.2f}x the baseline")
    print(f"baseline  {encode_s:6.2f} s  (JSON lines of the same events)")
    print(f"stamps    {stamp_s:6.2f} s  vietnam_time, against {datetime_s:.2f} s with datetime "
          f"({datetime_s / stamp_s:.1f}x faster)")


if __name__ == "__main__":
    main()
