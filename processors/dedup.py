"""Exact duplicates: the same `event_id` seen again within a retention window of event time."""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 86_400_000
DEFAULT_RETENTION_MS = 7 * DAY_MS


@dataclass
class ExactDedup:
    """Remembers event ids for `retention_ms` of event time behind the newest event seen.

    Memory is bounded by the window: ids older than the watermark minus the retention are
    swept out, in bulk, once the id count has doubled since the last sweep.
    """

    retention_ms: int = DEFAULT_RETENTION_MS
    seen: dict[str, int] = field(default_factory=dict)  # event_id -> occurred_at_ms
    watermark_ms: int = 0
    _sweep_at: int = 1024

    def first_seen(self, event_id: str, occurred_at_ms: int) -> bool:
        """True the first time an id is seen in the window; False for a duplicate."""
        self.watermark_ms = max(self.watermark_ms, occurred_at_ms)
        if event_id in self.seen:
            return False
        self.seen[event_id] = occurred_at_ms
        if len(self.seen) >= self._sweep_at:
            self.sweep()
        return True

    def sweep(self) -> None:
        horizon = self.watermark_ms - self.retention_ms
        self.seen = {eid: at for eid, at in self.seen.items() if at >= horizon}
        self._sweep_at = max(1024, 2 * len(self.seen))
