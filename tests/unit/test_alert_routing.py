"""Pages officers can act on (issue 16): the escalation chain with a wait per step, the staff
registry as the only valid `by`, urgent kinds paged at any hour, one held digest at the start of
office hours, repeated presses extending one trigger, and quiet alerts resolving themselves."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.meaning import MeaningModel
from processors.offline import OfflineRun
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.staff import StaffRegistry
from processors.validation import parse_contract
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG, \
    DEFAULT_STAFF_CONFIG
from tests import builders
from tests.builders import alert_action, at

CREDIBILITY = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
ALERTING = AlertConfig.load(DEFAULT_ALERT_CONFIG)
STAFF = StaffRegistry.load(DEFAULT_STAFF_CONFIG)
MEANING = MeaningModel.load(DEFAULT_MEANING_CONFIG)
NGHI_XUAN = 18352  # Hà Tĩnh (province 42)
PHUOC_LONG = 31867  # Cà Mau (province 96)
KNIFE_FIGHT = "Đánh nhau ở quán nhậu Hồng Phúc khu phố 4, khoảng 5 người cầm dao, có người bị thương"
THEFT = "Mất trộm xe máy Honda Wave màu đỏ trước cửa nhà số 12 đường Trần Phú, kẻ gian bẻ khóa"
DRUGS = "Có nhóm thanh niên sử dụng ma túy đá tại nhà trọ Minh Anh, phòng 5"


def run(events: list[dict[str, Any]], config: AlertConfig = ALERTING,
        staff: StaffRegistry | None = None) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The alert events, and each event's reason for not being applied (None when it was)."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, config, staff=staff)
    alerts, unapplied = [], []
    for event in events:
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        result = processor.handle(event_type, record)
        alerts += result.alerts
        unapplied.append(result.unapplied)
    return alerts, unapplied


def press(event_id: str, when: str, commune: int = NGHI_XUAN, signal: str = "panic_pressed",
          kind: str = "alarm_bell") -> dict[str, Any]:
    return builders.device_signal(event_id, when, commune, "bell-1", signal, kind, site_name="Ngân hàng Agribank")


def steps(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(a["state"], a["rule"], a["route"], a["at_ms"] and a["delivery"]) for a in alerts]


# -- the escalation chain ---------------------------------------------------------------------------

def test_an_unacked_p1_climbs_the_chain_one_step_per_wait_and_is_paged_again_at_the_top() -> None:
    bell = press("p1", at(21, 0))
    alerts, _ = run([bell, builders.tip("later", at(23, 0), commune=PHUOC_LONG)])
    bells = [a for a in alerts if a["rule"] == "panic_bell"]
    assert [(a["state"], a["route"], (a["at_ms"] - bells[0]["at_ms"]) // 60_000) for a in bells] == [
        ("raised", "commune-post", 0), ("escalated", "province-duty", 5),  # the post waits 5 min, the desk 10
        ("escalated", "command", 15), ("escalated", "command", 30), ("escalated", "command", 60),
        ("escalated", "command", 120)]  # then the command again after 15, 30, 60 minutes: nobody answered
    assert [a["summary"].rsplit(" — ", 1)[-1] for a in bells[3:]] == [
        f"nhắc lại lần {n}: chưa ai xác nhận" for n in (1, 2, 3)]


def test_a_commune_route_is_the_first_step_and_the_chain_goes_on_from_there() -> None:
    config = dataclasses.replace(ALERTING, commune_routes={str(NGHI_XUAN): "xa-nghi-xuan"})
    alerts, _ = run([press("p1", at(21, 0)), builders.tip("later", at(21, 6), commune=PHUOC_LONG)], config)
    assert [a["route"] for a in alerts if a["rule"] == "panic_bell"] == ["xa-nghi-xuan", "province-duty"]


def test_escalating_by_hand_moves_one_step_and_the_next_desk_gets_its_own_wait() -> None:
    alerts, _ = run([press("p1", at(21, 0))])
    alert_id = alerts[0]["alert_id"]
    alerts, _ = run([press("p1", at(21, 0)), alert_action("a1", at(21, 1), alert_id, "escalate"),
                     builders.tip("later", at(21, 12), commune=PHUOC_LONG)])
    assert [(a["state"], a["route"], a["at"] if "at" in a else a["at_ms"] - alerts[0]["at_ms"]) for a in alerts] == [
        ("raised", "commune-post", 0), ("escalated", "province-duty", 60_000),
        ("escalated", "command", 11 * 60_000)]  # 10 minutes after the hand-off, not after the raise


def test_a_config_of_the_first_version_reads_as_a_two_step_chain() -> None:
    old = {"version": "alerts-1", "credible_p1": 0.85, "credible_p2": 0.6, "urgent_categories": ["fight"],
           "p1_ack_minutes": 5, "spike_window_minutes": 60, "spike_min_tips": 5, "spike_factor": 3.0,
           "baseline_half_life_hours": 72, "heartbeat_missing_minutes": 75, "office_hours": [7, 21],
           "utc_offset_minutes": 420, "commune_routes": {},
           "routes": {"default": "commune-post", "escalated": "province-duty", "digest": "morning-digest"}}
    config = AlertConfig.parse(json.dumps(old))
    assert config.escalation == [{"route": "commune-post", "ack_minutes": {"P1": 5}}, {"route": "province-duty"}]
    assert (config.wait_ms(0, "P1"), config.wait_ms(0, "P2"), config.wait_ms(1, "P1")) == (300_000, None, None)
    assert (config.page_any_hour, config.auto_resolve_minutes) == ({}, {})  # as it behaved


# -- who may act ------------------------------------------------------------------------------------

def test_only_registry_staff_covering_the_commune_may_act_and_a_refusal_says_why() -> None:
    bell = press("p1", at(21, 0))
    alert_id = run([bell])[0][0]["alert_id"]
    for by, why in (("ca-truc-ban", "'ca-truc-ban' is not in the staff registry (staff-2); an action's `by` must "
                                    "be a staff id from it"),
                    ("ca-tinh-ca-mau-truc-ban", "staff ca-tinh-ca-mau-truc-ban has no jurisdiction over commune 18352")):
        alerts, unapplied = run([bell, alert_action("a1", at(21, 2), alert_id, "ack", by=by)], staff=STAFF)
        assert unapplied == [None, f"ack on {alert_id} refused: {why}"]
        assert [a["state"] for a in alerts] == ["raised"]  # nothing applied
    for by in ("ca-xa-ha-tinh-truc", "ca-tinh-ha-tinh-truc-ban", "bo-chi-huy-truc"):  # province, province, country
        alerts, unapplied = run([bell, alert_action("a1", at(21, 2), alert_id, "ack", by=by)], staff=STAFF)
        assert unapplied == [None, None] and [(a["state"], a["by"]) for a in alerts] == [("raised", None),
                                                                                           ("acked", by)]


def test_binhyen_process_rejects_a_refused_action_as_the_worker_dead_letters_it() -> None:
    bell = press("p1", at(21, 0))
    alert_id = run([bell])[0][0]["alert_id"]
    offline = OfflineRun.create(Pseudonymiser(b"k" * 32), CREDIBILITY, ALERTING, MEANING, STAFF)
    lines = list(offline.process([json.dumps(bell), json.dumps(alert_action("a1", at(21, 2), alert_id, "ack",
                                                                            by="someone"))]))
    (rejected,) = [line for line in lines if line.get("status") == "rejected"]
    assert (rejected["event_id"], rejected["line"]) == ("a1", 2)
    assert rejected["reason"].startswith(f"ack on {alert_id} refused: 'someone' is not in the staff registry")


# -- quiet hours ------------------------------------------------------------------------------------

def test_urgent_kinds_page_at_any_hour_whatever_their_severity() -> None:
    fight = [builders.tip(f"f{i}", at(23, 12 + i), KNIFE_FIGHT, NGHI_XUAN, category="fight",
                          reporter_contact=f"+8491200000{i}", channel=channel)
             for i, channel in ((1, "hotline"), (2, "zalo"))]
    alerts, _ = run(fight)  # the first report alone is for the morning shift; the second makes it credible: now
    assert [(a["state"], a["severity"], a["rule"], a["delivery"]) for a in alerts] == [
        ("raised", "P3", "night_report", "digest"), ("escalated", "P2", "credible_incident", "now")]
    tamper, _ = run([press("c1", at(2, 0), signal="tamper", kind="camera")])
    assert [(a["severity"], a["rule"], a["delivery"]) for a in tamper] == [("P2", "device_tamper", "now")]
    quiet_rules = dataclasses.replace(ALERTING, page_any_hour={})
    tamper, _ = run([press("c1", at(2, 0), signal="tamper", kind="camera")], quiet_rules)
    assert [a["delivery"] for a in tamper] == ["digest"]


def night_report(event_id: str, hh: int, mm: int, text: str = THEFT, category: str = "theft",
                 place: str | None = "số 12 Trần Phú") -> list[dict[str, Any]]:
    """Two reporters of one theft (or drug use), no photo: a credible P2, not urgent at night."""
    return [builders.tip(f"{event_id}{i}", at(hh, mm + i), text, NGHI_XUAN, category=category, channel=channel,
                         reporter_contact=f"+849130000{i}{hh:02d}", **({"location_text": place} if place else {}))
            for i, channel in ((0, "hotline"), (1, "zalo"))]


def test_what_is_held_at_night_goes_out_once_as_one_digest_at_seven() -> None:
    config = ALERTING  # held alerts do not go quiet before anyone read them (180 minutes < the night)
    events = night_report("a", 22, 0) + night_report("b", 23, 30, DRUGS, "drugs", None)
    held, _ = run(events, config)  # each: the first report a P3 for the morning, the second a credible P2
    assert held and {a["delivery"] for a in held} == {"digest"}
    assert [(a["state"], a["severity"]) for a in held] == [("raised", "P3"), ("escalated", "P2")] * 2
    held_ids = list(dict.fromkeys(a["alert_id"] for a in held))
    assert len(held_ids) == 2
    morning = events + [builders.tip("x", at(6, 59, day=4), commune=PHUOC_LONG),
                        builders.tip("y", at(7, 0, day=4), commune=PHUOC_LONG),
                        builders.tip("z", at(9, 0, day=4), commune=PHUOC_LONG),
                        builders.tip("w", at(10, 30, day=4), commune=PHUOC_LONG)]
    alerts, _ = run(morning, config)
    digests = [a for a in alerts if a["rule"] == "morning_digest"]
    assert [(a["state"], a["severity"], a["route"], a["delivery"], a["at_ms"]) for a in digests] == [
        ("raised", "P3", "commune-post", "now", 1756944000000),  # 07:00 on the 4th, Vietnam time: once
        ("resolved", "P3", "commune-post", "now", 1756954800000)]  # and quiet itself after 180 minutes
    summary = digests[0]["summary"]
    assert summary.startswith("Tổng hợp đầu giờ 07:00 04/09: 2 cảnh báo ngoài giờ chưa xử lý — [P2] ")
    assert all(alert_id in summary for alert_id in held_ids)
    assert "+849" not in summary and THEFT not in summary  # no reporter, no tip text
    # nobody answered the digest's pages: each climbs the chain from 07:00, none closes itself
    assert [a for a in alerts if a["state"] == "resolved" and a["alert_id"] in held_ids] == []
    for alert_id in held_ids:
        climbed = [(a["route"], (a["at_ms"] - 1756944000000) // 60_000) for a in alerts
                   if a["alert_id"] == alert_id and a["state"] == "escalated" and a["at_ms"] >= 1756944000000]
        assert climbed == [("province-duty", 15), ("command", 45), ("command", 75), ("command", 135)], climbed


def test_a_held_alert_closed_before_morning_is_left_out_and_none_left_means_no_digest() -> None:
    config = dataclasses.replace(ALERTING, auto_resolve_minutes={})
    events = night_report("a", 22, 0)
    alert_id = run(events, config)[0][0]["alert_id"]
    closed = events + [alert_action("r1", at(23, 0), alert_id, "resolve"),
                       builders.tip("y", at(8, 0, day=4), commune=PHUOC_LONG)]
    alerts, _ = run(closed, config)
    assert [a for a in alerts if a["rule"] == "morning_digest"] == []


# -- one trigger, and quiet alerts ------------------------------------------------------------------

def test_presses_within_the_gap_of_the_last_extend_one_trigger_and_a_later_one_pages_again() -> None:
    presses = [press(f"p{m}", at(10, m)) for m in (0, 1, 2, 5)]
    alerts, _ = run(presses)
    assert [(a["state"], a["rule"]) for a in alerts if a["state"] == "raised"] == [("raised", "panic_bell")]
    assert len({a["alert_id"] for a in alerts}) == 1  # 10:05 extends the trigger of 10:00-10:02: one page
    alerts, _ = run(presses + [press("p20", at(10, 20))])  # 15 minutes after the last press: a new trigger
    assert [(a["state"], a["rule"]) for a in alerts if a["state"] == "raised"] == [("raised", "panic_bell")] * 2


def test_an_alert_with_no_activity_for_its_window_resolves_itself_saying_so() -> None:
    bell = press("p1", at(10, 0))
    alert_id = run([bell])[0][0]["alert_id"]
    acked = [bell, alert_action("a1", at(10, 2), alert_id, "ack")]
    alerts, _ = run(acked + [builders.tip("z", at(13, 3), commune=PHUOC_LONG)])
    (resolved,) = [a for a in alerts if a["state"] == "resolved"]
    assert resolved["at_ms"] - alerts[0]["at_ms"] == (2 + 180) * 60_000  # 180 quiet minutes after the ack
    assert resolved["summary"].endswith("; tự đóng: không có hoạt động trong 180 phút")
    alerts, _ = run(acked + [press("p2", at(10, 9)), builders.tip("z", at(13, 3), commune=PHUOC_LONG)])
    assert [a["state"] for a in alerts] == ["raised", "acked"]  # a press at 10:09 is activity: open till 13:09


def test_the_held_digest_survives_a_restart_between_night_and_morning() -> None:
    """The worker keeps the held list in the commune's alert state (a changelogged table): a
    processor rebuilt from that state after the night sends the same one digest."""
    config = dataclasses.replace(ALERTING, auto_resolve_minutes={})
    night = night_report("a", 22, 0)
    morning = [builders.tip("y", at(7, 30, day=4), commune=PHUOC_LONG)]
    straight, _ = run(night + morning, config)
    before = EventProcessor(ProcessorState(), CREDIBILITY, config)
    for event in night:
        before.handle(*parse_contract(event, Pseudonymiser(b"k" * 32))[:2])
    saved = {name: json.loads(json.dumps(dict(getattr(before.state, name))))
             for name in ("communes", "reputation", "chains", "alerts", "origins")}
    after = EventProcessor(ProcessorState(**saved), CREDIBILITY, config, global_ticks=False)
    seven = int(datetime.fromisoformat(at(7, 0, day=4)).timestamp() * 1000)
    fired = after.alerting.tick(NGHI_XUAN, int(datetime.fromisoformat(at(7, 30, day=4)).timestamp() * 1000))
    assert fired == [a for a in straight if a["at_ms"] >= seven]  # the digest, then its page climbing
    assert [a["rule"] for a in fired] == ["morning_digest", "credible_incident"]
    later = after.alerting.tick(NGHI_XUAN, int(datetime.fromisoformat(at(9, 0, day=4)).timestamp() * 1000))
    assert "morning_digest" not in [a["rule"] for a in later]  # one digest a morning


def test_the_alert_command_refuses_at_once_what_the_worker_would_refuse(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    binhyen = Path(sys.executable).parent / "binhyen"
    result = subprocess.run([binhyen, "alert", "ack", "al-18352-0a1b", "--by", "ca-tinh-ca-mau-truc-ban"],
                            capture_output=True, text=True, env={**os.environ, "BINHYEN_STATE_DIR": str(tmp_path)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == ("binhyen: ack al-18352-0a1b refused: staff ca-tinh-ca-mau-truc-ban has no "
                                     "jurisdiction over commune 18352")


def test_a_late_tick_fires_what_the_tick_itself_raised_and_leaves_nothing_due() -> None:
    """A commune quiet for a day: its silent device is reported at its moment (10:15) and that
    alert is quiet by the tick (13:15): one tick does both, in event time, and leaves nothing due
    before the tick — the offline run refuses a tick that would (the corpus test found it)."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False)
    beat = builders.device_signal("h1", at(9, 0), NGHI_XUAN, "cam-1", "heartbeat", "camera")
    processor.handle(*parse_contract(beat, Pseudonymiser(b"k" * 32))[:2])
    now = int(datetime.fromisoformat(at(9, 0, day=5)).timestamp() * 1000)
    fired = processor.alerting.tick(NGHI_XUAN, now)
    assert [(a["state"], a["rule"], a["at_ms"] - fired[0]["at_ms"]) for a in fired] == [
        ("raised", "device_health", 0), ("resolved", "device_health", 180 * 60_000)]
    assert fired[0]["at_ms"] == int(datetime.fromisoformat(at(10, 15)).timestamp() * 1000)
    due = processor.alerting.next_deadline(NGHI_XUAN)
    assert due is None or due > now


def test_a_p1_raised_after_a_burst_of_tips_does_not_explain_it_away_when_read_first() -> None:
    """Replayed history, or a partition ahead: the bell of 12:00 is read before the tips of 10:00.
    Only a P1 raised within the window before the burst explains it (the answer must not depend
    on which was read first)."""
    tips = [builders.tip(f"t{i}", at(10, i), f"{text} số {i}", NGHI_XUAN, category=category)
            for i, (category, text) in enumerate((("gambling", "Đánh bạc ở lán trại cuối xóm"),
                                                  ("fraud", "Giả danh điện lực gọi đòi tiền"),
                                                  ("traffic", "Xe tải rơi đất trên đường liên xã"),
                                                  ("lost_property", "Mất ví ở chợ đêm"),
                                                  ("other", "Mở loa quá lớn ở nhà văn hóa")))]
    read_in_order, _ = run(tips + [press("p1", at(12, 0))])
    bell_first, _ = run([press("p1", at(12, 0))] + tips)
    assert [a["rule"] for a in read_in_order if a["state"] == "raised"] == ["tip_spike", "panic_bell"]
    assert sorted(a["rule"] for a in bell_first if a["state"] == "raised") == ["panic_bell", "tip_spike"]
    explained, _ = run([press("p1", at(9, 30))] + tips)  # a bell 30 minutes before: the burst is about it
    assert [a["rule"] for a in explained if a["state"] == "raised"] == ["panic_bell"]


def test_a_verdict_after_an_acked_alert_went_quiet_finds_it_resolved_already() -> None:
    tamper = press("c1", at(10, 0), signal="tamper", kind="camera")
    alerts, _ = run([tamper])
    (raised,) = alerts
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False)
    processor.handle(*parse_contract(tamper, Pseudonymiser(b"k" * 32))[:2])
    processor.handle(*parse_contract(alert_action("a1", at(10, 2), raised["alert_id"], "ack"),
                                     Pseudonymiser(b"k" * 32))[:2])
    late = raised["at_ms"] + 4 * 3_600_000
    out = processor.alerting.resolve_incident(NGHI_XUAN, raised["incident_id"], late, "báo sai")
    assert [(a["state"], a["at_ms"] - raised["at_ms"]) for a in out] == [("resolved", (2 + 180) * 60_000)]
    assert out[0]["summary"].endswith("tự đóng: không có hoạt động trong 180 phút")
