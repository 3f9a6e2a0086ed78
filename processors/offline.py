"""`binhyen process`: the worker's processors over a JSONL file, in file order, no I/O here.

Output follows ../shared/contracts/README.md: one `event` line per non-blank input line
(accepted, duplicate, or rejected with its line number and reason; with the incident and
its credibility where the event belongs to one), then one `incident` line per incident in
its final state. No wall-clock value is written, so the same input gives the same output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from datetime import datetime, timedelta, timezone

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig, Sample, ScoredTip, judged
from processors.dedup import ExactDedup
from processors.meaning import MeaningModel
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.staff import StaffRegistry
from processors.validation import InvalidEvent, claimed, parse_contract, parse_json_line

SWEEP_EVERY = 10_000
VIETNAM = timezone(timedelta(hours=7))


@dataclass
class OfflineRun:
    pseudonyms: Pseudonymiser
    processor: EventProcessor
    counts: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest snapshot by id
    watermark_ms: int = 0
    alert_events: int = 0
    scored: dict[str, ScoredTip] = field(default_factory=dict)  # tip id -> what its score was computed from
    verdicts: dict[str, tuple[int, str]] = field(default_factory=dict)  # tip id -> (at, the latest verdict)

    @classmethod
    def create(cls, pseudonyms: Pseudonymiser, credibility: CredibilityConfig, alerting: AlertConfig,
               meaning: MeaningModel, staff: StaffRegistry | None = None) -> "OfflineRun":
        """A run with fresh state; repeats of any event id are reported as duplicates; an action by
        someone `staff` does not allow is rejected, as the worker dead-letters it; `meaning` reads
        what each tip's text says (required: without it every tip would join incidents and page as
        the worker never does)."""
        return cls(pseudonyms, EventProcessor(ProcessorState(), credibility, alerting, exact=ExactDedup(),
                                              staff=staff, meaning=meaning))

    def process(self, lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            out, alerts = self.process_line(number, line)
            self.counts[out["status"]] += 1
            yield out
            for alert in alerts:
                self.alert_events += 1
                yield alert_line(alert)
            if number % SWEEP_EVERY == 0:
                self.processor.sweep(self.watermark_ms)
        for snapshot in sorted(self.incidents.values(), key=lambda i: (i["opened_at_ms"], i["incident_id"])):
            yield {
                "kind": "incident", "incident_id": snapshot["incident_id"], "commune_code": snapshot["commune_code"],
                "event_ids": snapshot["event_ids"], "credibility": snapshot["credibility"],
                "reasons": snapshot["reasons"], "category": snapshot["category"],
                "scorer_version": snapshot["scorer_version"],
            }

    def process_line(self, number: int, line: str | bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The event line, and the alert lifecycle events the event caused."""
        obj = None
        try:
            obj = parse_json_line(line)
            event_type, record, _ = parse_contract(obj, self.pseudonyms)
        except InvalidEvent as exc:
            return {"kind": "event", "event_id": claimed(obj, "event_id"), "type": claimed(obj, "type"),
                    "status": "rejected", "line": number, "reason": str(exc)}, []
        event_id = record["event_id"]
        self.watermark_ms = max(self.watermark_ms, record["occurred_at_ms"])
        result = self.processor.handle(event_type, record)
        if result.unapplied:  # the worker dead-letters it: a rejected line here
            return {"kind": "event", "event_id": event_id, "type": event_type, "status": "rejected", "line": number,
                    "reason": result.unapplied}, result.alerts
        for snapshot in result.incidents:
            self.incidents[snapshot["incident_id"]] = snapshot
        self._note_scoring(event_type, record, result.joined)
        out: dict[str, Any] = {"kind": "event", "event_id": event_id, "type": event_type, "status": result.status}
        if result.status == "duplicate":
            out["reason"] = f"event_id {event_id} already seen at line {self.first_line.get(event_id, '?')}"
        else:
            self.first_line[event_id] = number
        if result.meaning is not None:
            meaning = result.meaning
            out["meaning"] = {"is_tip": meaning.is_tip, "category": meaning.category, "urgent": meaning.urgent,
                              "evidence": list(meaning.evidence)}
        if result.incident_id:
            out["incident_id"] = result.incident_id
            current = self.incidents.get(result.incident_id)
            if current is not None:
                out["credibility"] = current["credibility"]
                out["reasons"] = current["reasons"]
        return out, result.alerts

    def _note_scoring(self, event_type: str, record: dict[str, Any], joined: dict[str, Any] | None) -> None:
        """What a credibility fit reads on the stack: each tip's features when scored, and the
        latest verdict on it."""
        if joined is not None:
            self.scored[record["event_id"]] = ScoredTip.of(record, joined)
        elif event_type == "feedback" and record.get("tip_event_id"):
            latest = self.verdicts.get(record["tip_event_id"])
            if latest is None or latest[0] <= record["occurred_at_ms"]:
                self.verdicts[record["tip_event_id"]] = (record["occurred_at_ms"], record["verdict"])

    def judged(self, since_ms: int = 0, until_ms: int = 2**62) -> list[Sample]:
        """(features when scored, valuable) of the tips of [since, until) officers judged, in tip order."""
        return judged(self.scored, {tip: verdict for tip, (_, verdict) in self.verdicts.items()}, since_ms, until_ms)


def alert_line(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert lifecycle event as an output line; times in Vietnam time, as staff read them."""
    line = {"kind": "alert", "alert_id": alert["alert_id"], "state": alert["state"], "severity": alert["severity"],
            "rule": alert["rule"], "commune_code": alert["commune_code"], "at": _vietnam_time(alert["at_ms"]),
            "route": alert["route"], "delivery": alert["delivery"], "summary": alert["summary"]}
    if alert["incident_id"]:
        line["incident_id"] = alert["incident_id"]
    if alert.get("by"):
        line["by"] = alert["by"]
    return line


def _vietnam_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, VIETNAM).isoformat()
