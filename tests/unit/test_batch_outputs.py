"""What one batch hands the checkpoint, counted exactly: the messages to acknowledge in the
order processed, consumption per topic and kind, dead letters (a tombstone's too), the incident
rows and the commune-keyed incident record, the events rows' types; timer ticks routed to their
own message's partition, one failing tick not stopping the next; and the delivery agent's rows,
past an undeliverable record, from the start of time by default."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState, Result
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from schemas import CODEC
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
from streams.runtime import metrics
from streams.runtime.batch import BatchStep, Message, Rejected, dead_letter, triage
from streams.runtime.state import EventCursor
from streams.topics import ALERTS, COMMUNE_CONTROL, DEAD_LETTER, FEEDBACK, INCIDENTS, TIPS

COMMUNE = 18352
T0 = int(datetime(2025, 9, 3, 9, 0, tzinfo=timezone(timedelta(hours=7))).timestamp() * 1000)
NOW = T0 + 3_600_000


def tip_message(event_id: str, minute: int, offset: int, text: str) -> Message:
    event_type, record, _ = parse_contract(
        {"type": "tip", "event_id": event_id, "occurred_at": f"2025-09-03T09:{minute:02d}:00+07:00", "commune_code": COMMUNE,
         "channel": "zalo", "text": text, "category": "theft"}, Pseudonymiser(b"k" * 32))
    return Message(TIPS, 0, offset, CODEC.encode(event_type, record), token=f"tips-0-{offset}")


def tick_message(commune: int, now_ms: int, offset: int) -> Message:
    return Message(COMMUNE_CONTROL, 0, offset, f'{{"tick": {commune}, "now_ms": {now_ms}}}'.encode(),
                   token=f"control-0-{offset}")


def processor() -> EventProcessor:
    return EventProcessor(ProcessorState(), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                          AlertConfig.load(DEFAULT_ALERT_CONFIG), global_ticks=False)


def test_a_batch_counts_what_it_consumed_and_makes_one_incident_row_per_incident(
        caplog: pytest.LogCaptureFixture) -> None:
    text = "Trộm cắp xe máy ở chợ Bến Thành, đối tượng mặc áo đen bỏ chạy về phía cầu"
    messages = [tip_message("t-1", 0, 0, text), tip_message("t-2", 2, 1, text + " đỏ"),
                Message(TIPS, 1, 2, b"garbage", token="tips-1-2"), Message(TIPS, 1, 3, b"junk", token="tips-1-3"),
                tick_message(COMMUNE, T0 + 10 * 60_000, 5), tick_message(COMMUNE, T0 + 20 * 60_000, 6)]
    with caplog.at_level(logging.WARNING, logger="binhyen.worker"):
        out = BatchStep(processor(), EventCursor()).run(messages, NOW)
    # rejections first, then event time; every message is acknowledged once committed
    assert [(m.topic, m.partition, m.offset) for m in out.done] == [
        (TIPS, 1, 2), (TIPS, 1, 3), (TIPS, 0, 0), (TIPS, 0, 1), (COMMUNE_CONTROL, 0, 5), (COMMUNE_CONTROL, 0, 6)]
    assert out.consumed == {(TIPS, "invalid"): 2, (TIPS, "tip"): 2, (COMMUNE_CONTROL, "tick"): 2}
    assert out.rejected == {"decode": 2}
    reason = triage(b"garbage", TIPS).reason
    assert [r.getMessage() for r in caplog.records if r.name == "binhyen.worker"] == [
        f"dead letter {TIPS}[1]@2: {reason}", f"dead letter {TIPS}[1]@3: {reason}"]
    assert [row[:2] for row in out.rows["events"]] == [("t-1", "tip"), ("t-2", "tip")]
    (incident,) = out.rows["incidents"]
    assert incident[2] == COMMUNE and incident[7] == 2  # one incident of both tips
    assert [(m[0], m[1], m[2]) for m in out.rows["incident_members"]] == [
        (incident[0], "t-1", COMMUNE), (incident[0], "t-2", COMMUNE)]
    (produced,) = [r for r in out.records if r[0] == INCIDENTS]
    assert produced[1] == str(COMMUNE).encode()  # keyed by commune: the commune's partition
    assert CODEC.decode(produced[2])[1]["incident_id"] == incident[0]
    assert [r[0] for r in out.records].count(DEAD_LETTER) == 2


def test_ticks_write_state_for_their_own_message_and_a_failing_one_does_not_stop_the_next(
        caplog: pytest.LogCaptureFixture) -> None:
    cursor, calls = EventCursor(), []

    def tick(commune: int, now_ms: int) -> list[dict[str, Any]]:
        calls.append((commune, now_ms, cursor.current))
        if commune == 1:
            raise RuntimeError("state unreadable")
        return [alert(commune)]

    step = BatchStep(SimpleNamespace(alerting=SimpleNamespace(tick=tick, next_deadline=lambda commune: T0 + 1),
                                     sweep=lambda watermark: None), cursor)
    with caplog.at_level(logging.ERROR, logger="binhyen.worker"):
        out = step.process([(m, triage(m.value, m.topic)) for m in (tick_message(1, T0, 8),
                                                                   tick_message(COMMUNE, T0, 9))], NOW)
    assert calls == [(1, T0, "control-0-8"), (COMMUNE, T0, "control-0-9")]
    assert cursor.current is None  # nothing written after the batch belongs to its last message
    assert [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        (logging.ERROR, "tick of commune 1 failed", True)]
    assert out.consumed == {(COMMUNE_CONTROL, "tick"): 2}
    assert out.alerts == [alert(COMMUNE)]
    assert out.still_due == []


def test_a_tick_that_leaves_its_commune_due_is_said_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """`binhyen process` raises on it; the worker cannot stop the stream, so it logs the commune
    and counts it (`binhyen_ticks_left_due_total`) instead of ticking it silently for ever."""
    alerting = SimpleNamespace(tick=lambda commune, now_ms: [], next_deadline=lambda commune: T0 - 5)
    step = BatchStep(SimpleNamespace(alerting=alerting, sweep=lambda watermark: None), EventCursor())
    with caplog.at_level(logging.ERROR, logger="binhyen.worker"):
        out = step.process([(m, triage(m.value, m.topic)) for m in (tick_message(COMMUNE, T0, 9),)], NOW)
    assert out.still_due == [COMMUNE]
    before = metrics.TICKS_LEFT_DUE._value.get()
    metrics.observe_batch(out, NOW / 1000)
    assert metrics.TICKS_LEFT_DUE._value.get() == before + 1
    assert [r.getMessage() for r in caplog.records] == [
        f"the tick of commune {COMMUNE} at {T0} left it due at {T0 - 5}: its timer will tick it again every round"]


def test_a_tombstone_is_dead_lettered_with_an_empty_original() -> None:
    message = Message(TIPS, 3, 41, None)
    rejected = triage(message.value, message.topic)
    assert rejected.kind == "tombstone"
    event_type, record = CODEC.decode(dead_letter(rejected, message, NOW))
    assert event_type == "dead_letter"
    assert (record["original"], record["original_size"], record["source_offset"]) == (b"", 0, 41)


def alert(n: int) -> dict[str, Any]:
    return {"alert_id": f"al-{COMMUNE}-{n}", "state": "raised", "severity": "P1", "rule": "panic_bell",
            "incident_id": f"inc-{n}", "commune_code": COMMUNE, "at_ms": T0 + n, "by": None, "summary": "s",
            "route": "commune-post", "delivery": "now", "config_version": "alerts-3"}


def device_message(event_id: str, minute: int, offset: int, signal: str = "heartbeat") -> Message:
    event_type, record, _ = parse_contract(
        {"type": "device_signal", "event_id": event_id, "occurred_at": f"2025-09-03T{9 + minute // 60:02d}:"
         f"{minute % 60:02d}:00+07:00", "commune_code": COMMUNE, "device_id": "bell-1", "device_kind": "alarm_bell",
         "signal": signal}, Pseudonymiser(b"k" * 32))
    return Message("binhyen.device-signals.v1", 4, offset, CODEC.encode(event_type, record), token=f"dev-{offset}")


def test_events_rows_say_where_and_when_each_event_was_read_and_ages_are_never_negative() -> None:
    from sinks.clickhouse import EVENT_COLUMNS

    now = NOW + 789  # not a whole second
    tip = tip_message("t-1", 0, 7, "có đánh nhau ở chợ")
    future = device_message("d-1", 120, 11)  # dated two hours after `now`'s hour: a clock ahead
    out = BatchStep(processor(), EventCursor()).run([tip, future], now)
    rows = [dict(zip(EVENT_COLUMNS, row)) for row in out.rows["events"]]
    assert [(r["event_id"], r["event_type"], r["source_topic"], r["source_partition"], r["source_offset"],
             r["ingested_at"]) for r in rows] == [
        ("t-1", "tip", TIPS, 0, 7, now // 1000), ("d-1", "device_signal", "binhyen.device-signals.v1", 4, 11,
                                                   now // 1000)]
    assert all(type(r["ingested_at"]) is int for r in rows)
    assert out.event_ages_s == [pytest.approx((now - T0) / 1000, abs=1e-6), 0.0]
    assert out.device_communes == {COMMUNE}  # device signals only: the timer watches their communes


def test_a_tip_alone_marks_no_device_commune() -> None:
    out = BatchStep(processor(), EventCursor()).run([tip_message("t-1", 0, 7, "có đánh nhau ở chợ")], NOW)
    assert out.device_communes == set()


def action_message(alert_id: str, topic: str, offset: int) -> Message:
    event_type, record, _ = parse_contract(
        {"type": "alert_action", "event_id": f"aa-{offset}", "occurred_at": "2025-09-03T09:05:00+07:00",
         "alert_id": alert_id, "action": "ack", "by": "ca-truc-ban"}, Pseudonymiser(b"k" * 32))
    return Message(topic, 0, offset, CODEC.encode(event_type, record), token=f"aa-{offset}")


def test_alert_actions_are_forwarded_to_their_communes_control_partition_once() -> None:
    from streams.topics import ALERT_ACTIONS

    ours, unknown = action_message(f"al-{COMMUNE}-0a1b", ALERT_ACTIONS, 0), action_message("al-x", ALERT_ACTIONS, 1)
    out = BatchStep(processor(), EventCursor()).run([ours, unknown], NOW)
    assert out.records == [(COMMUNE_CONTROL, str(COMMUNE).encode(), ours.value)]  # the same bytes, re-keyed
    assert [row[0] for row in out.rows["events"]] == ["aa-0", "aa-1"]
    forwarded = action_message(f"al-{COMMUNE}-0a1b", COMMUNE_CONTROL, 9)
    state = ProcessorState()
    again = BatchStep(EventProcessor(state, CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                                     AlertConfig.load(DEFAULT_ALERT_CONFIG), global_ticks=False),
                      EventCursor()).run([forwarded], NOW)
    assert again.records == [] and "events" not in again.rows  # recorded when first read
    assert again.consumed == {(COMMUNE_CONTROL, "alert_action"): 1}
    parked = state.alerts[str(COMMUNE)]["parked_actions"]  # handled: waits for its alert
    assert list(parked) == [f"al-{COMMUNE}-0a1b"]


def test_a_processing_failure_dead_letters_that_event_only(caplog: pytest.LogCaptureFixture) -> None:
    handled: list[str] = []

    def handle(event_type: str, record: dict[str, Any]) -> Any:
        if record["event_id"] == "t-bad":
            raise ValueError("no commune state")
        handled.append(record["event_id"])
        return Result("accepted")

    step = BatchStep(SimpleNamespace(handle=handle, sweep=lambda watermark: None), EventCursor())
    messages = [tip_message("t-bad", 0, 4, "có đánh nhau ở chợ"), tip_message("t-ok", 1, 5, "có đánh nhau ở chợ")]
    with caplog.at_level(logging.ERROR, logger="binhyen.worker"):
        out = step.run(messages, NOW)
    assert handled == ["t-ok"]
    assert out.rejected == {"processing": 1}
    assert out.consumed == {(TIPS, "tip"): 2, (TIPS, "invalid"): 1}
    (dead,) = [CODEC.decode(value)[1] for topic, _, value in out.records if topic == DEAD_LETTER]
    assert (dead["reason"], dead["source_topic"], dead["source_offset"], dead["dead_lettered_at_ms"]) == (
        "processing failed: ValueError: no commune state", TIPS, 4, NOW)
    assert dead["original"] == messages[0].value
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records if r.levelno == logging.ERROR] == [
        (f"processing {TIPS}[0]@4 failed", True)]


def test_state_is_swept_once_a_minute_of_wall_clock_with_the_event_watermark(
        caplog: pytest.LogCaptureFixture) -> None:
    from streams.runtime.batch import EventClock

    swept: list[int] = []

    def sweep(watermark: int) -> None:
        swept.append(watermark)
        if len(swept) == 2:
            raise RuntimeError("table busy")

    step = BatchStep(SimpleNamespace(sweep=sweep), clock=EventClock(watermark_ms=T0))
    with caplog.at_level(logging.ERROR, logger="binhyen.worker"):
        for now in (NOW, NOW + 59_999, NOW + 60_000, NOW + 60_001, NOW + 120_000, NOW + 179_999, NOW + 180_000):
            step.process([], now)
    assert swept == [T0, T0, T0]  # at +60 s, +120 s (failed) and +180 s: a failed sweep waits its minute too
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [("state sweep failed", True)]
    assert BatchStep(None).process([], NOW).done == []  # recording agents hold no state to sweep


def test_a_tick_later_in_the_batch_keeps_the_alerts_raised_before_it() -> None:
    bell = device_message("b-1", 0, 0, signal="panic_pressed")
    tick = tick_message(COMMUNE, T0 + 60_000, 3)  # nothing due yet: the tick itself raises nothing
    out = BatchStep(processor(), EventCursor()).run([bell, tick], NOW)
    assert [(a["state"], a["severity"], a["rule"]) for a in out.alerts] == [("raised", "P1", "panic_bell")]
    assert [row[1] for row in out.rows["alerts"]] == ["raised"]
    assert [topic for topic, _, _ in out.records].count(ALERTS) == 1


def test_a_malformed_tick_and_an_event_on_the_control_topic_are_rejected_saying_why() -> None:
    for value in (b'{"tick": "x"}', b'{"now_ms": 1}', b"{not json"):
        assert triage(value, COMMUNE_CONTROL) == Rejected("tick", "malformed tick on the control topic")
    tip = tip_message("t-1", 0, 0, "có đánh nhau ở chợ")
    assert triage(tip.value, COMMUNE_CONTROL) == Rejected(
        "wrong_topic", f"a tip event on {COMMUNE_CONTROL}; publish it to {TIPS}")
    action = action_message(f"al-{COMMUNE}-0a1b", COMMUNE_CONTROL, 0)  # forwarded actions belong there
    assert triage(action.value, COMMUNE_CONTROL).event_type == "alert_action"


def test_a_tip_is_stored_with_its_score_as_it_joined_even_when_its_verdict_was_read_first() -> None:
    event_type, record, _ = parse_contract(
        {"type": "feedback", "event_id": "v-1", "occurred_at": "2025-09-03T09:30:00+07:00", "commune_code": COMMUNE,
         "tip_event_id": "t-1", "verdict": "valuable"}, Pseudonymiser(b"k" * 32))
    verdict = Message(FEEDBACK, 0, 0, CODEC.encode(event_type, record), token="feedback-0-0")
    step = BatchStep(processor(), EventCursor())
    assert step.run([verdict], NOW).rows.get("tip_scores") is None  # parked until its tip is placed
    out = step.run([tip_message("t-1", 0, 0, "Trộm xe máy ở chợ, đối tượng bỏ chạy về phía cầu")], NOW)
    (row,) = out.rows["tip_scores"]
    (incident_row,) = out.rows["incidents"]
    assert row[0] == "t-1" and row[1] == incident_row[0] and row[2] == COMMUNE and row[4] == "cred-2"
    scored, now = json.loads(row[6]), json.loads(incident_row[12])
    assert "officer_valuable" not in scored and now["officer_valuable"] == 1.0  # the verdict came after, in the row
    assert row[5] < incident_row[9]  # its score then, below the judged incident's
