"""`binhyen process`: the worker's processors over a JSONL file, in file order, no I/O here.

Output follows ../shared/contracts/README.md: one `event` line per non-blank input line
(accepted, duplicate, or rejected with its line number and reason; with the incident and
its credibility where the event belongs to one), then one `incident` line per incident in
its final state. No wall-clock value is written, so the same input gives the same output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from processors.credibility import CredibilityConfig
from processors.dedup import ExactDedup
from processors.pipeline import EventProcessor, ProcessorState
from processors.validation import InvalidEvent, claimed, parse_contract, parse_json_line

SWEEP_EVERY = 10_000


@dataclass
class OfflineRun:
    pseudonymise: Callable[[str], str]
    processor: EventProcessor
    counts: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest snapshot by id
    watermark_ms: int = 0

    @classmethod
    def create(cls, pseudonymise: Callable[[str], str], credibility: CredibilityConfig) -> "OfflineRun":
        """A run with fresh state; repeats of any event id are reported as duplicates."""
        return cls(pseudonymise, EventProcessor(ProcessorState(), credibility, exact=ExactDedup()))

    def process(self, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            out = self.process_line(number, line)
            self.counts[out["status"]] += 1
            yield out
            if number % SWEEP_EVERY == 0:
                self.processor.sweep(self.watermark_ms)
        for snapshot in sorted(self.incidents.values(), key=lambda i: (i["opened_at_ms"], i["incident_id"])):
            yield {
                "kind": "incident", "incident_id": snapshot["incident_id"], "commune_code": snapshot["commune_code"],
                "event_ids": snapshot["event_ids"], "credibility": snapshot["credibility"],
                "reasons": snapshot["reasons"], "category": snapshot["category"],
                "scorer_version": snapshot["scorer_version"],
            }

    def process_line(self, number: int, line: str) -> dict[str, Any]:
        obj = None
        try:
            obj = parse_json_line(line)
            event_type, record, _ = parse_contract(obj, self.pseudonymise)
        except InvalidEvent as exc:
            return {"kind": "event", "event_id": claimed(obj, "event_id"), "type": claimed(obj, "type"),
                    "status": "rejected", "line": number, "reason": str(exc)}
        event_id = record["event_id"]
        self.watermark_ms = max(self.watermark_ms, record["occurred_at_ms"])
        result = self.processor.handle(event_type, record)
        for snapshot in result.incidents:
            self.incidents[snapshot["incident_id"]] = snapshot
        out: dict[str, Any] = {"kind": "event", "event_id": event_id, "type": event_type, "status": result.status}
        if result.status == "duplicate":
            out["reason"] = f"event_id {event_id} already seen at line {self.first_line.get(event_id, '?')}"
        else:
            self.first_line[event_id] = number
        if result.incident_id:
            out["incident_id"] = result.incident_id
            current = self.incidents.get(result.incident_id)
            if current is not None:
                out["credibility"] = current["credibility"]
                out["reasons"] = current["reasons"]
        return out
