"""`binhyen process`: the worker's processors over a JSONL file, in file order, no I/O here.

Output lines follow ../shared/contracts/README.md: one `event` line per non-blank input
line (accepted, duplicate, or rejected with its line number and reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from processors.dedup import ExactDedup
from processors.validation import InvalidEvent, claimed, parse_contract, parse_json_line


@dataclass
class OfflineRun:
    pseudonymise: Callable[[str], str]
    dedup: ExactDedup = field(default_factory=ExactDedup)
    counts: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)

    def process(self, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            out = self.process_line(number, line)
            self.counts[out["status"]] += 1
            yield out

    def process_line(self, number: int, line: str) -> dict[str, Any]:
        obj = None
        try:
            obj = parse_json_line(line)
            event_type, record, _ = parse_contract(obj, self.pseudonymise)
        except InvalidEvent as exc:
            return {
                "kind": "event",
                "event_id": claimed(obj, "event_id"),
                "type": claimed(obj, "type"),
                "status": "rejected",
                "line": number,
                "reason": str(exc),
            }
        event_id = record["event_id"]
        out: dict[str, Any] = {"kind": "event", "event_id": event_id, "type": event_type}
        if self.dedup.first_seen(event_id, record["occurred_at_ms"]):
            self.first_line[event_id] = number
            out["status"] = "accepted"
        else:
            out["status"] = "duplicate"
            out["reason"] = f"event_id {event_id} already seen at line {self.first_line.get(event_id, '?')}"
        return out
