"""No verdict is lost: one without a commune finds its tip's, one given long after the incident
closed still credits everyone behind it, and one that cannot be placed says why (a rejected
line offline, a dead letter in the worker)."""

from __future__ import annotations

import json
from typing import Any

from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from schemas import CODEC
from streams.runtime.batch import BatchStep, Message
from streams.topics import COMMUNE_CONTROL, DEAD_LETTER, FEEDBACK, TIPS
from tests.conftest import offline_run
from tests.builders import verdict
from tests.unit.test_alerts import ALERTING, COMMUNE, CREDIBILITY, at, tip

KEY = Pseudonymiser(b"k" * 32)
TEXT = "Có nhóm thanh niên đánh bạc ở bãi đất trống cạnh chợ, khoảng 10 người"


def run(processor: EventProcessor, events: list[dict[str, Any]]) -> list[Any]:
    results = []
    for event in events:
        event_type, record, _ = parse_contract(event, KEY)
        results.append(processor.handle(event_type, record))
    return results


def reporter_counts(processor: EventProcessor, contact: str) -> Any:
    return processor.reputation.counts.get(f"reporter:{KEY.reporter(contact)}")


def named_tip(event_id: str, when: str, contact: str, **extra: Any) -> dict[str, Any]:
    return tip(event_id, when, TEXT, reporter_contact=contact, category="gambling", **extra)


def test_a_verdict_without_a_commune_finds_its_tip() -> None:
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    first, judged = run(processor, [named_tip("t1", at(10, 0), "0912000111"),
                                    verdict("v1", at(12, 0), tip_event_id="t1")])
    assert judged.unapplied is None and judged.incident_id == first.incident_id
    assert judged.incident()["reasons"][0]["signal"] == "officer_valuable"
    assert reporter_counts(processor, "0912000111") == [1, 1]


def test_a_verdict_long_after_the_incident_closed_still_credits_its_reporters() -> None:
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    run(processor, [named_tip("t1", at(10, 0, day=3), "0912000111"), named_tip("t2", at(10, 5, day=3), "0912000222"),
                    tip("later", at(9, 0, day=20), "chuyện khác ở ấp 5")])  # the commune's clock moves on
    assert processor.clusterer.tip_origin(COMMUNE, "t1") is None  # the commune forgot the tip itself
    late_tip, late_incident = run(processor, [
        verdict("v1", at(10, 0, day=25), "false_report", tip_event_id="t1"),
        verdict("v2", at(10, 0, day=26), incident_id=processor.state.origins["tip:t2"][1])])
    assert late_tip.unapplied is None and late_incident.unapplied is None
    # false_report, then valuable (the incident): the older verdict fades by 1 - 1/20 (reputation_memory)
    assert reporter_counts(processor, "0912000111") == [1, 1.95]
    assert reporter_counts(processor, "0912000222") == [1, 1]


def test_a_verdict_that_cannot_be_placed_is_rejected_offline_and_dead_lettered_live() -> None:
    lost = verdict("v1", at(12, 0), tip_event_id="never-seen")
    lines = list(offline_run().process([json.dumps(lost)]))
    assert lines[0]["status"] == "rejected" and lines[0]["line"] == 1
    assert lines[0]["reason"] == ("verdict on tip never-seen: no commune_code, and binhyen has not seen that tip "
                                  "(or forgot it after a year); send the verdict with its commune_code")
    step = BatchStep(EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False))
    event_type, record, _ = parse_contract(lost, KEY)
    out = step.run([Message(FEEDBACK, 2, 7, CODEC.encode(event_type, record))], 0)
    assert dict(out.rejected) == {"verdict": 1}
    assert [topic for topic, _, _ in out.records] == [DEAD_LETTER]
    assert CODEC.decode(out.records[0][2])[1]["reason"] == lines[0]["reason"]


def test_the_worker_forwards_a_verdict_without_a_commune_to_the_tips_commune() -> None:
    step = BatchStep(EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False))

    def message(topic: str, event: dict[str, Any], offset: int) -> Message:
        event_type, record, _ = parse_contract(event, KEY)
        return Message(topic, 0, offset, CODEC.encode(event_type, record))

    step.run([message(TIPS, named_tip("t1", at(10, 0), "0912000111"), 1)], 0)
    out = step.run([message(FEEDBACK, verdict("v1", at(12, 0), tip_event_id="t1"), 2)], 0)
    assert [(topic, key) for topic, key, _ in out.records] == [(COMMUNE_CONTROL, str(COMMUNE).encode())]
    assert [(row[0], row[5]) for row in out.rows["events"]] == [("v1", COMMUNE)]  # counted where its tip is
    forwarded = CODEC.decode(out.records[0][2])[1]
    assert forwarded["commune_code"] == COMMUNE and forwarded["event_id"] == "v1"
    applied = step.run([Message(COMMUNE_CONTROL, 0, 3, out.records[0][2])], 0)
    incidents = [CODEC.decode(value)[1] for topic, _, value in applied.records if topic == "binhyen.incidents.v1"]
    assert [i["reasons"][0]["signal"] for i in incidents] == ["officer_valuable"]
    assert "events" not in applied.rows  # recorded once, when it first arrived


def test_a_replay_records_a_verdict_without_a_commune_in_its_tips_commune_even_read_before_it() -> None:
    """`binhyen replay` rebuilds `events` from the log, where a verdict may come before its tip
    (another topic, another partition): it is placed when the tip is read, at the latest at the end."""
    from streams.ops.replay import ProjectionRows

    def value(event: dict[str, Any]) -> bytes:
        event_type, record, _ = parse_contract(event, KEY)
        return CODEC.encode(event_type, record)

    rows = ProjectionRows(None, "binhyen")
    assert rows.add(FEEDBACK, 0, 1, value(verdict("v-early", at(12, 0), tip_event_id="t-late")), 0)
    assert rows.add(TIPS, 0, 1, value(named_tip("t-early", at(9, 0), "0912000111")), 0)
    assert rows.add(FEEDBACK, 0, 2, value(verdict("v-late", at(12, 5), tip_event_id="t-early")), 0)
    assert rows.add(FEEDBACK, 0, 3, value(verdict("v-lost", at(12, 5), tip_event_id="t-never")), 0)
    assert [(row[0], row[5]) for row in rows.sinks["events"].rows] == [("t-early", COMMUNE), ("v-late", COMMUNE)]
    assert rows.add(TIPS, 0, 2, value(named_tip("t-late", at(10, 0), "0912000222")), 0)
    rows.sinks["events"].rows.clear()
    for sink in rows.sinks.values():
        sink.flush = lambda: 0  # type: ignore[method-assign]  # no database here: look at the queued rows
    rows.finish()
    assert [(row[0], row[5]) for row in rows.sinks["events"].rows] == [("v-early", COMMUNE), ("v-lost", 0)]


def test_origins_are_forgotten_after_a_year() -> None:
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    run(processor, [named_tip("t1", at(10, 0), "0912000111")])
    assert set(processor.state.origins) == {"tip:t1", f"incident:{processor.state.origins['tip:t1'][1]}"}
    tip_time = processor.state.origins["tip:t1"][5]
    processor.sweep(tip_time + 364 * 86_400_000)
    assert len(processor.state.origins) == 2
    processor.sweep(tip_time + 366 * 86_400_000)
    assert processor.state.origins == {}


def test_a_verdict_on_a_tip_that_never_comes_is_counted_when_it_expires() -> None:
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    early = run(processor, [verdict("v1", at(12, 0), tip_event_id="not-yet", commune_code=COMMUNE)])
    assert early[0].unapplied is None  # kept for its tip, which may still come
    run(processor, [tip("t1", at(12, 0, day=4), "chuyện khác ở ấp 5")])
    assert processor.state.communes[str(COMMUNE)].get("expired_verdicts", 0) == 0
    run(processor, [tip("t2", at(12, 0, day=11), "chuyện khác nữa ở ấp 6")])  # seven days on
    assert processor.state.communes[str(COMMUNE)]["expired_verdicts"] == 1


def test_a_verdict_claiming_another_commune_than_its_tips_is_refused_and_credits_nobody() -> None:
    """A Cà Mau key may send verdicts for Cà Mau communes; one on a Hà Tĩnh tip that claims a Cà Mau
    commune (to pass the gateway's scope) is dead-lettered with the reason, and moves no reputation."""
    ca_mau = 31867
    step = BatchStep(EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False))

    def message(topic: str, event: dict[str, Any], offset: int) -> Message:
        event_type, record, _ = parse_contract(event, KEY)
        return Message(topic, 0, offset, CODEC.encode(event_type, record))

    step.run([message(TIPS, named_tip("t1", at(10, 0), "0912000111"), 1)], 0)  # a tip of Xã Nghi Xuân, Hà Tĩnh
    forged = [message(FEEDBACK, verdict(f"v{i}", at(12, i), "false_report", tip_event_id="t1",
                                        commune_code=ca_mau), 2 + i) for i in range(6)]
    out = step.run(forged, 0)
    assert dict(out.rejected) == {"verdict": 6}
    assert CODEC.decode(out.records[0][2])[1]["reason"] == (
        f"verdict on tip t1 refused: commune_code {ca_mau} is not the commune of that tip ({COMMUNE}); "
        "send the verdict with the judged one's commune")
    processor = step.processor
    assert processor is not None and reporter_counts(processor, "0912000111") is None
    incident = processor.state.origins["tip:t1"][1]
    on_incident = step.run([message(FEEDBACK, verdict("v9", at(12, 9), "false_report", incident_id=incident,
                                                      commune_code=ca_mau), 9)], 0)
    assert dict(on_incident.rejected) == {"verdict": 1}
    assert [topic for topic, _, _ in on_incident.records] == [DEAD_LETTER]  # no alert resolved, no incident change
    lines = list(offline_run().process([json.dumps(named_tip("t1", at(10, 0), "0912000111")),
                                        json.dumps(verdict("v1", at(12, 0), "valuable", tip_event_id="t1",
                                                           commune_code=ca_mau))]))
    assert lines[1]["status"] == "rejected" and "is not the commune of that tip" in lines[1]["reason"]


def test_after_a_false_report_the_same_reporter_alone_pages_nobody_and_anyone_else_still_does() -> None:
    """s37 of the on-call suite: a prank caller judged false at 01:45 texts "lần này có nổ súng thật"."""
    from processors.meaning import MeaningModel
    from streams.config import DEFAULT_MEANING_CONFIG

    def urgent(event_id: str, when: str, contact: str, text: str) -> dict[str, Any]:
        return tip(event_id, when, text, reporter_contact=contact, channel="sms")

    stabbing = "có vụ chém người ở cầu, máu chảy lênh láng, CA tới liền"
    shots = "lần này có nổ súng thật ở bến xe, có người bị thương, ra lẹ đi"
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, meaning=MeaningModel.load(DEFAULT_MEANING_CONFIG))
    first, judged, again, other = run(processor, [
        urgent("p1", at(1, 10), "0912000111", stabbing), verdict("v1", at(1, 45), "false_report", tip_event_id="p1"),
        urgent("p2", at(2, 20), "0912000111", shots), urgent("p3", at(2, 30), "0912000999", shots)])
    assert [a["rule"] for a in first.alerts] == ["urgent_report"] and judged.unapplied is None
    assert again.meaning.urgent  # the text still reads as urgent …
    # … but the reporter's word alone pages nobody (it waits for the morning shift's digest)
    assert [(a["severity"], a["rule"], a["delivery"]) for a in again.alerts if a["state"] == "raised"] == [
        ("P3", "night_report", "digest")]
    assert other.incident_id == again.incident_id  # someone else says it too: now it pages
    assert [(a["state"], a["rule"], a["delivery"]) for a in other.alerts if a["incident_id"] == other.incident_id] == [
        ("escalated", "urgent_report", "now")]  # the morning-shift line becomes a page
    assert not processor.reputation.discredited(None, COMMUNE, "sms")  # anonymous: no record, never discredited


def test_a_message_that_is_no_tip_moves_no_channel_or_reporter_rate_whatever_verdict_it_gets() -> None:
    """Not a tip (a question about tạm trú): recorded, joined to nothing; a verdict on it waits
    for a tip that never comes, and no channel's, commune's or reporter's rate counts it."""
    from processors.meaning import MeaningModel
    from streams.config import DEFAULT_MEANING_CONFIG

    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, meaning=MeaningModel.load(DEFAULT_MEANING_CONFIG))
    question = tip("q1", at(9, 0), "cho hỏi thủ tục đăng ký tạm trú cho công nhân cần giấy tờ gì ạ",
                   reporter_contact="0912000555")
    asked, judged = run(processor, [question, verdict("v1", at(10, 0), "not_valuable", tip_event_id="q1",
                                                      commune_code=COMMUNE)])
    assert (asked.meaning.is_tip, asked.incident_id, judged.incident_id) == (False, None, None)
    assert processor.reputation.counts == {}
