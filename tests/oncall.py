"""The on-call scenario suite's judge: a scenario's events through `binhyen process`, its alerts
against the duty officer's expectation (tests/data/oncall/README.md says how both were made and
read). Shared by the offline unit test and the live sample, so both are judged alike."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ONCALL = Path(__file__).parent / "data" / "oncall"
PAGED = ("raised", "escalated")
SEVERITIES = {"P1": {"P1"}, "P2": {"P2"}, "P1_or_P2": {"P1", "P2"}, "P3": {"P1", "P2", "P3"}}


@dataclass(frozen=True)
class Scenario:
    name: str
    events: list[dict[str, Any]]
    expect: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> "Scenario":
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        expect = json.loads(path.with_name(path.name.removesuffix(".jsonl") + ".expect.json").read_text("utf-8"))
        return cls(path.stem, events, expect)

    def lines(self) -> list[str]:
        return [json.dumps(event, ensure_ascii=False) for event in self.events]


def scenarios() -> list[Scenario]:
    return [Scenario.load(path) for path in sorted(ONCALL.glob("s*.jsonl"))]


@dataclass
class Outcome:
    """What `binhyen process` made of a scenario: each alert event with the event that caused it."""

    alerts: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    incident_of: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, output: list[dict[str, Any]]) -> "Outcome":
        outcome, cause = cls(), None
        for line in output:
            if line["kind"] == "event":
                cause = line["event_id"]
                if line["status"] == "rejected":
                    outcome.rejected[line["event_id"]] = line["reason"]
                elif line.get("incident_id"):
                    outcome.incident_of[line["event_id"]] = line["incident_id"]
            elif line["kind"] == "alert":
                outcome.alerts.append((line, cause))
            elif line["kind"] == "incident":
                for event_id in line["event_ids"]:
                    outcome.incident_of[event_id] = line["incident_id"]
        return outcome

    def about(self, ids: set[str]) -> list[dict[str, Any]]:
        """Alert events whose incident holds one of `ids`, or that one of `ids` caused at its own time."""
        incidents = {self.incident_of[i] for i in ids if i in self.incident_of}
        return [alert for alert, cause in self.alerts
                if alert.get("incident_id") in incidents or (cause in ids and alert["rule"] != "morning_digest")]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def judge(scenario: Scenario, output: list[dict[str, Any]]) -> list[str]:
    """What the duty officer would object to (empty: the run met the expectation)."""
    outcome = Outcome.of(output)
    when = {event["event_id"]: _at(event["occurred_at"]) for event in scenario.events}
    commune = {event["event_id"]: event.get("commune_code") for event in scenario.events}
    wrong = [f"{event_id} rejected: {reason}" for event_id, reason in outcome.rejected.items()]
    for page in scenario.expect["pages"]:
        ids = set(page["about"])
        first = min(when[i] for i in ids)
        related = outcome.about(ids)
        if page["deliver"] == "now":
            on_time = [a for a in related if a["state"] in PAGED and a["delivery"] == "now"
                       and a["severity"] in SEVERITIES[page["severity"]]
                       and (_at(a["at"]) - first).total_seconds() <= page["within_minutes"] * 60]
            if not on_time:
                wrong.append(f"{sorted(ids)[0]}…: not paged now as {page['severity']} within "
                             f"{page['within_minutes']} min (alerts: {_brief(related)})")
            raised = {a["alert_id"] for a in related if a["state"] == "raised" and a["delivery"] == "now"}
            if len(raised) > len({commune[i] for i in ids}):
                wrong.append(f"{sorted(ids)[0]}…: {len(raised)} separate pages for one matter ({sorted(raised)})")
        elif not any(a["delivery"] == "digest" or a["rule"] == "morning_digest" for a in related):
            wrong.append(f"{sorted(ids)[0]}…: not held for the morning digest (alerts: {_brief(related)})")
    for event_id in scenario.expect.get("must_not_page", []):
        for alert, cause in outcome.alerts:
            if cause == event_id and alert["state"] in PAGED and alert["delivery"] == "now" \
                    and _at(alert["at"]) == when[event_id]:
                wrong.append(f"{event_id} must not page, but {alert['state']} {alert['alert_id']} "
                             f"{alert['severity']} {alert['rule']}")
    for event_id in scenario.expect.get("no_urgent_page", []):
        for alert, cause in outcome.alerts:
            if cause == event_id and alert["state"] in PAGED and alert["severity"] in ("P1", "P2") \
                    and _at(alert["at"]) == when[event_id]:
                wrong.append(f"{event_id} must not page urgently, but {alert['severity']} {alert['rule']}")
    for event_id in scenario.expect.get("non_tips", []):
        if event_id in outcome.incident_of:
            wrong.append(f"{event_id} is not a tip, but joined incident {outcome.incident_of[event_id]}")
    return wrong


def _brief(alerts: list[dict[str, Any]]) -> str:
    return ", ".join(f"{a['state']} {a['severity']} {a['rule']} {a['delivery']} {a['at'][11:16]}" for a in alerts) \
        or "none"
