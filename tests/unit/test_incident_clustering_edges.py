"""The incident clusterer at its edges (processors.incidents, explicit state): which events it
remembers and for exactly how long, what a repeat returns, when an incident closes, the
inclusive similarity threshold and tie-break, windows widened by a slow category on either
side, an alarm's debounce and the minutes a tip may precede or follow it, parked verdicts and
their expiry count, versions and time spans of joined incidents, and the majority category."""

from __future__ import annotations

from typing import Any

from processors.incidents import DedupConfig, IncidentClusterer, TipText, majority_category, tip_member
from processors.text import normalise

C = 18352
M, H, D = 60_000, 3_600_000, 86_400_000
T = 1_756_868_400_000  # 2025-09-03 10:00 +07:00
FIGHT = "có đánh nhau ở chợ, hai nhóm thanh niên cầm gậy"


def tip(event_id: str, at: int, text: str = FIGHT, commune: int | None = C, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at_ms": at, "commune_code": commune, "text": text, "channel": "zalo",
            **extra}


def alarm(event_id: str, at: int, site: str | None = "bank", device: str = "bell-1",
          signal: str = "panic_pressed") -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at_ms": at, "commune_code": C, "device_id": device, "signal": signal,
            "site_kind": site, "device_kind": "alarm_bell", "site_name": "Phòng giao dịch"}


def clusterer(**config: Any) -> IncidentClusterer:
    return IncidentClusterer({}, DedupConfig(**config))


def outcome(result: Any) -> tuple[Any, ...]:
    return result.status, result.incident_id, result.reason, [i["id"] for i in result.updated]


# -- what is remembered, and what a repeat returns ---------------------------------------------------

def test_a_tips_origin_is_kept_and_nothing_elses() -> None:
    incidents = clusterer()
    opened = incidents.handle("tip", tip("t-1", T, reporter_pseudonym="rp_1", source_ref="grp-9", channel="sms"))
    incidents.handle("device_signal", alarm("b-1", T + M))
    assert incidents.tip_origin(C, "t-1") == [T, opened.incident_id, "rp_1", "grp-9", "sms"]
    assert incidents.tip_origin(C, "b-1") is None  # an alarm has no reporter to credit
    assert incidents.tip_origin(C, "t-404") is None and incidents.tip_origin(25813, "t-1") is None


def test_the_incident_of_a_seen_event_while_it_is_open() -> None:
    incidents = clusterer()
    opened = incidents.handle("tip", tip("t-1", T))  # anonymous: no reporter pseudonym
    incidents.handle("feedback", {"event_id": "f-1", "occurred_at_ms": T, "commune_code": C})
    assert incidents.incident_of(tip("t-1", T))["id"] == opened.incident_id
    assert incidents.incident_of(tip("t-404", T)) is None
    assert incidents.incident_of({"event_id": "f-1", "commune_code": C}) is None  # a verdict joins no incident
    incidents.handle("tip", tip("t-2", T + 27 * H + 1, "cháy nhà ở xóm 2", category="fire"))
    assert incidents.incident_of(tip("t-1", T)) is None  # closed


def test_verdicts_are_remembered_and_other_events_are_not() -> None:
    incidents = clusterer()
    feedback = {"event_id": "f-1", "occurred_at_ms": T, "commune_code": C}
    assert outcome(incidents.handle("feedback", feedback)) == ("accepted", None, None, [])
    assert outcome(incidents.handle("feedback", feedback)) == ("duplicate", None, "event_id f-1 already seen", [])
    fresh = clusterer()
    heartbeat = {**alarm("h-1", T), "signal": "heartbeat"}
    assert outcome(fresh.handle("device_signal", heartbeat)) == ("accepted", None, None, [])
    assert outcome(fresh.handle("device_signal", heartbeat)) == ("accepted", None, None, [])
    assert outcome(fresh.handle("tip", tip("t-0", T, commune=None))) == ("accepted", None, None, [])
    assert fresh.communes == {}


def test_a_repeated_tip_names_its_incident_and_returns_it_only_while_open() -> None:
    incidents = clusterer()
    first = incidents.handle("tip", tip("t-1", T, category="fight"))
    assert outcome(first) == ("accepted", first.incident_id, None, [first.incident_id])
    assert outcome(incidents.handle("tip", tip("t-1", T, category="fight"))) == (
        "duplicate", first.incident_id, "event_id t-1 already seen", [first.incident_id])
    incidents.handle("tip", tip("t-2", T + 27 * H + 1, "cháy nhà ở xóm 2", category="fire"))
    assert outcome(incidents.handle("tip", tip("t-1", T, category="fight"))) == (
        "duplicate", first.incident_id, "event_id t-1 already seen", [])


def test_an_incident_closes_just_after_its_window_and_a_day() -> None:
    incidents = clusterer()
    first = incidents.handle("tip", tip("t-1", T, category="fight")).incident_id
    second = incidents.handle("tip", tip("t-2", T + 27 * H, "mất xe máy ở trường", category="theft")).incident_id
    assert [i["id"] for i in incidents.communes[str(C)]["open"]] == [first, second]  # exactly 3 h + 24 h: open
    third = incidents.handle("tip", tip("t-3", T + 27 * H + 1, "cháy nhà ở xóm 2", category="fire")).incident_id
    assert [i["id"] for i in incidents.communes[str(C)]["open"]] == [second, third]


def test_seen_ids_are_kept_for_exactly_the_retention() -> None:
    incidents = clusterer()
    incidents.handle("tip", tip("t-0", T - 1))
    incidents.handle("tip", tip("t-1", T))
    incidents.handle("tip", tip("t-2", T + 7 * D, "cháy nhà ở xóm 2", category="fire"))
    assert incidents.handle("tip", tip("t-1", T)).status == "duplicate"  # exactly 7 days old: kept
    assert incidents.handle("tip", tip("t-0", T - 1)).status == "accepted"  # older: forgotten
    incidents = clusterer()
    incidents.handle("tip", tip("t-1", T))
    incidents.handle("tip", tip("t-2", T + 7 * D + 1, "cháy nhà ở xóm 2", category="fire"))
    assert incidents.handle("tip", tip("t-1", T)).status == "accepted"  # forgotten


def test_parked_verdicts_expire_with_the_retention_and_are_counted() -> None:
    incidents = clusterer()
    incidents.handle("tip", tip("t-0", T))
    incidents.park_verdict(C, "tx-0", T - 1, "valuable")
    incidents.park_verdict(C, "tx-1", T, "valuable")
    incidents.park_verdict(C, "tx-2", T + D, "false_report")
    incidents.handle("tip", tip("t-a", T + 7 * D, "cháy nhà ở xóm 2", category="fire"))
    state = incidents.communes[str(C)]
    assert set(state["parked"]) == {"tx-1", "tx-2"} and state["expired_verdicts"] == 1  # tx-1: exactly 7 days
    incidents.handle("tip", tip("t-b", T + 7 * D + 1, "cháy nhà ở xóm 2", category="fire"))
    state = incidents.communes[str(C)]
    assert (state["parked"], state["expired_verdicts"]) == ({"tx-2": [T + D, "false_report"]}, 2)
    incidents.handle("tip", tip("t-c", T + 8 * D + 1, "cháy nhà ở xóm 2", category="fire"))
    state = incidents.communes[str(C)]
    assert (state["parked"], state["expired_verdicts"]) == ({}, 3)
    assert incidents.take_parked_verdict(C, "tx-2") is None


def test_parking_a_verdict_keeps_what_the_commune_knows() -> None:
    incidents = clusterer()
    opened = incidents.handle("tip", tip("t-1", T, reporter_pseudonym="rp_1"))
    incidents.park_verdict(C, "tx-9", T + M, "valuable")
    assert incidents.incident_of(tip("t-1", T))["id"] == opened.incident_id
    assert incidents.tip_origin(C, "t-1")[:3] == [T, opened.incident_id, "rp_1"]
    assert incidents.take_parked_verdict(C, "tx-9") == "valuable"
    assert incidents.take_parked_verdict(C, "tx-9") is None
    incidents.park_verdict(25813, "tx-8", T, "false_report")  # a commune with no state yet
    assert incidents.handle("tip", tip("t-5", T + M, commune=25813)).status == "accepted"
    assert incidents.take_parked_verdict(25813, "tx-8") == "false_report"


def test_a_verdict_on_a_commune_never_seen_changes_nothing() -> None:
    assert clusterer().record_verdict(25813, "inc-0000", "incident", "valuable") is None


# -- placement ---------------------------------------------------------------------------------------

def test_a_joined_incident_spans_its_reports_and_counts_its_versions() -> None:
    incidents = clusterer()
    opened = incidents.handle("tip", tip("t-1", T + 10 * M)).updated[0]
    assert (opened["first"], opened["last"], opened["version"]) == (T + 10 * M, T + 10 * M, 1)
    joined = incidents.handle("tip", tip("t-2", T)).updated[0]  # told later, happened earlier
    assert (joined["id"], joined["first"], joined["last"], joined["version"]) == (opened["id"], T, T + 10 * M, 2)
    again = incidents.handle("tip", tip("t-3", T + 20 * M)).updated[0]
    assert (again["first"], again["last"], again["version"]) == (T, T + 20 * M, 3)


def test_a_tie_goes_to_the_oldest_open_incident() -> None:
    incidents = clusterer()
    theft = incidents.handle("tip", tip("t-1", T, category="theft")).incident_id
    fight = incidents.handle("tip", tip("t-2", T + M, category="fight")).incident_id
    assert theft != fight  # the same words, contradicting categories
    assert incidents.handle("tip", tip("t-3", T + 2 * M)).incident_id == theft


def test_the_similarity_threshold_is_inclusive() -> None:
    incidents = clusterer(similarity=0.5)  # a tip naming an alarm's site fits it by site_fit = 0.5
    bell = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("tip", tip("t-1", T + M, "có cướp ở ngân hàng", category="theft")).incident_id == bell


def test_a_report_without_a_category_contradicts_none() -> None:
    incidents = clusterer()
    first = incidents.handle("tip", tip("t-1", T)).incident_id
    assert incidents.handle("tip", tip("t-2", T + M, category="theft")).incident_id == first


def test_a_slow_category_on_either_side_widens_the_window() -> None:
    text = "bị giật hụi 200 triệu, chủ hụi bỏ trốn khỏi ấp 3"
    for first, second in ((None, "hui"), ("hui", None)):
        incidents = clusterer()
        opened = incidents.handle("tip", tip("t-1", T, text, category=first)).incident_id
        assert incidents.handle("tip", tip("t-2", T + 5 * H, text, category=second)).incident_id == opened
    incidents = clusterer()
    opened = incidents.handle("tip", tip("t-1", T, category="theft")).incident_id
    assert incidents.handle("tip", tip("t-2", T + 5 * H, category="theft")).incident_id != opened


def test_the_same_bell_within_the_debounce_is_one_trigger() -> None:
    incidents = clusterer()
    first = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("device_signal", alarm("b-2", T + 2 * M)).incident_id == first
    incidents = clusterer()
    first = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("device_signal", alarm("b-2", T + 2 * M + 1)).incident_id != first


def test_a_tip_fits_an_alarm_from_ten_minutes_before_to_ninety_after() -> None:
    robbery = "có cướp ở ngân hàng"
    incidents = clusterer()
    told = incidents.handle("tip", tip("t-1", T, robbery, category="theft")).incident_id
    assert incidents.handle("device_signal", alarm("b-1", T + 10 * M)).incident_id == told  # the alarm joins the tip
    incidents = clusterer()
    told = incidents.handle("tip", tip("t-1", T, robbery, category="theft")).incident_id
    assert incidents.handle("device_signal", alarm("b-1", T + 10 * M + 1)).incident_id != told
    incidents = clusterer()
    bell = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("tip", tip("t-1", T + 90 * M, robbery, category="theft")).incident_id == bell
    incidents = clusterer()
    bell = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("tip", tip("t-1", T + 90 * M + 1, robbery, category="theft")).incident_id != bell


def test_a_tip_of_another_kind_or_an_alarm_without_a_site_never_fit() -> None:
    incidents = clusterer()
    bell = incidents.handle("device_signal", alarm("b-1", T)).incident_id
    assert incidents.handle("tip", tip("t-1", T + M, "lừa đảo chuyển tiền ở ngân hàng",
                                       category="fraud")).incident_id != bell
    incidents = clusterer()
    bell = incidents.handle("device_signal", alarm("b-1", T, site=None)).incident_id
    assert incidents.handle("tip", tip("t-1", T + M, "có cướp ở ngân hàng", category="theft")).incident_id != bell


# -- texts and categories ------------------------------------------------------------------------------

def test_a_report_of_four_words_inside_a_longer_one_counts_half_its_overlap() -> None:
    def text(words: set[str]) -> TipText:
        return TipText(frozenset({"#" + "".join(sorted(words))}), frozenset(words), {})  # no shingle in common

    short, three, long = text({"a", "b", "c", "d"}), text({"a", "b", "c"}), text({"a", "b", "c", "d", "e", "f"})
    assert short.similarity(long) == 0.5 == long.similarity(short)
    assert three.similarity(long) == 0.0  # under four words: word overlap does not count


def test_the_majority_category_then_the_first_name_alphabetically() -> None:
    def of(*categories: str | None) -> dict[str, Any]:
        return {"members": [{"cat": c} for c in categories] + [{"k": "device"}]}

    assert majority_category(of("fight", "theft", "theft", None)) == "theft"
    assert majority_category(of("theft", "fight")) == "fight"
    assert majority_category(of(None)) is None


def test_a_tips_place_is_part_of_its_text() -> None:
    member = tip_member(tip("t-1", T, "có đánh nhau", location_text="chợ Bến Thành"))
    assert member["txt"] == normalise("có đánh nhau chợ Bến Thành")
    assert tip_member(tip("t-2", T, "có đánh nhau"))["txt"] == normalise("có đánh nhau")
