"""One event in, what it changed out: the processors the worker and `binhyen process` share.

Exact dedup and clustering (`incidents`), officers' verdicts feeding reputation and the
incident, and credibility scoring of every incident that changed. State is mappings the
caller owns: dicts offline, Faust tables in the worker (`communes` and `alerts`
co-partitioned with the commune-keyed topics; `reputation`, `chains` and `origins` global,
since reporters, forwarded messages and verdicts without a commune cross communes).

`origins` keeps, for a year, who was behind each tip and which tips made each incident, so a
verdict finds its commune when it names none, and credits reputations however long after the
incident closed. A verdict that still cannot be placed is `unapplied`, with its reason.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from processors.alerts import AlertConfig, AlertEngine
from processors.bell_tests import announced_window
from processors.credibility import CredibilityConfig, ReputationBook, chain_fingerprint, features, score_features
from processors.dedup import ExactDedup
from processors.incidents import MINUTE_MS, DedupConfig, IncidentClusterer, majority_category
from processors.meaning import Meaning, MeaningModel
from processors.staff import StaffRegistry

HOUR_MS = 3_600_000
FALSE_VERDICTS = frozenset({"false_report", "duplicate"})
ORIGIN_RETENTION_MS = 365 * 24 * HOUR_MS  # verdicts later than a year after the tip are not applied


@dataclass
class ProcessorState:
    communes: MutableMapping[str, Any] = field(default_factory=dict)  # commune -> open incidents, seen ids
    reputation: MutableMapping[str, Any] = field(default_factory=dict)  # 'reporter:…' -> [valuable, total]
    chains: MutableMapping[str, Any] = field(default_factory=dict)  # text fingerprint -> {commune: time}
    alerts: MutableMapping[str, Any] = field(default_factory=dict)  # commune -> alerts, spike and device state
    # 'tip:…' -> [commune, incident, reporter, source, channel, time]; 'incident:…' -> [commune, time, [tip ids]]
    origins: MutableMapping[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    status: str  # accepted | duplicate
    reason: str | None = None
    incident_id: str | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)  # incident events to emit
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert lifecycle events to emit
    unapplied: str | None = None  # a verdict that could not be placed, and why
    # A tip's incident as scored when the tip joined it — before the tip's own verdict, if that
    # was read first: what a credibility fit learns from (stored in `tip_scores`).
    joined: dict[str, Any] | None = None
    meaning: Meaning | None = None  # what a tip's text says (None: no model, or not a tip event)

    def incident(self) -> dict[str, Any] | None:
        """The emitted snapshot of this event's own incident, if any."""
        return next((i for i in self.incidents if i["incident_id"] == self.incident_id), None)


class EventProcessor:
    def __init__(self, state: ProcessorState, credibility: CredibilityConfig, alerting: AlertConfig,
                 dedup: DedupConfig | None = None, exact: ExactDedup | None = None, global_ticks: bool = True,
                 staff: StaffRegistry | None = None, meaning: MeaningModel | None = None) -> None:
        """`dedup` defaults to the alert config's gap between repeated presses of one device.
        `staff`: the registry an action's `by` is checked against (None: not checked).
        `meaning`: reads a tip's category, urgency and whether it is a tip at all from its text
        (None: the sender's category only, every tip a tip).
        `exact` also catches repeats of events that change no state (heartbeats): offline it
        reports them; the worker leaves them to ClickHouse, whose tables are idempotent.

        `global_ticks`: event time anywhere fires what is due in every commune (offline). The
        worker turns it off and ticks each commune from its timer instead.
        """
        self.global_ticks = global_ticks
        self.state = state
        self.credibility = credibility
        self.exact = exact
        self.meaning = meaning
        dedup = dedup or DedupConfig(debounce_ms=int(alerting.repeat_press_gap_minutes * MINUTE_MS))
        self.clusterer = IncidentClusterer(state.communes, dedup)
        self.reputation = ReputationBook(state.reputation, credibility)
        self.alerting = AlertEngine(state.alerts, alerting, staff)
        self.chain_window_ms = int(credibility.chain_window_hours * HOUR_MS)
        self._due: list[tuple[int, int]] = []  # (deadline, commune) heap; derived, not state
        self._scheduled: dict[int, int | None] = {}
        self._watermark = 0

    def handle(self, event_type: str, record: dict[str, Any]) -> Result:
        if self.exact is not None and not self.exact.first_seen(record["event_id"], record["occurred_at_ms"]):
            incident = self.clusterer.incident_of(record)
            return Result("duplicate", f"event_id {record['event_id']} already seen", incident and incident["id"],
                          [self._snapshot(incident)] if incident else [])
        meaning = self.meaning.read(record["text"], record.get("location_text"), record.get("category")) \
            if self.meaning is not None and event_type == "tip" else None
        if meaning is not None and not meaning.is_tip:  # a question, thanks, news: recorded, never an incident
            window = announced_window(record["text"], record["occurred_at_ms"], self.alerting.config.utc_offset_minutes)
            if window is not None:  # "bấm thử chuông lúc 9h–9h15": that press pages nobody
                self.alerting.note_bell_test(record["commune_code"], window)
            return Result("accepted", alerts=self.tick(record["occurred_at_ms"]) if self.global_ticks else [],
                          meaning=meaning)
        if event_type == "device_signal" and record["signal"] == "panic_pressed" \
                and self.alerting.is_announced_test(record):
            record = {**record, "announced_test": True}
        placed = meaning
        if meaning is not None and meaning.urgent and self.reputation.discredited(
                record.get("reporter_pseudonym"), record["commune_code"], record.get("channel")):
            placed = dataclasses.replace(meaning, urgent=False)  # their word alone pages nobody now
        outcome = self.clusterer.handle(event_type, record, placed)
        if outcome.status == "duplicate":
            # A re-delivered event (after a crash, state may be ahead of what reached Kafka and
            # ClickHouse): emit again what it caused; the sinks and receivers drop the repeats.
            # The tables are written one after another: a crash may have kept the incident's
            # change but lost its alert's, so an alert with no history is decided again.
            snapshots, replayed = [], []
            for incident in outcome.updated:
                snapshot = self._snapshot(incident)
                snapshots.append(snapshot)
                history = self.alerting.history(snapshot["commune_code"], snapshot["incident_id"])
                if not history:  # decided again as of this event, as it was decided then (same time, same page key)
                    then = _as_of(incident, record["event_id"])
                    history = self.alerting.on_incident(then, self._snapshot(then))
                replayed += history
            return Result("duplicate", outcome.reason, outcome.incident_id, snapshots, replayed)
        changed, incident_id = outcome.updated, outcome.incident_id
        alerts: list[dict[str, Any]] = []
        unapplied, joined = None, None
        if event_type == "tip":
            self._note_chain(record)
            self._remember_origin(record, incident_id)
            alerts += self.alerting.on_tip(record)
            parked = self.clusterer.take_parked_verdict(record["commune_code"], record["event_id"])
            if parked is not None:  # its verdict was read first: apply it now the tip is placed
                joined = next((self._snapshot(i) for i in changed if i["id"] == incident_id), None)
                verdict = {"verdict": parked, "tip_event_id": record["event_id"],
                           "commune_code": record["commune_code"], "occurred_at_ms": record["occurred_at_ms"]}
                judged, _ = self._verdict(verdict)
                changed += [incident for incident in judged if incident not in changed]
                alerts += self._close_if_judged_false(verdict, judged)
        elif event_type == "device_signal":
            alerts += self.alerting.on_device_signal(record)
        elif event_type == "feedback":
            changed, unapplied = self._verdict(record)
            incident_id = changed[0]["id"] if changed else None  # the incident the verdict judged
            if unapplied is None:
                alerts += self._close_if_judged_false(record, changed)
        elif event_type == "alert_action":
            unapplied = self.alerting.refusal(record)
            if unapplied is None:
                alerts += self.alerting.on_action(record)
        snapshots = []
        for incident in changed:
            snapshot = self._snapshot(incident)
            snapshots.append(snapshot)
            # a verdict updates the alert its incident has; only new evidence raises one
            alerts += self.alerting.on_incident(incident, snapshot, may_raise=event_type != "feedback")
        commune = record.get("commune_code")
        if self.global_ticks:
            if commune is not None and self._scheduled.get(commune) != self.alerting.next_deadline(commune):
                self._schedule(commune)
            alerts += self.tick(record["occurred_at_ms"])
        if event_type == "tip" and joined is None:
            joined = next((snapshot for snapshot in snapshots if snapshot["incident_id"] == incident_id), None)
        return Result("accepted", None, incident_id, snapshots, alerts, unapplied, joined, meaning)

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        """Event time (or, in the worker, the clock) reached `now_ms`: fire what is due."""
        self._watermark = max(self._watermark, now_ms)
        fired: list[dict[str, Any]] = []
        while self._due and self._due[0][0] <= self._watermark:
            at, commune = heapq.heappop(self._due)
            if self._scheduled.get(commune) != at:
                continue  # superseded: the commune was scheduled for another moment since (re-pushing it
                # would keep every stale entry alive, and the heap would grow with history)
            if self._overdue(commune):
                fired += self.alerting.tick(commune, self._watermark)
                if self._overdue(commune):  # a tick that leaves its commune due would loop here for ever
                    raise RuntimeError(f"the alert engine ticked commune {commune} at {self._watermark} and left it "
                                       f"due at {self.alerting.next_deadline(commune)}")
            self._schedule(commune)
        return fired

    def _overdue(self, commune: int) -> bool:
        deadline = self.alerting.next_deadline(commune)
        return deadline is not None and deadline <= self._watermark

    def _schedule(self, commune: int) -> None:
        deadline = self.alerting.next_deadline(commune)
        self._scheduled[commune] = deadline
        if deadline is not None:
            heapq.heappush(self._due, (deadline, commune))

    def sweep(self, watermark_ms: int) -> None:
        """Bound the global state: forget forwarded texts older than the chain window, and
        origins older than a year."""
        horizon = watermark_ms - self.chain_window_ms
        for fingerprint in list(self.state.chains):
            communes = self.state.chains.get(fingerprint)
            if communes is not None and max(communes.values()) < horizon:
                del self.state.chains[fingerprint]
        forgotten = watermark_ms - ORIGIN_RETENTION_MS
        for key in list(self.state.origins):
            origin = self.state.origins.get(key)
            if origin is not None and origin[-1 if key.startswith("tip:") else 1] < forgotten:
                del self.state.origins[key]

    def commune_of(self, record: dict[str, Any]) -> int | None:
        """A verdict's commune: that of the tip or incident it judges, else the one it claims."""
        judged = self.judged_commune(record)
        if judged is not None:
            return judged
        return None if record.get("commune_code") is None else int(record["commune_code"])

    def judged_commune(self, record: dict[str, Any]) -> int | None:
        """The commune of the tip or incident a verdict judges, when binhyen has seen it."""
        tip_id, incident_id = record.get("tip_event_id"), record.get("incident_id")
        origin = (self.state.origins.get(f"tip:{tip_id}") if tip_id else None) or (
            self.state.origins.get(f"incident:{incident_id}") if incident_id else None)
        return int(origin[0]) if origin else None

    def _remember_origin(self, record: dict[str, Any], incident_id: str | None) -> None:
        at = record["occurred_at_ms"]
        self.state.origins[f"tip:{record['event_id']}"] = [
            record["commune_code"], incident_id, record.get("reporter_pseudonym"), record.get("source_ref"),
            record.get("channel"), at]
        if incident_id:
            key = f"incident:{incident_id}"
            _, _, tips = self.state.origins.get(key) or [record["commune_code"], at, []]
            self.state.origins[key] = [record["commune_code"], at, [*tips, record["event_id"]]]

    # -- verdicts ---------------------------------------------------------------------------
    def _verdict(self, record: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """(the incidents the verdict changed, why it could not be applied — or None)."""
        verdict = record["verdict"]
        tip_id, incident_id = record.get("tip_event_id"), record.get("incident_id")
        commune = self.commune_of(record)
        judged = f"tip {tip_id}" if tip_id else f"incident {incident_id}"
        claimed = record.get("commune_code")
        if claimed is not None and commune != claimed:  # the scope its sender was checked against
            return [], (f"verdict on {judged} refused: commune_code {claimed} is not the commune of that "
                        f"{judged.split()[0]} ({commune}); send the verdict with the judged one's commune")
        if commune is None:
            return [], (f"verdict on {judged}: no commune_code, and binhyen has not seen that {judged.split()[0]} "
                        "(or forgot it after a year); send the verdict with its commune_code")
        if tip_id:
            origin = self.clusterer.tip_origin(commune, tip_id)
            if origin is None:
                stored = self.state.origins.get(f"tip:{tip_id}")
                if stored is None:
                    # Not read yet (input topics are not aligned in event time: after a rebalance a
                    # worker may read a partition's verdicts ahead of its tips): kept for the tip.
                    self.clusterer.park_verdict(commune, tip_id, record["occurred_at_ms"], verdict)
                    return [], None
                origin = [stored[5], *stored[1:5]]  # seen by the commune long ago: its incident may be closed
            _, incident_id, reporter, source, channel = origin
            self.reputation.record(_reputation_keys(reporter, source, channel, commune), verdict)
            about = tip_id
        else:
            about = "incident"
        if not incident_id:
            return [], None
        incident = self.clusterer.record_verdict(commune, incident_id, about, verdict)
        if incident is not None and not tip_id:
            for member in incident["members"]:
                if member["k"] == "tip":
                    self.reputation.record(_reputation_keys(member.get("rep"), member.get("src"),
                                                            member.get("ch"), commune), verdict)
        elif incident is None and not tip_id:  # closed: credit everyone behind it from the origins
            stored = self.state.origins.get(f"incident:{incident_id}")
            if stored is None:
                return [], f"verdict on {judged}: binhyen has not seen that incident (or forgot it after a year)"
            for tip in stored[2]:
                origin = self.state.origins.get(f"tip:{tip}")
                if origin is not None:
                    self.reputation.record(_reputation_keys(origin[2], origin[3], origin[4], commune), verdict)
        return ([incident] if incident is not None else []), None

    def _close_if_judged_false(self, record: dict[str, Any], changed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A `false_report` or `duplicate` verdict on an incident — or on its last tip not so judged,
        when no device alarmed in it — resolves the incident's open alert, with that reason."""
        verdict = record["verdict"]
        if verdict not in FALSE_VERDICTS:
            return []
        commune = self.commune_of(record)
        if record.get("incident_id") and not record.get("tip_event_id") and commune is not None:
            incident_id = record["incident_id"]
        elif changed and not any(m["k"] == "device" for m in changed[0]["members"]) and all(
                changed[0]["verdicts"].get(m["e"]) in FALSE_VERDICTS for m in changed[0]["members"]):
            incident_id, commune = changed[0]["id"], changed[0]["commune"]
        else:
            return []
        why = "báo sai (false_report)" if verdict == "false_report" else "trùng lặp (duplicate)"
        return self.alerting.resolve_incident(int(commune), incident_id, record["occurred_at_ms"],
                                              f"đóng theo kết luận của cán bộ: {why}")

    # -- chains -----------------------------------------------------------------------------
    def _note_chain(self, record: dict[str, Any]) -> None:
        fingerprint = chain_fingerprint(record["text"])
        communes = dict(self.state.chains.get(fingerprint) or {})
        horizon = record["occurred_at_ms"] - self.chain_window_ms
        communes = {c: at for c, at in communes.items() if at >= horizon}
        communes[str(record["commune_code"])] = record["occurred_at_ms"]
        self.state.chains[fingerprint] = communes

    # -- output -----------------------------------------------------------------------------
    def _snapshot(self, incident: dict[str, Any]) -> dict[str, Any]:
        """The incident as emitted (Avro `incident` shape), scored now."""
        spread = {}
        for member in incident["members"]:
            if member["k"] == "tip":
                fingerprint = chain_fingerprint(member["txt"])
                spread[fingerprint] = len(self.state.chains.get(fingerprint) or {})
        values = features(incident, self.reputation, spread, self.credibility)
        credibility, reasons = score_features(values, self.credibility)
        return {
            "incident_id": incident["id"],
            "version": incident["version"],
            "commune_code": incident["commune"],
            "opened_at_ms": incident["first"],
            "updated_at_ms": max(m["t"] for m in incident["members"]),
            "category": majority_category(incident),
            "event_ids": [m["e"] for m in incident["members"]],
            "tips": sum(1 for m in incident["members"] if m["k"] == "tip"),
            "device_alarms": sum(1 for m in incident["members"] if m["k"] == "device"),
            "credibility": credibility,
            "reasons": reasons,
            "scorer_version": self.credibility.version,
            "features": [{"signal": name, "value": value} for name, value in sorted(values.items())],
        }


def _as_of(incident: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The incident as it was when `event_id` joined it (its members up to that one)."""
    index = next((i for i, m in enumerate(incident["members"]) if m["e"] == event_id), len(incident["members"]) - 1)
    return {**incident, "members": incident["members"][:index + 1]}


def _reputation_keys(reporter: str | None, source: str | None, channel: str | None, commune: int) -> list[str]:
    keys = [f"commune:{commune}"]
    if channel:
        keys.append(f"channel:{channel}")
    if reporter:
        keys.append(f"reporter:{reporter}")
    if source:
        keys.append(f"source:{source}")
    return keys
