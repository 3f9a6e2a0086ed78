"""The alert engine at its edges, on explicit state (processors.alerts.AlertEngine, no worker):
credibility thresholds, the spike detector's window, threshold and rolling baseline, heartbeats
going silent at exactly their deadline, one device-health alert per local day, office hours at
their first and last minute, the lifecycle steps' routes, deadlines and what they leave in state
(and write back, for a Faust table), parked actions in time order, and the page text."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from processors.alerts import AlertConfig, AlertEngine, commune_of_alert, repaged_counts, unacked_p1_since
from streams.config import DEFAULT_ALERT_CONFIG

# P1 ack 5 min then 10 min, spike 60 min / 5 tips / x3, heartbeat 75 min; quiet alerts stay open here
# (auto-resolve and the night pages of urgent kinds have tests of their own: test_alert_routing.py)
CONFIG = dataclasses.replace(AlertConfig.load(DEFAULT_ALERT_CONFIG), auto_resolve_minutes={})
C = 18352  # Xã Nghi Xuân, Hà Tĩnh
M, H, D = 60_000, 3_600_000, 86_400_000
VN = timezone(timedelta(hours=7))
T0 = int(datetime(2025, 9, 3, 10, 0, tzinfo=VN).timestamp() * 1000)  # 10:00 local, a whole hour
DECAY = 0.5 ** (1 / CONFIG.baseline_half_life_hours)


class Recording(dict):  # type: ignore[type-arg]
    """A state table that remembers which keys were written back (a Faust table's changelog)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def engine(config: AlertConfig = CONFIG) -> AlertEngine:
    return AlertEngine(Recording(), config)


def device_incident(at: int, signal: str = "panic_pressed", incident_id: str = "inc-0a1b", commune: int = C,
                    device: str = "bell-1") -> tuple[dict[str, Any], dict[str, Any]]:
    incident = {"members": [{"k": "device", "sig": signal, "dev": device, "name": "Phòng giao dịch"}]}
    snapshot = {"commune_code": commune, "incident_id": incident_id, "updated_at_ms": at, "opened_at_ms": at,
                "credibility": 0.5, "category": None, "reasons": [], "tips": 0}
    return incident, snapshot


def tip_incident(at: int, credibility: float, category: str | None, reasons: list[dict[str, Any]] | None = None,
                 commune: int = C) -> tuple[dict[str, Any], dict[str, Any]]:
    snapshot = {"commune_code": commune, "incident_id": "inc-7f00", "updated_at_ms": at, "opened_at_ms": at,
                "credibility": credibility, "category": category, "reasons": reasons or [], "tips": 1}
    return {"members": [{"k": "tip"}]}, snapshot


def steps(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["state"], e["severity"], e["rule"], e["at_ms"]) for e in events]


def tip(at: int, commune: int = C, reporter: str | None = None) -> dict[str, Any]:
    return {"commune_code": commune, "occurred_at_ms": at, "event_id": f"t-{at}", "reporter_pseudonym": reporter}


def signal(at: int, kind: str, device: str = "bell-1") -> dict[str, Any]:
    return {"commune_code": C, "occurred_at_ms": at, "device_id": device, "signal": kind}


def action(alert_id: str, at: int, verb: str) -> dict[str, Any]:
    return {"alert_id": alert_id, "occurred_at_ms": at, "action": verb, "by": "ca-truc-ban"}


def alert_state(alerts: AlertEngine, alert_id: str, commune: int = C) -> dict[str, Any]:
    return alerts.communes[str(commune)]["alerts"][alert_id]


BELL_ALERT = f"al-{C}-0a1b"


# -- who is unacknowledged, whose alert an id names ---------------------------------------------------

def test_unacked_p1s_are_the_raised_and_escalated_p1s() -> None:
    state = {"alerts": {
        "a": {"severity": "P1", "state": "raised", "raised": 1}, "b": {"severity": "P1", "state": "escalated", "raised": 2},
        "c": {"severity": "P1", "state": "acked", "raised": 3}, "d": {"severity": "P1", "state": "resolved", "raised": 4},
        "e": {"severity": "P2", "state": "raised", "raised": 5}}}
    assert unacked_p1_since(state) == [1, 2]
    assert unacked_p1_since(None) == unacked_p1_since({}) == unacked_p1_since({"alerts": None}) == []
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    assert unacked_p1_since(alerts.communes[str(C)]) == [T0]


def test_the_repaging_figure_counts_open_alerts_paged_again_after_their_chain() -> None:
    """What binhyen_alerts_repaging / _most_repaged report: P1 waits 5 + 10 min, then re-pages at
    15, 30, 60 min; an ack takes the alert off the figure."""
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    state = alerts.communes[str(C)]
    alerts.tick(C, T0 + 15 * M)
    assert repaged_counts(state) == []  # at the top of the chain, not yet paged there again
    alerts.tick(C, T0 + 31 * M)
    assert repaged_counts(state) == [1]
    alerts.tick(C, T0 + 61 * M)
    assert repaged_counts(state) == [2]
    (alert,) = state["alerts"].values()
    alert["state"] = "acked"
    assert repaged_counts(state) == [] and repaged_counts(None) == []


def test_an_alert_id_names_its_commune_only_in_the_alert_form() -> None:
    assert commune_of_alert(BELL_ALERT) == C
    assert commune_of_alert(f"al-{C}-spike-486") == C
    for other in (f"xx-{C}-0a1b", "al-abc-0a1b", f"al-{C}", "whatever"):
        assert commune_of_alert(other) is None, other


# -- incident rules and the page text --------------------------------------------------------------

def test_each_device_rule_pages_with_its_own_name_and_text() -> None:
    forced = engine().on_incident(*device_incident(T0, "gate_forced"))
    assert steps(forced) == [("raised", "P1", "gate_forced", T0)]
    assert forced[0]["summary"].startswith("Cổng an ninh bị phá — Xã Nghi Xuân, Hà Tĩnh (Phòng giao dịch) — ")
    tamper = engine().on_incident(*device_incident(T0, "tamper"))
    assert steps(tamper) == [("raised", "P2", "device_tamper", T0)]
    assert tamper[0]["summary"].startswith("Thiết bị bị can thiệp (tamper) — Xã Nghi Xuân, Hà Tĩnh")


@pytest.mark.parametrize(("credibility", "category", "expected"), [
    (0.6, "theft", [("raised", "P2", "credible_incident", T0)]),  # exactly credible_p2
    (0.5999, "theft", []),
    (0.85, "fire", [("raised", "P1", "credible_incident", T0)]),  # exactly credible_p1
    (0.8499, "fire", [("raised", "P2", "credible_incident", T0)]),
    (0.99, "hui", []),  # not an urgent category
])
def test_credibility_thresholds_are_inclusive(credibility: float, category: str, expected: list[Any]) -> None:
    assert steps(engine().on_incident(*tip_incident(T0, credibility, category))) == expected


def test_nothing_but_forwarded_copies_never_pages_however_credible() -> None:
    def with_chain_share(share: float) -> tuple[dict[str, Any], dict[str, Any]]:
        incident, snapshot = tip_incident(T0, 0.99, "theft", [{"signal": "chain_message", "contribution": -0.8}])
        return incident, {**snapshot, "features": [{"signal": "chain_message", "value": share}]}

    assert engine().on_incident(*with_chain_share(1.0)) == []
    # one report in three is not a copy: the forwarded ones are backed, and the incident pages by its credibility
    assert steps(engine().on_incident(*with_chain_share(2 / 3))) == [("raised", "P1", "credible_incident", T0)]


def test_the_page_says_what_where_when_how_many_and_the_two_strongest_reasons() -> None:
    incident, snapshot = tip_incident(T0, 0.9, "theft", [
        {"signal": "calibration", "contribution": -2.0}, {"signal": "independent_reporters", "contribution": 1.234},
        {"signal": "new_signal", "contribution": -1.5}, {"signal": "attachments", "contribution": 0.5}])
    incident["members"] = [{"k": "tip", "loc": "nhà chị Lan người báo tin"},  # a sender's words: never paged
                           {"k": "device", "sig": "offline", "dev": "cam-1", "name": "y" * 100},
                           {"k": "device", "sig": "offline", "dev": "cam-2"}, {"k": "device", "sig": "x", "dev": "cam-2"}]
    snapshot["tips"] = 3
    (page,) = engine().on_incident(incident, snapshot)
    assert page["summary"] == ("Tin báo khẩn (theft) — Xã Nghi Xuân, Hà Tĩnh (" + "y" * 80 + ") — lúc 10:00 03/09/2025"
                               " — 3 tin báo, 2 thiết bị — độ tin cậy 0.90 (new_signal -1.5, nhiều người báo độc lập +1.2)")
    (bare,) = engine().on_incident(*tip_incident(T0, 0.95, "fire", commune=99_999_999))
    assert bare["summary"] == ("Tin báo khẩn (fire) — xã 99999999 — lúc 10:00 03/09/2025 — 1 tin báo, 0 thiết bị"
                               " — độ tin cậy 0.95")


def test_a_commune_route_overrides_the_default_route() -> None:
    routed = engine(dataclasses.replace(CONFIG, commune_routes={str(C): "xa-nghi-xuan"}))
    assert routed.on_incident(*device_incident(T0))[0]["route"] == "xa-nghi-xuan"
    assert routed.on_incident(*device_incident(T0, commune=25813))[0]["route"] == "commune-post"


@pytest.mark.parametrize(("local", "delivery"), [((7, 0), "now"), ((6, 59), "digest"), ((20, 59), "now"),
                                                 ((21, 0), "digest")])
def test_office_hours_start_at_seven_and_end_at_nine(local: tuple[int, int], delivery: str) -> None:
    at = int(datetime(2025, 9, 3, *local, tzinfo=VN).timestamp() * 1000)
    (page,) = engine(dataclasses.replace(CONFIG, page_any_hour={})).on_incident(*device_incident(at, "tamper"))
    assert (page["severity"], page["delivery"]) == ("P2", delivery)


# -- the tip spike detector ------------------------------------------------------------------------

def test_the_fifth_tip_in_an_hour_of_a_quiet_commune_is_a_spike() -> None:
    alerts = engine()
    out = [alerts.on_tip(tip(T0 + (40 + i) * M)) for i in range(5)]
    assert out[:4] == [[], [], [], []]
    (spike,) = out[4]
    at = T0 + 44 * M  # named after its hour, 10:00
    assert (spike["alert_id"], spike["state"], spike["severity"], spike["rule"], spike["at_ms"], spike["commune_code"],
            spike["delivery"]) == (f"al-{C}-spike-{at // H}", "raised", "P2", "tip_spike", at, C, "now")
    assert spike["summary"] == "5 người báo trong 60 phút (bình thường 0.0 tin)"


def test_one_sender_pasting_the_same_tip_ten_times_is_no_spike() -> None:
    alerts = engine()
    assert [alerts.on_tip(tip(T0 + i * M // 4, reporter="rp_1")) for i in range(10)] == [[]] * 10
    others = [alerts.on_tip(tip(T0 + 3 * M + i * M, reporter=f"rp_{i + 2}")) for i in range(4)]
    assert others[:3] == [[]] * 3 and [e["summary"] for e in others[3]] == ["5 người báo trong 60 phút (bình thường 0.0 tin)"]


def test_the_spike_threshold_follows_the_baseline() -> None:
    alerts = engine()
    alerts.communes[str(C)] = {"alerts": {}, "recent": [], "baseline": 2.0, "hour": T0 // H, "hour_count": 0,
                               "devices": {}, "watermark": 0, "due": None}
    out = [alerts.on_tip(tip(T0 + i * M)) for i in range(7)]  # threshold: ceil(3 x 2.0 + 1) = 7
    assert out[:6] == [[]] * 6
    assert [(e["rule"], e["summary"]) for e in out[6]] == [("tip_spike", "7 người báo trong 60 phút (bình thường 2.0 tin)")]


def test_a_tip_a_full_window_old_no_longer_counts() -> None:
    alerts = engine()
    for minute in (10, 11, 12, 13):
        assert alerts.on_tip(tip(T0 + minute * M)) == []
    assert alerts.on_tip(tip(T0 + 70 * M)) == []  # the 10:10 tip is 60 minutes old: out of the window
    assert [at for at, _ in alerts.communes[str(C)]["recent"]] == [T0 + 11 * M, T0 + 12 * M, T0 + 13 * M, T0 + 70 * M]


def test_a_tip_read_late_counts_only_the_tips_before_it() -> None:
    alerts = engine()
    assert [alerts.on_tip(tip(T0 + 10 * H + i * M, reporter=f"rp_{i}")) for i in range(4)] == [[]] * 4
    assert alerts.on_tip(tip(T0, reporter="rp_9")) == []  # a day-old tip: the four after it are not its window


def test_a_spike_window_kept_before_senders_were_counts_each_old_tip_once() -> None:
    alerts = engine()
    alerts.communes[str(C)] = {"alerts": {}, "recent": [T0, T0 + M, T0 + 2 * M, T0 + 3 * M], "baseline": 0.0,
                               "hour": T0 // H, "hour_count": 4, "devices": {}, "watermark": 0, "due": None}
    assert [e["rule"] for e in alerts.on_tip(tip(T0 + 4 * M))] == ["tip_spike"]


def test_a_p1_raised_at_the_window_start_explains_the_spike_and_an_older_one_does_not() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0 + 10 * M))
    out = [alerts.on_tip(tip(T0 + minute * M)) for minute in (66, 67, 68, 69, 70)]
    assert out == [[]] * 5  # the fifth tip's window starts at 10:10, when the P1 was raised
    assert [e["rule"] for e in alerts.on_tip(tip(T0 + 71 * M))] == ["tip_spike"]  # now the P1 is older


def test_the_baseline_rolls_by_whole_hours() -> None:
    alerts = engine()
    alerts.on_tip(tip(T0 + 10 * M))
    alerts.on_tip(tip(T0 + 20 * M))
    state = alerts.communes[str(C)]
    assert (state["hour"], state["baseline"], state["hour_count"]) == (T0 // H, 0.0, 2)  # the same hour: no roll

    alerts = engine()
    for minute in range(10):
        alerts.on_tip(tip(T0 + minute * M))
    alerts.on_tip(tip(T0 + 3 * H + 5 * M))  # one hour of 10 tips, then two empty ones
    state = alerts.communes[str(C)]
    assert state["hour"] == T0 // H + 3 and state["hour_count"] == 1
    assert state["baseline"] == pytest.approx(10 * (1 - DECAY) * DECAY ** 2, rel=1e-9)


def test_a_baseline_decays_hour_by_hour_until_it_is_negligible_then_jumps_ahead() -> None:
    alerts = engine()
    alerts.on_tip(tip(T0))
    alerts.on_tip(tip(T0 + 10 * H))
    state = alerts.communes[str(C)]
    assert state["hour"] == T0 // H + 10
    assert state["baseline"] == pytest.approx((1 - DECAY) * DECAY ** 9, rel=1e-9)

    alerts = engine()
    alerts.on_tip(tip(T0))
    alerts.on_tip(tip(T0 + 1000 * H))
    state = alerts.communes[str(C)]
    assert (state["hour"], state["baseline"], state["hour_count"]) == (T0 // H + 1000, 0.0, 1)
    assert set(state) == {"alerts", "recent", "baseline", "hour", "hour_count", "devices", "watermark", "due"}


# -- devices ---------------------------------------------------------------------------------------

def test_a_heartbeat_goes_silent_exactly_at_its_deadline() -> None:
    alerts = engine()
    assert alerts.on_device_signal(signal(T0, "heartbeat")) == []
    assert alerts.next_deadline(C) == T0 + 75 * M
    assert alerts.tick(C, T0 + 75 * M - 1) == []
    silent = alerts.tick(C, T0 + 75 * M)
    assert steps(silent) == [("raised", "P3", "device_health", T0 + 75 * M)]
    assert silent[0]["summary"] == "bell-1: mất tín hiệu" and silent[0]["commune_code"] == C
    assert alerts.tick(C, T0 + 76 * M) == [] and alerts.tick(C, T0 + 77 * M) == []


def test_after_a_silence_the_next_deadline_is_the_next_heartbeat_to_miss() -> None:
    alerts = engine()
    alerts.on_device_signal(signal(T0, "heartbeat", "cam-a"))
    alerts.on_device_signal(signal(T0 + 10 * M, "heartbeat", "cam-b"))
    assert [e["summary"] for e in alerts.tick(C, T0 + 75 * M)] == ["cam-a: mất tín hiệu"]
    assert alerts.next_deadline(C) == T0 + 85 * M


def test_a_signal_at_the_deadline_reports_the_silent_device_first() -> None:
    alerts = engine()
    alerts.on_device_signal(signal(T0, "heartbeat", "cam-a"))
    out = alerts.on_device_signal(signal(T0 + 75 * M, "heartbeat", "cam-b"))
    assert [(e["at_ms"], e["summary"]) for e in out] == [(T0 + 75 * M, "cam-a: mất tín hiệu")]


def test_an_offline_device_is_reported_once_and_leaves_the_silence_watch() -> None:
    alerts = engine()
    alerts.on_device_signal(signal(T0, "heartbeat"))
    out = alerts.on_device_signal(signal(T0 + 10 * M, "offline"))
    assert [(e["rule"], e["summary"]) for e in out] == [("device_health", "bell-1: offline")]
    assert alerts.tick(C, T0 + 75 * M) == []  # its heartbeat deadline passes: nothing more to say
    assert alerts.next_deadline(C) is None  # no heartbeat left to miss, no P1 deadline
    assert alert_state(alerts, out[0]["alert_id"])["summary"] == "bell-1: offline"


def test_battery_low_joins_device_health() -> None:
    out = engine().on_device_signal(signal(T0, "battery_low"))
    assert [(e["severity"], e["rule"], e["summary"]) for e in out] == [("P3", "device_health", "bell-1: battery_low")]


def test_a_device_report_keeps_the_silence_reported_with_it() -> None:
    alerts = engine()
    alerts.on_device_signal(signal(T0, "heartbeat", "cam-a"))
    out = alerts.on_device_signal(signal(T0 + 80 * M, "offline", "cam-b"))
    assert [(e["state"], e["at_ms"], e["summary"]) for e in out] == [("raised", T0 + 75 * M, "cam-a: mất tín hiệu")]


def test_one_device_alert_per_local_day_and_later_devices_join_it() -> None:
    alerts = engine()
    (first,) = alerts.on_device_signal(signal(T0, "offline", "cam-a"))
    assert alerts.on_device_signal(signal(T0 + H, "offline", "cam-b")) == []
    (acked,) = alerts.on_action(action(first["alert_id"], T0 + 2 * H, "ack"))
    assert acked["summary"] == "cam-a: offline; cam-b: offline"
    midnight = int(datetime(2025, 9, 4, 0, 0, tzinfo=VN).timestamp() * 1000)  # 17:00 UTC
    alerts = engine()
    before = alerts.on_device_signal(signal(midnight - M, "offline", "cam-a"))
    after = alerts.on_device_signal(signal(midnight + M, "offline", "cam-b"))
    day = (midnight + 7 * H) // D
    assert [e["alert_id"] for e in before + after] == [f"al-{C}-devices-{day - 1}", f"al-{C}-devices-{day}"]


@pytest.mark.parametrize(("second", "summary"), [
    ("e" * 200, "d" * 180 + ": offline; " + "e" * 200 + ": offline"),  # exactly 400 characters: kept
    ("e" * 201, "d" * 180 + ": offline"),  # 401: the summary stays as it was
])
def test_a_joined_summary_stops_at_400_characters(second: str, summary: str) -> None:
    alerts = engine()
    (first,) = alerts.on_device_signal(signal(T0, "offline", "d" * 180))
    alerts.on_device_signal(signal(T0 + M, "offline", second))
    assert alert_state(alerts, first["alert_id"])["summary"] == summary


# -- actions, verdicts, deadlines, forgetting ------------------------------------------------------

def test_an_escalate_action_routes_to_the_province_and_ends_the_ack_deadline() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    (escalated,) = alerts.on_action(action(BELL_ALERT, T0 + M, "escalate"))
    assert (escalated["state"], escalated["route"], escalated["by"], escalated["at_ms"], escalated["commune_code"]) == (
        "escalated", "province-duty", "ca-truc-ban", T0 + M, C)
    assert alert_state(alerts, BELL_ALERT)["state"] == "escalated"
    assert alerts.tick(C, T0 + 6 * M) == []


def test_a_second_ack_changes_nothing_and_every_action_is_written_back() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    alerts.communes.writes.clear()
    assert [e["state"] for e in alerts.on_action(action(BELL_ALERT, T0 + M, "ack"))] == ["acked"]
    assert alerts.on_action(action(BELL_ALERT, T0 + 2 * M, "ack")) == []
    assert alerts.communes.writes == [str(C), str(C)]
    assert alerts.tick(C, T0 + 6 * M) == []
    assert len(alerts.history(C, "inc-0a1b")) == 2


def test_a_verdict_first_escalates_an_overdue_p1_then_resolves_it() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    alerts.communes.writes.clear()
    out = alerts.resolve_incident(C, "inc-0a1b", T0 + 10 * M, "báo sai")
    assert [(e["state"], e["at_ms"], e["commune_code"]) for e in out] == [("escalated", T0 + 5 * M, C),
                                                                           ("resolved", T0 + 10 * M, C)]
    assert out[1]["summary"].endswith(" — chưa xác nhận sau 5 phút; báo sai")
    assert alerts.communes.writes == [str(C)]
    assert alert_state(alerts, BELL_ALERT)["state"] == "resolved"
    assert alerts.next_deadline(C) == T0 + 10 * M + 2 * D  # only its forgetting is left
    assert alerts.resolve_incident(C, "inc-0a1b", T0 + 11 * M, "báo sai") == []


def test_a_resolved_alert_is_forgotten_two_days_after_it_closed() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    out = alerts.resolve_incident(C, "inc-0a1b", T0 + 2 * M, "trùng lặp")
    assert steps(out) == [("resolved", "P1", "panic_bell", T0 + 2 * M)]
    assert alerts.next_deadline(C) == T0 + 2 * M + 2 * D  # no ack deadline left, forgotten from its close
    assert alerts.tick(C, T0 + 6 * M) == []
    assert alerts.tick(C, T0 + 2 * M + 2 * D - 1) == []
    assert len(alerts.history(C, "inc-0a1b")) == 2
    assert alerts.tick(C, T0 + 2 * M + 2 * D) == []
    assert alerts.history(C, "inc-0a1b") == [] and alerts.next_deadline(C) is None


def test_an_overdue_p1_escalates_at_its_deadline_to_the_province() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    assert alerts.tick(C, T0 + 5 * M - 1) == []
    (late,) = alerts.tick(C, T0 + 5 * M)
    assert (late["state"], late["at_ms"], late["route"], late["commune_code"]) == (
        "escalated", T0 + 5 * M, "province-duty", C)
    assert late["summary"].endswith(" — chưa xác nhận sau 5 phút")
    state = alert_state(alerts, BELL_ALERT)  # the province desk has its own 10 minutes before the command
    assert (state["state"], state["deadline"], state["route"], state["step"]) == (
        "escalated", T0 + 15 * M, "province-duty", 1)


def test_a_tick_on_a_commune_with_nothing_due_does_nothing() -> None:
    alerts = engine()
    assert alerts.tick(C, T0) == [] and alerts.tick(C, T0 + M) == []


def test_stronger_evidence_escalates_a_p2_at_its_moment_with_a_new_ack_deadline() -> None:
    """At its moment, by the tick (the timer, or event time offline): a deadline or an ack before
    it must come first, and in the worker an ack may still be on its way when the evidence is read."""
    alerts = engine()
    alerts.on_incident(*device_incident(T0, "tamper"))
    assert alerts.next_deadline(C) == T0 + 15 * M  # a P2 waits 15 minutes at the commune post
    assert alerts.on_incident(*device_incident(T0 + 3 * M)) == []
    assert alerts.next_deadline(C) == T0 + 3 * M
    (up,) = alerts.tick(C, T0 + 3 * M)
    assert (up["state"], up["severity"], up["rule"], up["at_ms"], up["commune_code"]) == (
        "escalated", "P1", "panic_bell", T0 + 3 * M, C)
    state = alert_state(alerts, BELL_ALERT)
    assert (state["state"], state["rule"], state["updated"]) == ("escalated", "panic_bell", T0 + 3 * M)
    assert alerts.next_deadline(C) == T0 + 8 * M
    assert [(e["state"], e["at_ms"]) for e in alerts.tick(C, T0 + 8 * M)] == [("escalated", T0 + 8 * M)]


def test_an_acked_alert_escalated_by_new_evidence_gets_no_new_deadline() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0, "tamper"))
    alerts.on_action(action(BELL_ALERT, T0 + M, "ack"))
    assert alerts.on_incident(*device_incident(T0 + 3 * M)) == []
    assert [(e["state"], e["severity"]) for e in alerts.tick(C, T0 + 3 * M)] == [("escalated", "P1")]
    assert alerts.next_deadline(C) is None
    assert alerts.tick(C, T0 + 9 * M) == []


def test_a_resolved_alert_is_not_escalated_by_new_evidence() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0, "tamper"))
    alerts.on_action(action(BELL_ALERT, T0 + M, "resolve"))
    assert alerts.on_incident(*device_incident(T0 + 3 * M)) == []


def test_parked_actions_apply_at_the_raise_in_event_time_order() -> None:
    alerts = engine()
    alerts.on_action(action(BELL_ALERT, T0, "ack"))  # dated at the raise itself: it applies
    assert [(e["state"], e["at_ms"], e["commune_code"]) for e in alerts.on_incident(*device_incident(T0))] == [
        ("raised", T0, C), ("acked", T0, C)]

    alerts = engine()
    alerts.on_action(action(BELL_ALERT, T0 + 2 * M, "ack"))  # read first, happened later
    alerts.on_action(action(BELL_ALERT, T0 + M, "resolve"))
    assert [e["state"] for e in alerts.on_incident(*device_incident(T0))] == ["raised", "resolved"]

    alerts = engine()
    alerts.on_action(action(BELL_ALERT, T0 + M, "resolve"))  # the same moment: the order they were read
    alerts.on_action(action(BELL_ALERT, T0 + M, "ack"))
    assert [e["state"] for e in alerts.on_incident(*device_incident(T0))] == ["raised", "resolved"]


def test_a_parked_action_is_forgotten_after_exactly_a_day() -> None:
    other = f"al-{C}-ffff"
    alerts = engine()
    alerts.on_action(action(BELL_ALERT, T0, "ack"))
    alerts.on_action(action(other, T0 + D - 1, "ack"))
    assert list(alerts.communes[str(C)]["parked_actions"]) == [BELL_ALERT, other]
    alerts = engine()
    alerts.on_action(action(BELL_ALERT, T0, "ack"))
    alerts.on_action(action(other, T0 + D, "ack"))  # a day later: the first is forgotten
    assert alerts.communes[str(C)]["parked_actions"] == {other: [[T0 + D, "ack", "ca-truc-ban"]]}
    alerts = engine()
    alerts.on_device_signal(signal(T0, "heartbeat"))
    alerts.on_action(action(BELL_ALERT, T0, "ack"))
    alerts.tick(C, T0 + D)  # a tick with something due forgets them too
    assert alerts.communes[str(C)]["parked_actions"] == {}


def test_a_closed_alert_is_forgotten_from_the_action_that_closed_it() -> None:
    alerts = engine()
    raised = alerts.on_incident(*device_incident(T0))
    steps = alerts.on_action(action(BELL_ALERT, T0 + D, "resolve"))  # a day later (its deadlines passed first)
    assert [(e["state"], e["route"]) for e in steps] == [
        ("escalated", "province-duty"), ("escalated", "command"), *[("escalated", "command")] * 5,
        ("resolved", "command")]  # paged again until somebody acted
    # a day with no tick (a stopped worker, a replay of old days): the pages it missed at the top,
    # every 240 minutes from 480 on, are one page at the last of them
    assert [(e["at_ms"] - T0) // M for e in steps[2:-1]] == [30, 60, 120, 240, 1440]
    assert alerts.next_deadline(C) == T0 + 3 * D
    assert alerts.tick(C, T0 + 2 * D + M) == []
    # kept for re-emission, bounded: the raise and the last seven steps
    assert alerts.history(C, "inc-0a1b") == raised + steps[-7:]


def test_a_tick_for_another_alert_keeps_a_closed_alert_until_its_time() -> None:
    alerts = engine()
    alerts.on_incident(*device_incident(T0))
    alerts.resolve_incident(C, "inc-0a1b", T0 + 2 * M, "trùng lặp")
    alerts.on_incident(*device_incident(T0 + H, incident_id="inc-0a1c"))
    assert [e["state"] for e in alerts.tick(C, T0 + H + 5 * M)] == ["escalated"]  # the second P1's deadline
    assert len(alerts.history(C, "inc-0a1b")) == 2  # the first, closed an hour ago, is still there


def test_an_alert_config_without_a_doc_line_parses() -> None:
    import json

    raw = json.loads(DEFAULT_ALERT_CONFIG.read_text(encoding="utf-8"))
    raw.pop("doc")
    assert AlertConfig.parse(json.dumps(raw)) == AlertConfig.load(DEFAULT_ALERT_CONFIG)



@pytest.mark.parametrize("ticked_first", [True, False], ids=["tick-first", "signal-first"])
def test_a_device_signal_joins_the_same_alert_whether_or_not_the_digest_tick_came_first(ticked_first: bool) -> None:
    """Last night's battery alert is held for the 07:00 digest and closes quiet three hours later; a
    battery_low at 13:07 opens a new alert — also on a worker whose timer has not ticked the commune
    since the night (the tick lags behind device signals under load; offline, an event is handled
    before the tick at its time). Each alert's steps are the same in both orders."""
    alerts = engine(AlertConfig.load(DEFAULT_ALERT_CONFIG))
    night, later = T0 - 10 * H + 8 * M, T0 + 3 * H + 7 * M  # 00:08 and 13:07

    def signal(at: int, device: str) -> list[dict[str, Any]]:
        return alerts.on_device_signal({"commune_code": C, "occurred_at_ms": at, "device_id": device,
                                        "signal": "battery_low"})

    assert [(e["state"], e["delivery"]) for e in signal(night, "bell-5")] == [("raised", "digest")]
    if ticked_first:
        events = alerts.tick(C, later) + signal(later, "bell-11")
    else:
        events = signal(later, "bell-11") + alerts.tick(C, later)
    by_alert: dict[str, list[tuple[Any, ...]]] = {}
    for e in events:
        by_alert.setdefault(e["alert_id"], []).append((e["rule"], e["state"], (e["at_ms"] - night) // M))
    assert sorted(by_alert.values()) == [
        [("device_health", "raised", 12 * 60 + 59)],  # 13:07: a new alert, not a line on the quiet one
        [("device_health", "resolved", 9 * 60 + 52)],  # 10:00: quiet three hours after the digest was read
        [("morning_digest", "raised", 6 * 60 + 52), ("morning_digest", "resolved", 9 * 60 + 52)]]  # 07:00


@pytest.mark.parametrize("ticked_first", [True, False], ids=["tick-first", "signal-first"])
def test_a_device_signal_after_the_digest_keeps_the_held_alert_open_until_three_hours_after_it(
        ticked_first: bool) -> None:
    """A battery_low at 08:00 joins last night's alert (un-held at 07:00) in either order, and the
    alert is quiet from 08:00, not from the digest: it closes at 11:00."""
    alerts = engine(AlertConfig.load(DEFAULT_ALERT_CONFIG))
    night, morning = T0 - 10 * H + 8 * M, T0 - 2 * H  # 00:08 and 08:00

    def signal(at: int, device: str) -> list[dict[str, Any]]:
        return alerts.on_device_signal({"commune_code": C, "occurred_at_ms": at, "device_id": device,
                                        "signal": "battery_low"})

    signal(night, "bell-5")
    if ticked_first:
        alerts.tick(C, morning)
    assert signal(morning, "bell-11") == []  # joined
    closed = [e for e in alerts.tick(C, T0 + 2 * H) if e["rule"] == "device_health"]
    assert [(e["state"], (e["at_ms"] - morning) // M) for e in closed] == [("resolved", 180)]
