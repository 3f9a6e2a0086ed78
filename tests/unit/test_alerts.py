"""Alert rules, one alert per incident, escalation, actions, spikes, devices, quiet hours."""

from __future__ import annotations

from typing import Any

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from processors.staff import StaffRegistry
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_STAFF_CONFIG
from tests import builders
from tests.builders import alert_action, at, device_signal

CREDIBILITY = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
ALERTING = AlertConfig.load(DEFAULT_ALERT_CONFIG)
COMMUNE = 18352


def press(event_id: str, when: str, device: str = "bell-1", signal: str = "panic_pressed", **extra: Any) -> dict:
    return device_signal(event_id, when, COMMUNE, device, signal, **{"site_name": "Phòng giao dịch ngân hàng", **extra})


def tip(event_id: str, when: str, text: str, commune: int = COMMUNE, **extra: Any) -> dict:
    return builders.tip(event_id, when, text, commune, **extra)


def action(event_id: str, when: str, alert_id: str, verb: str) -> dict:
    return alert_action(event_id, when, alert_id, verb)


def run(events: list[dict]) -> list[dict[str, Any]]:
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    alerts = []
    for event in events:
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        alerts += processor.handle(event_type, record).alerts
    return alerts


def steps(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["state"], a["severity"], a["rule"]) for a in alerts]


def test_a_panic_bell_pages_p1_at_once_even_at_night() -> None:
    alerts = run([press("p1", at(3, 0))])
    assert steps(alerts) == [("raised", "P1", "panic_bell")]
    assert alerts[0]["delivery"] == "now" and alerts[0]["route"] == "commune-post"
    assert alerts[0]["config_version"] == ALERTING.version == "alerts-3"  # the rules that decided it
    assert alerts[0]["at_ms"] == 1756843200000  # the press itself, no waiting
    assert alerts[0]["alert_id"] == f"al-{COMMUNE}-" + alerts[0]["incident_id"].removeprefix("inc-")


def test_five_presses_and_a_matching_tip_page_once() -> None:
    events = [press(f"p{i}", at(21, 2, i * 4)) for i in range(5)]
    events.append(tip("t1", at(21, 3), "Có cướp tại phòng giao dịch ngân hàng, đối tượng cầm dao", category="theft"))
    events.append(action("a1", at(21, 4), "?", "ack"))  # an id staff mistyped: no effect
    assert steps(run(events)) == [("raised", "P1", "panic_bell")]


def test_an_unacknowledged_p1_escalates_and_an_acked_one_does_not() -> None:
    first = run([press("p1", at(21, 0)), tip("later", at(21, 20), "chuyện khác ở chợ", commune=25813)])
    assert steps(first) == [("raised", "P1", "panic_bell"), ("escalated", "P1", "panic_bell"),
                            ("escalated", "P1", "panic_bell")]  # commune post 5 min, province desk 10 min
    assert [a["at_ms"] - first[0]["at_ms"] for a in first] == [0, 5 * 60_000, 15 * 60_000]
    assert [a["route"] for a in first] == ["commune-post", "province-duty", "command"]
    alert_id = first[0]["alert_id"]
    acked = run([press("p1", at(21, 0)), action("a1", at(21, 3), alert_id, "ack"),
                 tip("later", at(21, 30), "chuyện khác ở chợ", commune=25813),
                 action("a2", at(21, 40), alert_id, "resolve"), action("a3", at(21, 41), alert_id, "ack")])
    assert steps(acked) == [("raised", "P1", "panic_bell"), ("acked", "P1", "panic_bell"),
                            ("resolved", "P1", "panic_bell")]
    assert acked[1]["by"] == "bo-chi-huy-truc"


def test_a_credible_urgent_incident_escalates_as_evidence_arrives() -> None:
    text = "Đánh nhau ở quán nhậu Hồng Phúc khu phố 4, khoảng 5 người cầm dao, có người bị thương"
    events = [tip("t1", at(10, 0), text, category="fight", location_text="quán nhậu Hồng Phúc, khu phố 4")]
    events += [tip(f"t{i}", at(10, i), text.lower(), channel=channel, reporter_contact=f"+8491100000{i}")
               for i, channel in ((2, "hotline"), (3, "facebook"))]
    alerts = run(events)
    assert [a["state"] for a in alerts][:2] == ["raised", "escalated"]
    assert alerts[0]["severity"] == "P2" and alerts[1]["severity"] == "P1"
    assert len({a["alert_id"] for a in alerts}) == 1  # one alert for the incident


def test_a_chain_message_never_pages() -> None:
    text = "Cảnh báo: có nhóm bắt cóc trẻ em đi xe 7 chỗ màu trắng, chia sẻ ngay cho mọi người"
    events = [tip(f"c{i}", at(10, i), text, commune=commune, category="missing_person")
              for i, commune in enumerate((25813, 26680, 31951, 18352, 31885))]
    assert [a for a in run(events) if a["severity"] == "P1"] == []


def test_a_tip_spike_raises_p2_unless_a_p1_explains_it() -> None:
    burst = [tip(f"s{i}", at(10, i * 5), f"Có chuyện {i} ở ấp {i}", commune=26680) for i in range(6)]
    spike = [a for a in run(burst) if a["rule"] == "tip_spike"]
    assert steps(spike) == [("raised", "P2", "tip_spike")]
    assert spike[0]["delivery"] == "now"  # 10:25 is office hours
    explained = [dict(press("b1", at(9, 59)), commune_code=26680)] + burst
    assert [a for a in run(explained) if a["rule"] == "tip_spike"] == []


def test_quiet_hours_send_non_urgent_alerts_to_the_digest() -> None:
    night = [tip(f"s{i}", at(23, i * 5), f"Có chuyện {i} ở ấp {i}", commune=26680) for i in range(6)]
    spike = [a for a in run(night) if a["rule"] == "tip_spike"]
    assert spike and spike[0]["delivery"] == "digest"


def test_device_trouble_is_one_p3_per_commune_and_day() -> None:
    events = [press("h1", at(8, 0), device="bell-1", signal="heartbeat"),
              press("h2", at(8, 0), device="bell-2", signal="heartbeat"),
              press("o1", at(8, 10), device="bell-1", signal="offline"),
              press("b1", at(8, 20), device="bell-3", signal="battery_low"),
              press("h3", at(8, 30), device="bell-2", signal="heartbeat"),
              press("h4", at(10, 0), device="bell-2", signal="heartbeat")]
    alerts = run(events)
    assert steps(alerts) == [("raised", "P3", "device_health")]
    assert alerts[0]["summary"] == "bell-1: offline"


def test_a_silent_device_is_reported() -> None:
    events = [press("h1", at(8, 0), device="gate-1", signal="heartbeat"),
              tip("t", at(9, 30), "chuyện khác", commune=25813)]
    alerts = run(events)
    assert steps(alerts) == [("raised", "P3", "device_health")]
    assert alerts[0]["summary"] == "gate-1: mất tín hiệu" and alerts[0]["at_ms"] - 1756861200000 == 75 * 60_000


def test_a_redelivered_press_emits_its_alert_again() -> None:
    """After a crash the state may be ahead of the sinks: the repeat re-emits, the sinks dedupe."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    _, record, _ = parse_contract(press("p1", at(21, 0)), Pseudonymiser(b"k" * 32))
    first = processor.handle("device_signal", record)
    again = processor.handle("device_signal", record)
    assert again.status == "duplicate"
    assert again.alerts == first.alerts and steps(again.alerts) == [("raised", "P1", "panic_bell")]


def test_a_redelivered_press_whose_alert_state_was_lost_pages_it_again() -> None:
    """SIGKILL while the batch's state went to the changelogs: the commune's incidents kept the
    press, the alert state lost its alert. The re-delivered press must raise it again, as before."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    _, record, _ = parse_contract(press("p1", at(21, 0)), Pseudonymiser(b"k" * 32))
    first = processor.handle("device_signal", record)
    processor.state.alerts.clear()
    again = processor.handle("device_signal", record)
    assert again.status == "duplicate"
    assert steps(again.alerts) == [("raised", "P1", "panic_bell")]
    assert [(a["alert_id"], a["at_ms"]) for a in again.alerts] == [(a["alert_id"], a["at_ms"]) for a in first.alerts]


def test_live_escalation_comes_from_the_timer_at_the_first_deadline() -> None:
    """The worker's path: no global event-time ticks; its timer picks the communes that are due
    and ticks each. Two P1s 2 minutes apart: the first escalates at its own 5 minutes."""
    from streams.runtime.batch import BatchStep, Message
    from streams.runtime.timer import due_communes, tick_message
    from streams.topics import COMMUNE_CONTROL, DEVICE_SIGNALS
    from schemas import CODEC

    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False)
    step = BatchStep(processor)
    messages = []
    for n, (event, minute) in enumerate(((press("p1", at(21, 0)), 0), (press("p2", at(21, 2), device="bell-2",
                                                                              site_kind="clinic"), 2))):
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        messages.append(Message(DEVICE_SIGNALS, 0, n, CODEC.encode(event_type, record)))
    raised = step.run(messages, 0).alerts
    assert steps(raised) == [("raised", "P1", "panic_bell")] * 2
    first = raised[0]["at_ms"]
    states = list(processor.state.alerts.items())
    deadline = first + 5 * 60_000
    assert due_communes(states, 0, deadline - 1) == []  # the clock, for what fell due within a day of it
    assert due_communes(states, 0, deadline) == [(COMMUNE, deadline)]
    assert due_communes(states, deadline - 1, deadline + 25 * 3_600_000) == []  # a replay: event time, not the clock
    assert due_communes(states, deadline, deadline + 25 * 3_600_000) == [(COMMUNE, deadline)]
    assert due_communes(states, deadline + 10 * 365 * 86_400_000, deadline - 1) == []  # a clock poisoned by a date years ahead
    tick = Message(COMMUNE_CONTROL, 0, 9, tick_message(COMMUNE, first + 5 * 60_000))
    escalated = step.run([tick], 0).alerts
    assert [(a["state"], a["alert_id"], a["at_ms"]) for a in escalated] == [
        ("escalated", raised[0]["alert_id"], first + 5 * 60_000)]
    assert due_communes(list(processor.state.alerts.items()), 0, first + 5 * 60_000) == []
    replayed_at = first + 7 * 60_000 + 25 * 3_600_000  # as a replay a day later: event time decides
    assert due_communes(list(processor.state.alerts.items()), first + 7 * 60_000, replayed_at) == [
        (COMMUNE, first + 7 * 60_000)]


def test_an_action_read_before_the_press_that_raises_its_alert_still_applies() -> None:
    """In the worker an ack takes a hop via the control topic and can be read before the device
    signal that raised its alert (CI once lost an ack so). Read early, each action gives the
    lifecycle it gives read in order; one dated before the raise, or for an alert never raised,
    changes nothing and is forgotten after a day."""
    alert_id = run([press("p1", at(21, 0))])[0]["alert_id"]
    for actions in ([action("a1", at(21, 6), alert_id, "ack"), action("a2", at(21, 30), alert_id, "resolve")],
                    [action("a1", at(21, 3), alert_id, "ack")]):
        in_order = run([press("p1", at(21, 0)), *actions])
        early = run([*actions, press("p1", at(21, 0))])
        assert [(a["state"], a["at_ms"], a["by"]) for a in early] == [
            (a["state"], a["at_ms"], a["by"]) for a in in_order]
    assert steps(run([action("a1", at(21, 6), alert_id, "ack"), action("a2", at(21, 30), alert_id, "resolve"),
                      press("p1", at(21, 0))])) == [("raised", "P1", "panic_bell"), ("escalated", "P1", "panic_bell"),
                                                    ("acked", "P1", "panic_bell"), ("resolved", "P1", "panic_bell")]
    assert steps(run([action("a0", at(20, 59), alert_id, "ack"), press("p1", at(21, 0)),
                      tip("later", at(21, 20), "chuyện khác ở chợ", commune=25813)])) == [
        ("raised", "P1", "panic_bell"), ("escalated", "P1", "panic_bell"), ("escalated", "P1", "panic_bell")]
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    for event in (action("a1", at(9, 0), f"al-{COMMUNE}-never", "ack"), action("a2", at(10, 0, day=4), alert_id, "ack")):
        _, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        processor.handle("alert_action", record)
    assert list(processor.state.alerts[str(COMMUNE)]["parked_actions"]) == [alert_id]


def verdict(event_id: str, when: str, verdict: str, **about: Any) -> dict:
    return builders.verdict(event_id, when, verdict, commune_code=COMMUNE, **about)


def test_a_false_report_or_duplicate_verdict_resolves_the_incidents_alert_with_that_reason() -> None:
    text = "Đánh nhau ở quán nhậu Hồng Phúc khu phố 4, khoảng 5 người cầm dao, có người bị thương"
    tips = [tip("t1", at(10, 0), text, category="fight", location_text="quán nhậu Hồng Phúc, khu phố 4"),
            *(tip(f"t{i}", at(10, i), text.lower(), channel=channel, reporter_contact=f"+8491100000{i}")
              for i, channel in ((2, "hotline"), (3, "facebook")))]
    raised = run(tips)
    incident = raised[0]["incident_id"]
    closed = run([*tips, verdict("v1", at(10, 30), "false_report", incident_id=incident)])
    assert [a["state"] for a in closed][-1] == "resolved" and closed[-1]["at_ms"] == 1756870200000
    assert closed[-1]["summary"].endswith("đóng theo kết luận của cán bộ: báo sai (false_report)")
    one_tip_judged = run([*tips, verdict("v1", at(10, 30), "duplicate", tip_event_id="t1")])
    assert "resolved" not in [a["state"] for a in one_tip_judged]  # two tips still stand
    every_tip = run([*tips, *(verdict(f"v{i}", at(10, 30 + i), "duplicate", tip_event_id=f"t{i}") for i in (1, 2, 3))])
    assert every_tip[-1]["state"] == "resolved" and "trùng lặp (duplicate)" in every_tip[-1]["summary"]
    valuable = run([*tips, verdict("v1", at(10, 30), "valuable", incident_id=incident)])
    assert "resolved" not in [a["state"] for a in valuable]
    bell = run([press("p1", at(21, 0)), tip("t9", at(21, 1), "Có cướp ở phòng giao dịch ngân hàng", category="theft"),
                verdict("v9", at(21, 2), "false_report", tip_event_id="t9")])
    assert "resolved" not in [a["state"] for a in bell]  # a bell was pressed: a tip judged false does not close it


def test_an_alert_decided_again_after_its_state_was_lost_keeps_its_time() -> None:
    """SIGKILL lost the alert state of a batch that raised a P1 and then added a second press to
    its incident; the re-delivered first press decides the alert as it was decided then (same
    time, so the same page key), not as of the incident's latest member."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    pressed, again = (parse_contract(press(e, at(21, m), device=d), Pseudonymiser(b"k" * 32))[1]
                      for e, m, d in (("p1", 0, "bell-1"), ("p2", 1, "bell-1")))
    first = processor.handle("device_signal", pressed).alerts
    processor.handle("device_signal", again)
    processor.state.alerts.clear()
    redecided = processor.handle("device_signal", pressed)
    assert redecided.status == "duplicate"
    assert [(a["state"], a["alert_id"], a["at_ms"]) for a in redecided.alerts] == [
        ("raised", first[0]["alert_id"], first[0]["at_ms"])]


def test_a_page_says_what_where_when_how_many_and_how_credible_without_the_reporter() -> None:
    contact, words = "+84912345678", "có hai đối tượng cầm dao khống chế nhân viên"
    alerts = run([press("p1", at(21, 0), site_name="Phòng giao dịch Agribank Nghi Xuân"),
                  tip("t1", at(21, 1), f"Cướp ở phòng giao dịch ngân hàng, {words}", category="theft",
                      reporter_contact=contact)])
    page = alerts[0]["summary"]
    assert page.startswith("Chuông báo động được bấm — Xã Nghi Xuân, Hà Tĩnh (Phòng giao dịch Agribank Nghi Xuân)"
                           " — lúc 21:00 03/09/2025 — 0 tin báo, 1 thiết bị — độ tin cậy "), page
    assert contact not in page and words not in page
    text = "Đánh nhau ở quán nhậu Hồng Phúc khu phố 4, khoảng 5 người cầm dao, có người bị thương"
    # The sender's place text never reaches a page (it may name the informant): the commune does.
    place = "quán nhậu Hồng Phúc, khu phố 4, cạnh nhà chị Lan người báo tin"
    fight = run([tip("t1", at(10, 0), text, category="fight", location_text=place),
                 *(tip(f"t{i}", at(10, i), text.lower(), channel=channel, reporter_contact=f"+8491100000{i}")
                   for i, channel in ((2, "hotline"), (3, "facebook")))])
    assert [a["summary"] for a in fight] == [
        "Tin báo khẩn (fight) — Xã Nghi Xuân, Hà Tĩnh — lúc 10:00 03/09/2025 — "
        "2 tin báo, 0 thiết bị — độ tin cậy 0.80 (mô tả cụ thể +2.6, nhiều kênh báo +1.0)",
        "Tin báo khẩn (fight) — Xã Nghi Xuân, Hà Tĩnh — lúc 10:00 03/09/2025 — "
        "3 tin báo, 0 thiết bị — độ tin cậy 0.97 (mô tả cụ thể +2.6, nhiều người báo độc lập +2.2)"]
    assert not any("+849110000" in a["summary"] or "5 người cầm dao" in a["summary"] or "chị Lan" in a["summary"]
                   for a in fight)


def test_the_next_deadline_is_the_earliest_open_one_and_a_tick_before_it_changes_nothing() -> None:
    """Three P1s two minutes apart; the middle one is acked. The commune is due at the first
    one's deadline — not the last one's — a tick a millisecond early does nothing, the tick at
    it escalates the first alone, and the third's deadline is next."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False)
    raised = []
    for n, minute in enumerate((0, 2, 4)):
        event_type, record, _ = parse_contract(press(f"p{n}", at(21, minute), device=f"bell-{n}"),
                                               Pseudonymiser(b"k" * 32))
        raised += processor.handle(event_type, record).alerts
    assert steps(raised) == [("raised", "P1", "panic_bell")] * 3
    deadlines = [alert["at_ms"] + 5 * 60_000 for alert in raised]
    event_type, record, _ = parse_contract(action("ack-p1", at(21, 3), raised[1]["alert_id"], "ack"),
                                           Pseudonymiser(b"k" * 32))
    assert steps(processor.handle(event_type, record).alerts) == [("acked", "P1", "panic_bell")]
    assert processor.alerting.next_deadline(COMMUNE) == deadlines[0]
    assert processor.alerting.tick(COMMUNE, deadlines[0] - 1) == []
    assert processor.alerting.next_deadline(COMMUNE) == deadlines[0]
    escalated = processor.alerting.tick(COMMUNE, deadlines[0])
    assert [(a["state"], a["alert_id"], a["at_ms"]) for a in escalated] == [
        ("escalated", raised[0]["alert_id"], deadlines[0])]
    assert processor.alerting.next_deadline(COMMUNE) == deadlines[2]


def test_an_action_claiming_another_commune_than_its_alerts_is_refused() -> None:
    """The gateway scopes a key by the commune an event claims: an action whose claim is not its
    alert's commune is refused by the worker too (dead-lettered), whoever `by` names."""
    alert_id = f"al-{COMMUNE}-bell"
    engine = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING,
                            staff=StaffRegistry.load(DEFAULT_STAFF_CONFIG)).alerting
    claimed = {**builders.alert_action("a1", at(21, 1), alert_id, "ack"), "by": "bo-chi-huy-truc"}
    _, record, _ = parse_contract({**claimed, "commune_code": 31867}, Pseudonymiser(b"k" * 32))
    assert engine.refusal(record) == (f"ack on {alert_id} refused: commune_code 31867 is not the alert's commune "
                                      f"({COMMUNE}); send the alert's own commune, or none")
    _, honest, _ = parse_contract(claimed, Pseudonymiser(b"k" * 32))
    assert engine.refusal(honest) is None
