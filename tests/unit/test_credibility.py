"""Credibility: each signal pushes the right way, the reasons add up, verdicts re-score."""

from __future__ import annotations

import math
from typing import Any

from bench.credibility_quality import scored
from processors.credibility_fit import brier, rescored, roc_auc
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from processors.alerts import AlertConfig
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
from tests import builders
from tests.builders import at, device_signal

CONFIG = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
ALERTS = AlertConfig.load(DEFAULT_ALERT_CONFIG)
SPECIFIC = "Tiệm vàng Ngọc Hân ấp Nội Ô có 2 đối tượng đi xe SH giật dây chuyền rồi bỏ chạy"
PHOTO = [{"kind": "image", "sha256": "cd" * 32}]


def when(minute: int, day: int = 10) -> str:
    return at(8 + minute // 60, minute % 60, day=day)


def tip(event_id: str, minute: int, text: str = SPECIFIC, day: int = 10, **fields: Any) -> dict[str, Any]:
    return builders.tip(event_id, when(minute, day), text, **fields)


def run(events: list[dict[str, Any]], processor: EventProcessor | None = None) -> dict[str, Any]:
    """Feed events; return the last snapshot of the last event's incident."""
    processor = processor or EventProcessor(ProcessorState(), CONFIG, ALERTS)
    snapshot = None
    for item in events:
        event_type, record, _ = parse_contract(item, Pseudonymiser(b"k" * 32))
        result = processor.handle(event_type, record)
        snapshot = result.incident() or snapshot
    assert snapshot is not None
    return snapshot


def history(contact: str, verdict: str, n: int = 4) -> list[dict[str, Any]]:
    """A reporter's earlier tips (days before) and the officers' verdicts on them."""
    out, who = [], contact[-3:]  # ids carry no contact (the contract refuses one that does)
    for i in range(n):
        out.append(tip(f"old-{who}-{i}", i, f"Chuyện thứ {i} ở ấp {i}, khu phố {i}", day=1 + i,
                       reporter_contact=contact, channel="sms"))
        out.append(builders.verdict(f"fb-{who}-{i}", when(i + 30, day=1 + i), verdict,
                                    tip_event_id=f"old-{who}-{i}", commune_code=26680))
    return out


def test_a_reporter_with_valuable_tips_outscores_one_with_false_reports() -> None:
    good = run(history("+84911000001", "valuable") + [tip("t", 0, reporter_contact="+84911000001")])
    bad = run(history("+84911000002", "false_report") + [tip("t", 0, reporter_contact="+84911000002")])
    assert good["credibility"] > bad["credibility"]
    assert _reason(good, "reporter_reputation") > 0 > _reason(bad, "reporter_reputation")


def test_device_corroboration_raises_the_score() -> None:
    alone = run([tip("t", 5, "Có cướp tại phòng giao dịch ngân hàng đường Lý Thường Kiệt", category="theft")])
    with_bell = run([
        device_signal("bell", when(4)),
        tip("t", 5, "Có cướp tại phòng giao dịch ngân hàng đường Lý Thường Kiệt", category="theft"),
    ])
    assert with_bell["event_ids"] == ["bell", "t"]
    assert with_bell["credibility"] > alone["credibility"]
    assert _reason(with_bell, "device_corroboration") > 0


def test_three_independent_reporters_beat_one() -> None:
    one = run([tip("t1", 0, reporter_contact="+84911000010")])
    three = run([tip("t1", 0, reporter_contact="+84911000010"),
                 tip("t2", 3, SPECIFIC.lower(), reporter_contact="+84911000011"),
                 tip("t3", 6, SPECIFIC + " 🙏", reporter_contact="+84911000012")])
    assert three["tips"] == 3
    assert three["credibility"] > one["credibility"]
    # the same person three times is not three reporters
    same = run([tip("t1", 0, reporter_contact="+84911000010"),
                tip("t2", 30, SPECIFIC.lower(), reporter_contact="+84911000010"),
                tip("t3", 60, SPECIFIC + " 🙏", reporter_contact="+84911000010")])
    assert same["tips"] == 3 and same["credibility"] < three["credibility"]


def test_a_specific_report_with_a_photo_beats_a_vague_one() -> None:
    specific = run([tip("t", 0, attachments=PHOTO, location_text="tiệm vàng Ngọc Hân, ấp Nội Ô")])
    vague = run([tip("t", 0, "có chuyện gì đó")])
    assert specific["credibility"] > vague["credibility"]
    assert _reason(vague, "vague_text") < 0
    assert _reason(specific, "attachments") > 0 and _reason(specific, "specificity") > 0


def test_anonymity_itself_is_not_penalised() -> None:
    named = run([tip("t", 0, reporter_contact="+84911000020")])
    anonymous = run([tip("t", 0, anonymous=True, reporter_contact="+84911000021")])
    assert anonymous["credibility"] == named["credibility"]


def test_a_spam_burst_and_a_chain_message_score_low() -> None:
    burst = run([tip(f"s{i}", i, "Vay tiền nhanh lãi suất thấp liên hệ ngay", reporter_contact="+84911222333")
                 for i in range(4)])
    assert _reason(burst, "spam_burst") < 0
    chain_text = "Khẩn: có người giả nhân viên điện lực vào nhà cắt điện để trộm cắp, mọi người chia sẻ giúp"
    processor = EventProcessor(ProcessorState(), CONFIG, ALERTS)
    for i, commune in enumerate((25813, 31951, 18352)):
        run([dict(tip(f"c{i}", i * 10, chain_text), commune_code=commune)], processor)
    chained = run([tip("c9", 40, chain_text)], processor)
    assert _reason(chained, "chain_message") < 0
    assert chained["credibility"] < 0.5


def test_reasons_add_up_to_the_score_and_carry_the_version() -> None:
    snapshot = run([tip("t", 0, attachments=PHOTO)])
    total = sum(reason["contribution"] for reason in snapshot["reasons"])
    assert math.isclose(1 / (1 + math.exp(-total)), snapshot["credibility"], abs_tol=0.005)
    assert snapshot["scorer_version"] == "cred-2"
    assert 0.0 <= snapshot["credibility"] <= 1.0


def test_a_verdict_rescores_the_open_incident() -> None:
    processor = EventProcessor(ProcessorState(), CONFIG, ALERTS)
    before = run([tip("t", 0, reporter_contact="+84911000030")], processor)
    after = run([builders.verdict("fb", when(90), "false_report", tip_event_id="t", commune_code=26680)], processor)
    assert after["incident_id"] == before["incident_id"]
    assert after["version"] == before["version"] + 1
    assert after["credibility"] < before["credibility"]
    assert _reason(after, "officer_false_report") < 0


def test_scores_come_from_event_time_only() -> None:
    events = history("+84911000040", "valuable") + [tip("t", 0, reporter_contact="+84911000040")]
    assert run(events) == run(events)


def test_auc_on_simulated_truth_meets_the_target() -> None:
    pairs = rescored(scored(days=4, seed=3, population="default").truth(), CONFIG)
    assert len(pairs) > 150
    assert roc_auc(pairs) >= 0.85
    assert brier(pairs) < 0.2


def _reason(snapshot: dict[str, Any], signal: str) -> float:
    return next((r["contribution"] for r in snapshot["reasons"] if r["signal"] == signal), 0.0)


def test_officers_verdicts_push_the_score_their_way() -> None:
    """A sign flipped in the weights must show: valuable up, not valuable and false down."""
    scores = {}
    for verdict in ("valuable", "not_valuable", "false_report"):
        processor = EventProcessor(ProcessorState(), CONFIG, ALERTS)
        before = run([tip("t", 0, reporter_contact="+84911000050")], processor)
        after = run([builders.verdict("fb", when(90), verdict, tip_event_id="t", commune_code=26680)], processor)
        scores[verdict] = after["credibility"] - before["credibility"]
        signal = {"valuable": "officer_valuable", "not_valuable": "officer_not_valuable",
                  "false_report": "officer_false_report"}[verdict]
        assert (_reason(after, signal) > 0) == (verdict == "valuable"), verdict
    assert scores["valuable"] > 0 > scores["not_valuable"] and scores["false_report"] < 0


def test_a_source_group_with_valuable_tips_outscores_one_with_false_reports() -> None:
    def group_history(group: str, verdict: str) -> list[dict[str, Any]]:
        out = []
        for i in range(4):  # different reporters, one Zalo group
            out.append(tip(f"old-{group}-{i}", i, f"Chuyện thứ {i} ở ấp {i}", day=1 + i, source_ref=group,
                           reporter_contact=f"+8491200{i:04d}{len(group)}"))
            out.append(builders.verdict(f"fb-{group}-{i}", when(i + 30, day=1 + i), verdict,
                                        tip_event_id=f"old-{group}-{i}", commune_code=26680))
        return out

    good = run(group_history("zalo-good", "valuable") + [tip("t", 0, source_ref="zalo-good")])
    bad = run(group_history("zalo-bad-group", "false_report") + [tip("t", 0, source_ref="zalo-bad-group")])
    assert _reason(good, "source_reputation") > 0 > _reason(bad, "source_reputation")
    assert good["credibility"] > bad["credibility"]


def test_every_signal_has_a_label_an_officer_can_read() -> None:
    from processors.credibility import SIGNAL_LABELS

    assert set(SIGNAL_LABELS) == set(CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG).weights)
