"""Alert rules and the alert lifecycle, as a pure engine with explicit state.

Rules (weights in the versioned `infra/config/alerts.v3.json`):
- P1 at once: a panic bell pressed, a smart gate forced — no waiting for corroboration;
- P1/P2: a credible incident (credibility above a threshold) of an urgent kind;
- P2: a spike of tips in a commune against its own baseline (event-time windows);
- P3: devices offline, battery low or silent (heartbeats missing), one alert per commune a day.
A forwarded chain message with nothing to back it never pages.

One alert per incident: new evidence that raises the severity escalates the alert instead of
paging again, repeated triggers change nothing, and a P1 raised in a commune within the spike
window inhibits its tip spike alert. An alert goes to its commune's route (the commune post),
then up the escalation chain (commune post → province duty desk → command), each step waiting
its own minutes for an ack. Staff act with `alert_action` events (ack, resolve, escalate); only
a member of the staff registry whose jurisdiction covers the alert's commune may (`refusal`).
P1s and the urgent kinds (`page_any_hour`: a knife fight, a fire, a camera tampered with) page
at any hour; the rest outside office hours is held and sent as one digest per commune at the
start of office hours. No paged alert closes itself unanswered: a P1 or P2 nobody acknowledged
climbs the chain, each step waiting its minutes, and at the last step is paged again at a
growing interval (`repage_minutes`, doubling up to `repage_max_minutes`) until a person acts
or a verdict closes it; only an acknowledged alert, or a P3 (which never pages anyone awake),
resolves itself after `auto_resolve_minutes` with no activity. An alert is raised once for as
long as its incident lives: a closed alert is remembered (`CLOSED_MEMORY_MS`) after its record
is dropped, and a verdict only updates the alert it finds, never raises one.

Time-driven changes (an overdue P1 escalates, a silent device is reported, the digest is sent,
a quiet alert resolves, old alerts are forgotten) happen in `tick`, and otherwise only where the event's own stream is ordered with
what it judges: an action advances its own alert's deadline (actions on one alert arrive in
order), a device signal advances the commune's device silences (a commune's device signals
share one partition). A tip never moves them: in the worker, tips can be read ahead of the
device signals and of the acks (which take a hop via the control topic), and a tip must not
escalate a P1 whose ack is still on its way. So the lifecycle of every alert is a function of
event time alone — escalated at its deadline if and only if no ack came before it — the same
live and in `binhyen process`. An action read before the event that raises its alert (the hop
can overtake a lagging partition) waits in the commune's state and is applied at the raise.

State: commune code -> {alerts, recent tip times, baseline, device last-seen, watermark, the
alerts held for the digest and when it is due}, JSON-able, co-partitioned with the
commune-keyed topics like the incident state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from processors.bell_tests import covers
from processors.credibility import SIGNAL_LABELS
from processors.geography import commune as commune_of
from processors.staff import StaffRegistry

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SEVERITY_RANK = {"P1": 1, "P2": 2, "P3": 3}
OPEN_STATES = frozenset({"raised", "escalated", "acked"})
FORGET_AFTER_MS = 2 * DAY_MS  # closed alerts leave the state after this long …
CLOSED_MEMORY_MS = 30 * DAY_MS  # … and their ids after this long: no incident lives as long unheard of
_REPAGED = re.compile(r" — nhắc lại lần \d+: chưa ai xác nhận$")
PAGING = frozenset({"P1", "P2"})
KEPT_HISTORY = 8  # lifecycle events kept per alert for re-emission: the raise and the last seven
DIRECT_CHANNELS = frozenset({"hotline", "in_person", "vneid"})  # someone who can be called back, not a forward  # what wakes someone: it climbs the chain until somebody acts
MAX_TICK_ROUNDS = 8  # a tick's rounds: each closes what the one before raised; more is a bug (the caller says)


@dataclass(frozen=True)
class AlertConfig:
    version: str
    credible_p1: float
    credible_p2: float
    urgent_categories: list[str]
    spike_window_minutes: float
    spike_min_tips: int
    spike_factor: float
    baseline_half_life_hours: float
    heartbeat_missing_minutes: float
    office_hours: list[int]
    utc_offset_minutes: int
    # [{"route": …, "ack_minutes": {"P1": 5}}, …, {"route": "command"}]: where an alert goes, and how
    # long each step waits for an ack before the next (a severity without a wait stays at its step)
    escalation: list[dict[str, Any]]
    commune_routes: dict[str, str]  # commune code -> its own first route (its post's channel)
    page_any_hour: dict[str, list[str]] = field(default_factory=dict)  # {"categories": […], "rules": […]}
    repeat_press_gap_minutes: float = 2.0  # presses of one device this close extend one trigger
    # {"default": 180, "missing_person": 1440}: an open alert with no activity this long (by its
    # incident's category: as long as the incident's own window) resolves itself; {} never
    auto_resolve_minutes: dict[str, float] = field(default_factory=dict)
    # {"P1": 15, "P2": 30}: at the chain's last step an unacknowledged alert is paged again after
    # this long, then after twice as long, … up to `repage_max_minutes`; {} never (alerts-2)
    repage_minutes: dict[str, float] = field(default_factory=dict)
    repage_max_minutes: float = 240.0
    # A report of something happening now, by category: the severity it pages with before the
    # evidence is credible enough for a P1 ({"fire": "P1", …, "default": "P2"}); {}: P2 for all
    urgent_severity: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "AlertConfig":
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> "AlertConfig":
        raw = json.loads(text)
        raw.pop("doc", None)
        if "p1_ack_minutes" in raw:  # alerts-1 (kept by processor versions registered before alerts-2)
            routes = raw.pop("routes")
            raw["escalation"] = [{"route": routes["default"], "ack_minutes": {"P1": raw.pop("p1_ack_minutes")}},
                                 {"route": routes["escalated"]}]
        if not raw.get("escalation"):
            raise ValueError("the alert config's escalation needs at least one step")
        return cls(**raw)

    def credible_severity(self, category: str | None, credibility: float) -> str | None:
        """P1/P2 for a credible incident of an urgent kind (no device rule behind it), else None."""
        if category not in self.urgent_categories or credibility < self.credible_p2:
            return None
        return "P1" if credibility >= self.credible_p1 else "P2"

    def wait_ms(self, step: int, severity: str) -> int | None:
        """How long an alert of `severity` at `step` waits for an ack before the next step (None: it stays)."""
        if step + 1 >= len(self.escalation):
            return None
        minutes = (self.escalation[step].get("ack_minutes") or {}).get(severity)
        return None if minutes is None else int(minutes * MINUTE_MS)

    def repage_ms(self, severity: str, repaged: int) -> int | None:
        """At the last step: how long until the next page of an alert paged `repaged` times there."""
        minutes = self.repage_minutes.get(severity)
        if minutes is None:
            return None
        return int(min(minutes * 2 ** repaged, max(minutes, self.repage_max_minutes)) * MINUTE_MS)


def alert_id_for(commune_code: int, incident_id: str) -> str:
    """Staff quote this id; it names the commune so an action finds the alert's state."""
    return f"al-{commune_code}-{incident_id.removeprefix('inc-')}"


def unacked_p1_since(commune_state: dict[str, Any] | None) -> list[int]:
    """When each P1 of a commune's alert state that nobody has acknowledged was raised (ms)."""
    alerts = (commune_state or {}).get("alerts") or {}
    return [a["raised"] for a in alerts.values() if a["severity"] == "P1" and a["state"] in ("raised", "escalated")]


def _recent_entry(entry: int | list[Any]) -> list[Any]:
    """A spike-window entry: [at, sender]; states written before senders were kept hold bare times."""
    return entry if isinstance(entry, list) else [entry, f"t{entry}"]


def repaged_counts(commune_state: dict[str, Any] | None) -> list[int]:
    """How often each open alert of a commune nobody acted on was paged again after its chain ran
    out (only alerts re-paged at least once): what on-call watches, as nothing closes them."""
    alerts = (commune_state or {}).get("alerts") or {}
    return [a["repaged"] for a in alerts.values() if a.get("repaged") and a["state"] in ("raised", "escalated")]


def commune_of_alert(alert_id: str) -> int | None:
    parts = alert_id.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[0] == "al" and parts[1].isdigit() else None


class AlertEngine:
    def __init__(self, communes: MutableMapping[str, Any], config: AlertConfig,
                 staff: StaffRegistry | None = None) -> None:
        """`staff`: the registry `by` is checked against (None: actions are not checked)."""
        self.communes = communes
        self.config = config
        self.staff = staff

    # -- rules ------------------------------------------------------------------------------
    def on_incident(self, incident: dict[str, Any], snapshot: dict[str, Any],
                    may_raise: bool = True) -> list[dict[str, Any]]:
        """Raise or escalate the incident's alert when a rule fires; `incident` is the clusterer's.
        `may_raise=False` (a verdict changed the incident): only an alert it already has changes."""
        rule = self._incident_rule(incident, snapshot)
        if rule is None:
            return []
        severity, name, what = rule
        summary = self._page_text(what, incident, snapshot)
        commune = snapshot["commune_code"]
        state = self._state(commune)
        at = snapshot["updated_at_ms"]
        alert_id = alert_id_for(commune, snapshot["incident_id"])
        if not may_raise and alert_id not in state["alerts"]:
            return []
        out = self._raise_or_escalate(state, commune, alert_id, severity, name, summary, at, snapshot["incident_id"],
                                      snapshot["category"])
        self._save(commune, state)
        return out

    def _incident_rule(self, incident: dict[str, Any], snapshot: dict[str, Any]) -> tuple[str, str, str] | None:
        signals = {m.get("sig") for m in incident["members"] if m["k"] == "device" and not m.get("test")}
        credibility = snapshot["credibility"]
        category = snapshot["category"]
        if "panic_pressed" in signals:
            return "P1", "panic_bell", "Chuông báo động được bấm"
        if "gate_forced" in signals:
            return "P1", "gate_forced", "Cổng an ninh bị phá"
        features = {f["signal"]: f["value"] for f in snapshot.get("features", ())}
        chain = features.get("chain_message", 0.0) >= 1.0  # nothing but forwarded copies, no device
        tips = [m for m in incident["members"] if m["k"] == "tip"]
        urgent = [m for m in tips if m.get("urg")]
        # Happening now (processors.meaning): the post is paged at any hour, as unverified (P2)
        # until the evidence is credible enough for a P1. A forwarded message counts only with
        # a direct report behind it — or when it is a missing person: forwarding is how those spread.
        # An unverified P2 on one person's word needs something the post can check (a place, a
        # number, a description): "có cướp ngân hàng!!! chạy đi" alone is how pranks read.
        direct = any(m.get("ch") in DIRECT_CHANNELS for m in tips)
        severity = self.config.urgent_severity.get(category or "", self.config.urgent_severity.get("default", "P2"))
        severity = "P1" if credibility >= self.config.credible_p1 else severity
        if urgent and (not chain or direct or category == "missing_person") and not (
                severity != "P1" and not signals and not features.get("specificity")
                and len({m.get("rep") or m["e"] for m in tips}) == 1):  # uncheckable
            cues = ", ".join(dict.fromkeys(cue for m in urgent for cue in m.get("why", [])))
            return (severity, "urgent_report",
                    f"Tin báo khẩn ({category or 'chưa rõ loại'}), đang xảy ra" + (f" [{cues[:60]}]" if cues else ""))
        if chain:
            return None  # a forwarded rumour with no device or direct report behind it never pages
        severity = self.config.credible_severity(category, credibility)
        if severity is not None:
            return severity, "credible_incident", f"Tin báo khẩn ({category})"
        if "tamper" in signals:
            return "P2", "device_tamper", "Thiết bị bị can thiệp (tamper)"
        if tips and category and not self._office_hours(snapshot["updated_at_ms"]):
            # Reported at night, nothing urgent: the morning shift reads it in the digest (by day
            # the post sees its tips as they come; nothing pages for them)
            return "P3", "night_report", f"Tin báo ngoài giờ ({category})"
        return None

    def _page_text(self, what: str, incident: dict[str, Any], snapshot: dict[str, Any]) -> str:
        """What an officer needs to act, in Vietnamese: what, where (commune, place or site), when,
        how many reporters and devices, credibility and its strongest reasons. No reporter and nothing a
        sender wrote: the place is the commune and a device's registered site, never a tip's
        `location_text` (it may name the informant — "nhà chị Lan người báo tin" — and pages reach
        the analysts' tables and logs)."""
        place = commune_of(snapshot["commune_code"])
        where = f"{place.name}, {place.province_name}" if place else f"xã {snapshot['commune_code']}"
        spot = next((m["name"] for m in incident["members"] if m["k"] == "device" and m.get("name")), None)
        local = datetime.fromtimestamp(snapshot["opened_at_ms"] / 1000,
                                       timezone(timedelta(minutes=self.config.utc_offset_minutes)))
        devices = len({m["dev"] for m in incident["members"] if m["k"] == "device"})
        reasons = sorted((r for r in snapshot["reasons"] if r["signal"] != "calibration"),
                         key=lambda r: -abs(r["contribution"]))[:2]
        why = ", ".join(f"{SIGNAL_LABELS.get(r['signal'], r['signal'])} {r['contribution']:+.1f}" for r in reasons)
        return (f"{what} — {where}" + (f" ({spot[:80]})" if spot else "") + f" — lúc {local:%H:%M %d/%m/%Y} — "
                f"{snapshot['tips']} tin báo, {devices} thiết bị — độ tin cậy {snapshot['credibility']:.2f}"
                + (f" ({why})" if why else ""))

    def on_tip(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Count the tip towards the commune's spike detector: a spike is many people reporting,
        so one sender's repeats (ten pasted copies) count once within the window."""
        commune, at = record["commune_code"], record["occurred_at_ms"]
        state = self._state(commune)
        out: list[dict[str, Any]] = []
        window = self.config.spike_window_minutes * MINUTE_MS
        self._roll_baseline(state, at)
        state["hour_count"] += 1
        sender = record.get("reporter_pseudonym") or record["event_id"]  # an anonymous tip is its own sender
        state["recent"] = [r for r in map(_recent_entry, state["recent"]) if r[0] > at - window] + [[at, sender]]
        senders = len({who for t, who in state["recent"] if t <= at})  # a tip read late counts what came before it
        expected = state["baseline"] * window / HOUR_MS
        threshold = max(self.config.spike_min_tips, math.ceil(self.config.spike_factor * expected + 1))
        if senders >= threshold and not self._p1_raised_since(state, at - window, at):
            bucket = at - at % HOUR_MS
            alert_id = f"al-{commune}-spike-{bucket // HOUR_MS}"
            summary = f"{senders} người báo trong {self.config.spike_window_minutes:.0f} phút " \
                      f"(bình thường {expected:.1f} tin)"
            out += self._raise_or_escalate(state, commune, alert_id, "P2", "tip_spike", summary, at, None)
        self._save(commune, state)
        return out

    def note_bell_test(self, commune: int, window: dict[str, Any]) -> None:
        """Keep an announced bell test (processors.bell_tests) for the press it covers; at most
        the eight latest, none whose window ended a day before the newest."""
        state = self._state(commune)
        tests = [t for t in state.get("tests", []) if t["to_ms"] > window["from_ms"] - DAY_MS] + [window]
        state["tests"] = tests[-8:]
        self._save(commune, state)

    def is_announced_test(self, press: dict[str, Any]) -> bool:
        """Whether this panic press is the test a message announced — which it then uses up."""
        state = self._state(press["commune_code"])
        test = next((t for t in state.get("tests", []) if covers(t, press)), None)
        if test is None:
            return False
        state["tests"].remove(test)
        self._save(press["commune_code"], state)
        return True

    def on_device_signal(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Track heartbeats; an offline or battery-low device joins the commune's P3 alert."""
        commune, at, device = record["commune_code"], record["occurred_at_ms"], record["device_id"]
        signal = record["signal"]
        if signal not in ("heartbeat", "offline", "battery_low"):
            return []
        state = self._state(commune)
        out: list[dict[str, Any]] = []
        # Only what depends on device signals alone moves here (they arrive in order on this
        # partition; actions take a hop and may still be on their way): silent devices.
        if state["due"] is not None and at >= state["due"]:  # `due` is a lower bound: most signals stop here
            out = self._report_silent(state, commune, at)  # the commune's earlier signals are all read
            self._recompute_due(state)
        if signal == "heartbeat":
            state["devices"][device] = at
            self._due_by(state, int(at + self.config.heartbeat_missing_minutes * MINUTE_MS))
        else:
            state["devices"].pop(device, None)  # reported now; do not report it again as silent
            out += self._device_health(state, commune, at, f"{device}: {signal}")
        self._save(commune, state)
        return out

    def refusal(self, record: dict[str, Any]) -> str | None:
        """Why an action may not be applied: it claims a commune that is not its alert's (the scope a
        gateway key was checked against), its `by` is not in the staff registry, or not someone whose
        jurisdiction covers the alert's commune. None when it may (or nothing is checked)."""
        commune = commune_of_alert(record["alert_id"])
        claimed = record.get("commune_code")
        if claimed is not None and claimed != commune:
            return (f"{record['action']} on {record['alert_id']} refused: commune_code {claimed} is not the alert's "
                    f"commune ({commune}); send the alert's own commune, or none")
        if self.staff is None or commune is None:
            return None
        why = self.staff.refusal(record.get("by"), commune)
        return None if why is None else f"{record['action']} on {record['alert_id']} refused: {why}"

    def on_action(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """ack / resolve / escalate from on-call staff (checked with `refusal` first)."""
        commune = commune_of_alert(record["alert_id"])
        if commune is None:
            return []
        state = self._state(commune)
        alert = state["alerts"].get(record["alert_id"])
        if alert is None:
            self._park(state, record)
            self._save(commune, state)
            return []
        out = self._act(state, commune, alert, record)
        self._save(commune, state)
        return out

    def _park(self, state: dict[str, Any], record: dict[str, Any]) -> None:
        """Keep an action on an alert not raised yet, for a day of event time: in the worker an ack
        takes a hop (alert-actions → the control topic) that can overtake the device signal that
        raises its alert, and `_raise_or_escalate` applies it then. One for an alert id that never
        comes is forgotten."""
        at = record["occurred_at_ms"]
        self._forget_parked(state, at)
        state.setdefault("parked_actions", {}).setdefault(record["alert_id"], []).append(
            [at, record["action"], record.get("by")])

    @staticmethod
    def _forget_parked(state: dict[str, Any], now: int) -> None:
        if state.get("parked_actions"):
            state["parked_actions"] = {alert_id: kept for alert_id, actions in state["parked_actions"].items()
                                       if (kept := [a for a in actions if a[0] > now - DAY_MS])}

    def _act(self, state: dict[str, Any], commune: int, alert: dict[str, Any],
             record: dict[str, Any]) -> list[dict[str, Any]]:
        if alert["state"] == "resolved":
            return []
        at, action = record["occurred_at_ms"], record["action"]
        out = self._escalate_if_overdue(state, alert, commune, at)  # an ack after the deadline comes too late
        out += self._resolve_if_quiet(state, alert, commune, at)  # and one after it went quiet, too late to act
        if alert["state"] == "resolved":
            self._recompute_due(state)
            return out
        new_state = {"ack": "acked", "resolve": "resolved", "escalate": "escalated"}[action]
        if action == "ack" and alert["state"] == "acked":
            self._recompute_due(state)
            return out
        alert.update(state=new_state, deadline=None, updated=at, active=at)
        if action == "escalate":  # one step up the chain, where the next desk has its own wait
            alert["step"] = min(alert.get("step", 0) + 1, len(self.config.escalation) - 1)
            alert["route"] = self._route_at(commune, alert["step"])
            alert["deadline"] = self._deadline(alert, at)
        out.append(self._event(state, alert, commune, new_state, at, by=record.get("by")))
        self._recompute_due(state)
        return out

    def resolve_incident(self, commune: int, incident_id: str, at: int, reason: str) -> list[dict[str, Any]]:
        """Officers judged the incident false or a duplicate: its open alert is resolved, saying so."""
        state = self._state(commune)
        alert = state["alerts"].get(alert_id_for(commune, incident_id))
        if alert is None or alert["state"] not in OPEN_STATES:
            return []
        out = self._escalate_if_overdue(state, alert, commune, at)  # a deadline before the verdict came first
        out += self._resolve_if_quiet(state, alert, commune, at)  # and so did going quiet
        if alert["state"] != "resolved":
            alert.update(state="resolved", deadline=None, updated=at, summary=_append(alert["summary"], reason))
            out.append(self._event(state, alert, commune, "resolved", at))
        self._recompute_due(state)
        self._save(commune, state)
        return out

    def tick(self, commune: int, now_ms: int) -> list[dict[str, Any]]:
        """Time has reached `now_ms` in this commune: overdue P1s escalate, silent devices are
        reported, old closed alerts go. Nothing is due before `state["due"]` (kept at or before
        the earliest moment), so most ticks return at once."""
        state = self._state(commune)
        state["watermark"] = max(state["watermark"], now_ms)
        if state["due"] is None or now_ms < state["due"]:
            return []
        out: list[dict[str, Any]] = []
        # What fires can raise what is due already (a silent device reported at its moment, the
        # digest at seven, both quiet by now): round again until nothing is due (a few rounds).
        for _ in range(MAX_TICK_ROUNDS):
            for alert in list(state["alerts"].values()):
                out += self._escalate_if_overdue(state, alert, commune, now_ms)
                out += self._resolve_if_quiet(state, alert, commune, now_ms)
            out += self._report_silent(state, commune, now_ms)
            out += self._send_digest(state, commune, now_ms)
            self._forget_closed(state, now_ms)
            self._forget_parked(state, now_ms)
            self._recompute_due(state)
            if state["due"] is None or state["due"] > now_ms:
                break
        self._save(commune, state)
        return out

    def history(self, commune: int, incident_id: str) -> list[dict[str, Any]]:
        """Every lifecycle event the incident's alert has had, oldest first (for re-emission)."""
        state = self.communes.get(str(commune)) or {}
        alert = (state.get("alerts") or {}).get(alert_id_for(commune, incident_id))
        return list(alert.get("history", [])) if alert else []

    def next_deadline(self, commune: int) -> int | None:
        """The earliest moment `tick` may change something (for the worker's timer)."""
        state = self.communes.get(str(commune))
        return state.get("due") if state else None

    # -- lifecycle --------------------------------------------------------------------------
    def _raise_or_escalate(self, state: dict[str, Any], commune: int, alert_id: str, severity: str, rule: str,
                           summary: str, at: int, incident_id: str | None,
                           category: str | None = None) -> list[dict[str, Any]]:
        alert = state["alerts"].get(alert_id)
        if alert is None and alert_id in state.get("closed", {}):
            return []  # raised and closed before, its record since dropped: never a second lifecycle
        if alert is None:
            alert = {"id": alert_id, "incident": incident_id, "severity": severity, "rule": rule,
                     "category": category, "state": "raised", "raised": at, "updated": at, "active": at,
                     "summary": summary, "step": 0, "route": self._route_at(commune, 0)}
            alert["deadline"] = self._deadline(alert, at)
            state["alerts"][alert_id] = alert
            self._due_by(state, alert["deadline"])
            self._due_by(state, self._quiet_until(alert))
            out = [self._event(state, alert, commune, "raised", at)]
            # actions read before the raise, in time order; one dated before it would not have found it
            for action_at, action, by in sorted(state.get("parked_actions", {}).pop(alert_id, []), key=lambda a: a[0]):
                if action_at >= at:
                    out += self._act(state, commune, alert, {"occurred_at_ms": action_at, "action": action, "by": by})
            return out
        out = self._resolve_if_quiet(state, alert, commune, at)  # event time passed its quiet moment first
        if alert["state"] == "resolved":
            return out
        alert["active"] = max(alert.get("active", at), at)  # still going on: not quiet yet
        pending = alert.get("upgrade")
        if SEVERITY_RANK[severity] >= SEVERITY_RANK[pending[0] if pending else alert["severity"]]:
            return out  # the same or weaker evidence again: no second page
        # Stronger evidence escalates the alert at its moment, by `tick`: a deadline that ran out
        # before it (or an ack on its way) must come first, the same live and offline.
        alert["upgrade"] = [severity, rule, summary, at]
        self._due_by(state, at)
        return out

    @staticmethod
    def _due_by(state: dict[str, Any], moment: int | None) -> None:
        if moment is not None and (state["due"] is None or moment < state["due"]):
            state["due"] = moment

    @staticmethod
    def _forget_closed(state: dict[str, Any], now: int) -> None:
        """Closed alerts leave the state after FORGET_AFTER_MS; their ids stay CLOSED_MEMORY_MS longer."""
        closed = {i: at for i, at in state.get("closed", {}).items() if at + CLOSED_MEMORY_MS > now}
        kept = {}
        for alert_id, alert in state["alerts"].items():
            if alert["state"] in OPEN_STATES or alert["updated"] + FORGET_AFTER_MS > now:
                kept[alert_id] = alert
            else:
                closed[alert_id] = alert["updated"]
        state["alerts"] = kept
        if closed or "closed" in state:
            state["closed"] = closed

    def _escalate_if_overdue(self, state: dict[str, Any], alert: dict[str, Any], commune: int,
                             now: int) -> list[dict[str, Any]]:
        """An alert nobody acknowledged by its step's deadline goes up the chain, at the deadline —
        step after step, each with its own wait — and at the last step is paged there again.
        Stronger evidence read since (`upgrade`) escalates it at its own moment, in time order."""
        out = []
        while True:
            deadline = alert.get("deadline") if alert["state"] in ("raised", "escalated") else None
            deadline = deadline if deadline and deadline <= now else None
            if alert["state"] not in OPEN_STATES:
                alert.pop("upgrade", None)  # closed before the evidence's moment: nothing to escalate
            upgrade = alert.get("upgrade")
            upgrade = upgrade if upgrade and upgrade[3] <= now else None
            if upgrade is not None and (deadline is None or upgrade[3] < deadline):
                out.append(self._upgrade(state, alert, commune))
                continue
            if deadline is None:
                return out
            step = alert.get("step", 0)
            if step + 1 < len(self.config.escalation):
                waited = (self.config.wait_ms(step, alert["severity"]) or 0) / MINUTE_MS
                alert["step"] = step + 1
                note = f" — chưa xác nhận sau {waited:g} phút"
            else:  # the chain has run out: page the last desk again (the count replaces the last one's)
                longest = int(self.config.repage_max_minutes * MINUTE_MS)
                if self.config.repage_ms(alert["severity"], alert.get("repaged", 0)) == longest \
                        and deadline + longest <= now:  # far behind (a replay of old days): one page for them
                    missed = (now - deadline) // longest
                    deadline += missed * longest
                    alert["repaged"] = alert.get("repaged", 0) + missed
                alert["repaged"] = alert.get("repaged", 0) + 1
                alert["summary"] = _REPAGED.sub("", alert["summary"])
                note = f" — nhắc lại lần {alert['repaged']}: chưa ai xác nhận"
            alert.update(state="escalated", updated=deadline, active=deadline,
                         route=self._route_at(commune, alert["step"]),
                         summary=_append(alert["summary"], note.removeprefix(" — "), separator=" — "))
            alert["deadline"] = self._deadline(alert, deadline)
            out.append(self._event(state, alert, commune, "escalated", deadline))

    def _upgrade(self, state: dict[str, Any], alert: dict[str, Any], commune: int) -> dict[str, Any]:
        severity, rule, summary, at = alert.pop("upgrade")
        acked = alert["state"] == "acked"
        alert.update(severity=severity, rule=rule, summary=summary, updated=at, state="escalated")
        alert["deadline"] = None if acked else self._deadline(alert, at)
        return self._event(state, alert, commune, "escalated", at)

    def _resolve_if_quiet(self, state: dict[str, Any], alert: dict[str, Any], commune: int,
                          now: int) -> list[dict[str, Any]]:
        """An open alert with nothing new (evidence, step, action) for `auto_resolve_minutes` resolves
        itself, at that moment — once its escalation chain has run out."""
        quiet = self._quiet_until(alert)
        if quiet is None or quiet > now:
            return []
        minutes = (quiet - alert.get("active", alert["updated"])) / MINUTE_MS
        unacked = "" if alert["state"] == "acked" else ", chưa ai xác nhận"
        alert.update(state="resolved", updated=quiet, summary=_append(
            alert["summary"], f"tự đóng: không có hoạt động trong {minutes:g} phút{unacked}"))
        return [self._event(state, alert, commune, "resolved", quiet)]

    def _quiet_until(self, alert: dict[str, Any]) -> int | None:
        quiet = self.config.auto_resolve_minutes
        minutes = quiet.get(alert.get("category") or "default", quiet.get("default"))
        if minutes is None or alert["state"] not in OPEN_STATES or alert.get("deadline") or alert.get("held"):
            return None  # off, closed, still climbing the chain, or held for a digest nobody has read yet
        if alert["state"] != "acked" and alert["severity"] in PAGING and self.config.repage_minutes:
            return None  # a page nobody answered never closes itself
        return int(alert.get("active", alert["updated"]) + minutes * MINUTE_MS)

    def _quiet_by(self, state: dict[str, Any], alert: dict[str, Any], at: int) -> bool:
        """Whether the alert has closed quiet by `at`, counting a digest due by then as read. The
        digest comes from a tick that may lag behind this commune's device signals (offline too:
        an event is handled before the tick at its time), so which alert a signal joins must not
        depend on whether the tick came first; the close itself is left to the tick."""
        digest = state.get("digest_at")
        if alert.get("held") and digest is not None and digest <= at:
            alert = {**alert, "held": False, "active": max(alert.get("active", digest), digest)}
        quiet = self._quiet_until(alert)
        return quiet is not None and quiet <= at

    def _send_digest(self, state: dict[str, Any], commune: int, now: int) -> list[dict[str, Any]]:
        """At the start of office hours, one page listing what was held overnight and is still open."""
        at = state.get("digest_at")
        if at is None or at > now:
            return []
        held = [a for i in state.pop("held", []) if (a := state["alerts"].get(i)) and a["state"] in OPEN_STATES
                and a.get("held")]  # not paged since (a P1 now) nor closed
        state["digest_at"] = None
        for alert in held:
            alert.update(held=False, active=max(alert.get("active", at), at))  # seen from now on: quiet from here …
            if alert["state"] != "acked" and alert["severity"] in PAGING and self.config.repage_minutes:
                alert["deadline"] = self._deadline(alert, at)  # … and a page in it climbs like any other
                self._due_by(state, alert["deadline"])
        if not held:
            return []
        local = datetime.fromtimestamp(at / 1000, timezone(timedelta(minutes=self.config.utc_offset_minutes)))
        lines = "; ".join(f"[{a['severity']}] {a['summary'][:160]} ({a['id']})" for a in held)
        summary = f"Tổng hợp đầu giờ {local:%H:%M %d/%m}: {len(held)} cảnh báo ngoài giờ chưa xử lý — {lines}"
        return self._raise_or_escalate(state, commune, f"al-{commune}-digest-{at // HOUR_MS}", "P3",
                                       "morning_digest", summary, at, None)

    def _report_silent(self, state: dict[str, Any], commune: int, now: int) -> list[dict[str, Any]]:
        """Devices with no heartbeat for too long by `now`, in the order they fell silent."""
        silent_after = self.config.heartbeat_missing_minutes * MINUTE_MS
        silent = sorted((t, d) for d, t in state["devices"].items() if t + silent_after <= now)
        out = []
        for last_seen, device in silent:
            del state["devices"][device]
            out += self._device_health(state, commune, int(last_seen + silent_after), f"{device}: mất tín hiệu")
        return out

    def _recompute_due(self, state: dict[str, Any]) -> None:
        silent_after = self.config.heartbeat_missing_minutes * MINUTE_MS
        moments = [a["deadline"] for a in state["alerts"].values() if a.get("deadline")]
        moments += [a["upgrade"][3] for a in state["alerts"].values() if a.get("upgrade") and a["state"] in OPEN_STATES]
        moments += [quiet for a in state["alerts"].values() if (quiet := self._quiet_until(a)) is not None]
        moments += [state["digest_at"]] if state.get("digest_at") else []
        moments += [a["updated"] + FORGET_AFTER_MS for a in state["alerts"].values() if a["state"] not in OPEN_STATES]
        moments += [int(t + silent_after) for t in state["devices"].values()]
        state["due"] = min(moments) if moments else None

    def _device_health(self, state: dict[str, Any], commune: int, at: int, what: str) -> list[dict[str, Any]]:
        """One open device-health alert per commune and day; later devices join it, and one after
        it was closed (by staff, or quiet) opens another."""
        day = (at + self.config.utc_offset_minutes * MINUTE_MS) // DAY_MS
        base = f"al-{commune}-devices-{day}"
        out: list[dict[str, Any]] = []
        todays = [a for i, a in state["alerts"].items() if i == base or i.startswith(base + "-")]
        for alert in todays:
            out += self._resolve_if_quiet(state, alert, commune, at)
        alert = next((a for a in todays if a["state"] in OPEN_STATES and not self._quiet_by(state, a, at)), None)
        if alert is not None:
            alert["summary"] = _append(alert["summary"], what)
            alert["active"] = max(alert.get("active", at), at)
            return out
        alert_id = f"{base}-{at // MINUTE_MS}" if todays else base
        return out + self._raise_or_escalate(state, commune, alert_id, "P3", "device_health", what, at, None)

    def _p1_raised_since(self, state: dict[str, Any], since: int, until: int) -> bool:
        """A P1 raised within the spike window explains the burst of tips, even if already
        resolved (whether the resolve has been read yet must not change the answer); one raised
        after the tip (read first: replayed history, another partition ahead) does not."""
        return any(a["severity"] == "P1" and since <= a["raised"] <= until
                   for a in state["alerts"].values())

    def _roll_baseline(self, state: dict[str, Any], at: int) -> None:
        """Exponentially weighted tips per hour, updated as whole hours pass."""
        hour = at // HOUR_MS
        if state["hour"] is None:
            state["hour"] = hour
        decay = 0.5 ** (1 / self.config.baseline_half_life_hours)
        while state["hour"] < hour:
            state["baseline"] = state["baseline"] * decay + state["hour_count"] * (1 - decay)
            state["hour_count"] = 0
            state["hour"] += 1
            if state["hour"] < hour and state["baseline"] < 1e-6:
                state["hour"] = hour  # nothing left to decay: jump ahead
                state["baseline"] = 0.0

    def _deadline(self, alert: dict[str, Any], at: int) -> int | None:
        """When the alert's current step stops waiting for an ack (held alerts wait for no one); at the
        last step, when it is paged there again."""
        if self._delivery(alert, at) != "now":
            return None
        step = alert.get("step", 0)
        if step + 1 < len(self.config.escalation):
            wait = self.config.wait_ms(step, alert["severity"])
        else:
            wait = self.config.repage_ms(alert["severity"], alert.get("repaged", 0))
        return None if wait is None else at + wait

    def _route_at(self, commune: int, step: int) -> str:
        """The route of a step of the chain; the first is the commune's own where it has one."""
        first = self.config.escalation[0]["route"]
        return self.config.commune_routes.get(str(commune), first) if step == 0 else self.config.escalation[step]["route"]

    def _event(self, state: dict[str, Any], alert: dict[str, Any], commune: int, step: str, at: int,
               by: str | None = None) -> dict[str, Any]:
        """The lifecycle event; one held for the digest is noted in the commune's `state`."""
        delivery = self._delivery(alert, at)
        event = {
            "alert_id": alert["id"], "state": step, "severity": alert["severity"], "rule": alert["rule"],
            "incident_id": alert["incident"], "commune_code": commune, "at_ms": at, "by": by,
            "summary": alert["summary"], "route": alert["route"], "delivery": delivery,
            "config_version": self.config.version,  # which rules decided this step
        }
        history = alert.setdefault("history", [])  # kept for re-emission: the raise and the latest steps
        history.append(event)
        if len(history) > KEPT_HISTORY:
            del history[1]  # an alert paged again for weeks must not grow its commune's state
        alert["held"] = delivery == "digest" and step != "resolved"  # nobody has seen it yet
        if delivery == "now" and alert["severity"] in PAGING:
            alert["paged"] = True  # in someone's hands: the chain goes on at any hour
        if alert["held"]:
            if alert["id"] not in state.setdefault("held", []):
                state["held"].append(alert["id"])
            if not state.get("digest_at"):
                state["digest_at"] = self._office_start_after(at)
            self._due_by(state, state["digest_at"])
        return event

    def _delivery(self, alert: dict[str, Any], at: int) -> str:
        """P1s and the urgent kinds page now at any hour; the rest waits for office hours (the Zalo
        groups' own rule) and goes out in the digest."""
        urgent = self.config.page_any_hour
        if alert["rule"] == "night_report" and not alert.get("paged"):
            return "digest"  # for the morning shift, whatever its kind
        if alert["severity"] == "P1" or alert["rule"] in urgent.get("rules", ()) \
                or alert.get("category") in urgent.get("categories", ()) or alert.get("paged"):
            return "now"
        return "now" if self._office_hours(at) else "digest"

    def _office_hours(self, at: int) -> bool:
        local_hour = (at + self.config.utc_offset_minutes * MINUTE_MS) // HOUR_MS % 24
        start, end = self.config.office_hours
        return start <= local_hour < end

    def _office_start_after(self, at: int) -> int:
        """The next start of office hours (local time) after `at`."""
        offset = self.config.utc_offset_minutes * MINUTE_MS
        local = at + offset
        start = local - local % DAY_MS + self.config.office_hours[0] * HOUR_MS
        return (start if start > local else start + DAY_MS) - offset

    def _state(self, commune: int) -> dict[str, Any]:
        return self.communes.get(str(commune)) or {
            "alerts": {}, "recent": [], "baseline": 0.0, "hour": None, "hour_count": 0, "devices": {}, "watermark": 0,
            "due": None,
        }

    def _save(self, commune: int, state: dict[str, Any]) -> None:
        self.communes[str(commune)] = state  # write back: a Faust table records the change


def _append(summary: str, what: str, limit: int = 400, separator: str = "; ") -> str:
    joined = f"{summary}{separator}{what}"
    return joined if len(joined) <= limit else summary
