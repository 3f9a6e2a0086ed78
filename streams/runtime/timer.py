"""The escalation timer: which communes to tick, at what time, and when it is safe to send.

Offline, `binhyen process` fires what is due as event time passes: a P1 escalates at its
deadline unless an ack came before it. The worker must give the same answer, but an ack takes
a hop (alert-actions → the registry agent → the commune's control partition) and tips are read
ahead of it. So a tick at time T is sent only once the consumer group has processed every
record that had been published when T was read — the high watermarks of the input topics at
that moment. Every ack given before T is then already on the control partition, ahead of the
tick, and reaches the commune's alert state first. (In production an ack given after the
deadline is late by definition: the alert escalated at the deadline, then was acked.)

T is the wall clock for what fell due within a day of it (live data: a quiet night still
escalates), and event time for older data — the highest `occurred_at` this worker has
processed, never ahead of the clock — so a replay or an accelerated simulation escalates where
`binhyen process` does, and an event dated years ahead cannot escalate today's P1s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

TICK_EVERY_S = 2.0  # how often the worker's timer looks for communes with something due
LIVE_HORIZON_MS = 24 * 3_600_000  # the clock ticks what fell due within a day of it; older is a replay
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset


def tick_message(commune: int, now_ms: int) -> bytes:
    return json.dumps({"tick": commune, "now_ms": now_ms}).encode()


def due_communes(alert_states: Iterable[tuple[str, dict[str, Any] | None]], watermark_ms: int,
                 now_ms: int) -> list[tuple[int, int]]:
    """(commune, tick time) for every commune whose alert state has something due."""
    ticks = []
    for key, state in alert_states:
        due = (state or {}).get("due")
        if due is None:
            continue
        at = now_ms if due >= now_ms - LIVE_HORIZON_MS else min(watermark_ms, now_ms)
        if due <= at:
            ticks.append((int(key), at))
    return ticks


@dataclass(frozen=True)
class Barrier:
    """Ticks computed at `watermark_ms`/`now_ms` wait until the group has committed `targets`."""

    watermark_ms: int
    now_ms: int
    targets: Offsets


class TickTimer:
    """One `round` per timer interval (blocking I/O: run it off the event loop).

    `read_highwaters` gives the input topics' high watermarks now (None if unknown),
    `read_committed` the group's committed offsets.
    """

    def __init__(self, read_highwaters: Callable[[], Offsets | None], read_committed: Callable[[], Offsets]) -> None:
        self.read_highwaters = read_highwaters
        self.read_committed = read_committed
        self.barrier: Barrier | None = None

    def round(self, alert_states: list[tuple[str, Any]], watermark_ms: int, now_ms: int) -> list[tuple[int, int]]:
        """The ticks to send now: none until everything published before the barrier is processed."""
        if self.barrier is None:
            if not due_communes(alert_states, watermark_ms, now_ms):
                return []
            targets = self.read_highwaters()
            if targets is None:
                return []
            self.barrier = Barrier(watermark_ms, now_ms, targets)
        committed = self.read_committed()
        if any(committed.get(tp, 0) < end for tp, end in self.barrier.targets.items()):
            return []
        barrier, self.barrier = self.barrier, None
        return due_communes(alert_states, barrier.watermark_ms, barrier.now_ms)
