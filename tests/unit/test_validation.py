"""The contract rules, legacy commune mapping and pseudonymisation at the publisher's door."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from processors import geography
from processors.pseudonym import Pseudonymiser, normalise_contact
from processors.validation import InvalidEvent, check_rules, parse_contract, partition_key
from tests.conftest import contract_lines

KEY = b"k" * 32


def parse(obj: Any) -> tuple[str, dict[str, Any], bool]:
    return parse_contract(obj, Pseudonymiser(KEY))


def tip(**fields: Any) -> dict[str, Any]:
    base = {"type": "tip", "event_id": "t-1", "occurred_at": "2025-06-26T06:35:00+07:00",
            "commune_code": 25813, "channel": "zalo", "text": "có đánh nhau ở chợ"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_every_contract_example_is_valid() -> None:
    types = [parse(json.loads(line))[0] for line in contract_lines("examples.jsonl")]
    assert len(types) == 13
    assert types.count("tip") == 5 and types.count("device_signal") == 3 and types.count("model_change") == 3


EXPECTED_REASONS = [
    "text: required and must not be empty after trimming",
    "occurred_at: 'not a date' is not an ISO-8601 time with a UTC offset",
    "commune_code: 99999999 is not a 2025 commune code",
    "channel: 'carrier-pigeon' is not one of facebook, hotline, in_person, sms, vneid, web, zalo",
    "device_id: required for a device_signal",
    "type: 'unknown_kind' is not one of tip, device_signal",
    "lat/lon: (48.85, 2.35) is outside Vietnam",
    "not valid JSON (Unterminated string",
    "expected a JSON object per line, got a list",
    "verdict: 'maybe' is not one of duplicate, false_report, not_valuable, valuable",
    "commune_code: expected an integer commune code, got string '25813; DROP TABLE events'",
]


def test_every_invalid_contract_line_is_rejected_with_its_reason() -> None:
    from processors.validation import parse_json_line

    lines = contract_lines("invalid.jsonl")
    assert len(lines) == len(EXPECTED_REASONS)
    for line, expected in zip(lines, EXPECTED_REASONS, strict=True):
        with pytest.raises(InvalidEvent) as caught:
            parse(parse_json_line(line))
        assert str(caught.value).startswith(expected), (line, str(caught.value))
        assert "\n" not in str(caught.value)


def test_contact_is_replaced_by_a_pseudonym_and_never_kept() -> None:
    _, record, _ = parse(tip(reporter_contact="+84 912 000 111"))
    assert "reporter_contact" not in record
    assert record["reporter_pseudonym"] == Pseudonymiser(KEY).reporter("0912000111")
    assert "912" not in json.dumps(record)


def test_anonymous_tip_drops_the_contact_entirely() -> None:
    _, record, _ = parse(tip(reporter_contact="+84900000333", anonymous=True))
    assert record["reporter_pseudonym"] is None
    assert record["anonymous"] is True
    assert "84900000333" not in json.dumps(record)


def test_legacy_commune_code_maps_to_its_2025_commune() -> None:
    event = {"type": "device_signal", "event_id": "d", "occurred_at": "2025-09-03T22:10:00+07:00",
             "legacy_commune_code": 31885, "device_id": "gate-1", "device_kind": "smart_gate",
             "signal": "gate_forced"}
    _, record, _ = parse(event)
    assert record["legacy_commune_code"] == 31885
    commune = geography.commune(record["commune_code"])
    assert commune is not None and commune.name == "Xã Phong Hiệp" and commune.province_name == "Cà Mau"


def test_legacy_mapping_covers_old_wards_and_lands_on_2025_communes() -> None:
    mapping = geography.legacy_to_2025()
    assert len(mapping) >= 10_000
    assert len(geography.communes()) == 3321
    assert len(geography.provinces()) == 34
    assert all(geography.commune(code) is not None for code in mapping.values())
    # Phường Phúc Xá (Ba Đình, Hà Nội, 00001) became part of Phường Hồng Hà.
    assert geography.commune(mapping[1]).name == "Phường Hồng Hà"


@pytest.mark.parametrize(("old_ward", "successor"), [
    (5671, "Xã Văn Lăng"), (10897, "Xã Cẩm Giang"), (21295, "Xã Sơn Hạ"), (21532, "Xã Ba Tô"), (25305, "Xã Lộc Thành"),
    (25798, "Xã Thanh An"), (27847, "Xã Tân Thạnh"), (29932, "Xã Tân Thành")])
def test_communes_whose_names_differ_by_diacritics_alone_are_told_apart(old_ward: int, successor: str) -> None:
    """Eight pairs of communes of one province differ only by diacritics (Xã Văn Lang and Xã Văn
    Lăng in Thái Nguyên): the packages are joined on names that keep them, one to one."""
    assert geography.commune(geography.legacy_to_2025()[old_ward]).name == successor


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"commune_code": None, "legacy_commune_code": 424242}, "legacy_commune_code: 424242 is not a known"),
        ({"legacy_commune_code": 31885}, "commune_code 25813 and legacy_commune_code 31885"),
        ({"commune_code": True}, "commune_code: expected an integer commune code, got boolean"),
        ({"commune_code": None}, "commune_code: required for a tip"),
        ({"text": "x" * 4001}, "text: 4001 characters; at most 4000"),
        ({"lat": 10.5}, "lat/lon: send both or neither"),
        ({"category": "ufo"}, "category: 'ufo' is not one of"),
        ({"attachments": [{"kind": "image", "sha256": "xyz"}]}, "attachments[0].sha256: expected 64"),
        ({"attachments": [{"kind": "hologram", "sha256": "a" * 64}]}, "attachments[0].kind: 'hologram'"),
        ({"attachments": ["photo.jpg"]}, "attachments[0]: expected"),
        ({"colour": "red"}, "unknown field 'colour' for a tip"),
        ({"occurred_at": "2025-06-26T06:35:00"}, "occurred_at: '2025-06-26T06:35:00' is not an ISO-8601 time with a UTC offset"),
        ({"occurred_at": "1925-06-26T06:35:00+07:00"}, "occurred_at: must fall between 2000 and 2100"),
        ({"event_id": 17}, "event_id: expected a string, got integer 17"),
        ({"anonymous": "yes"}, "anonymous: expected true or false for a tip, got string 'yes'"),
        ({"lat": float("nan"), "lon": 106.0}, "lat/lon: must be finite numbers"),
    ],
)
def test_rule_violations_name_the_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(tip(**fields))
    assert str(caught.value).startswith(reason), str(caught.value)


def test_model_change_replication_needs_its_origin() -> None:
    event = {"type": "model_change", "event_id": "m", "occurred_at": "2025-05-20T08:00:00+07:00",
             "commune_code": 26659, "model_id": "z2", "model_kind": "zalo_group", "change": "replicated"}
    with pytest.raises(InvalidEvent, match="replicated_from: required when change is 'replicated'"):
        parse(event)


def test_feedback_needs_a_tip_or_incident() -> None:
    event = {"type": "feedback", "event_id": "f", "occurred_at": "2025-06-26T09:00:00+07:00", "verdict": "valuable"}
    with pytest.raises(InvalidEvent, match="send tip_event_id or incident_id"):
        parse(event)


def test_text_is_normalised_to_nfc_and_times_to_epoch_ms() -> None:
    decomposed = unicodedata.normalize("NFD", "Có trộm xe máy")
    _, record, _ = parse(tip(text=decomposed))
    assert record["text"] == unicodedata.normalize("NFC", decomposed)
    assert record["occurred_at_ms"] == 1_750_894_500_000  # 2025-06-25T23:35:00Z
    assert record["utc_offset_min"] == 420


def test_missing_event_id_is_assigned_deterministically() -> None:
    first = parse(tip(event_id=None))
    second = parse(tip(event_id=None))
    other = parse(tip(event_id=None, text="chuyện khác"))
    assert first[2] is True
    assert first[1]["event_id"] == second[1]["event_id"] != other[1]["event_id"]


def test_check_rules_holds_wire_records_to_the_same_rules() -> None:
    _, record, _ = parse(tip())
    check_rules("tip", record)
    with pytest.raises(InvalidEvent, match="commune_code: 1 is not a 2025 commune code"):
        check_rules("tip", dict(record, commune_code=1))
    with pytest.raises(InvalidEvent, match="reporter_pseudonym: must be absent on an anonymous tip"):
        check_rules("tip", dict(record, anonymous=True, reporter_pseudonym="rp_x"))


def test_partition_keys_follow_the_design() -> None:
    lines = [json.loads(line) for line in contract_lines("examples.jsonl")]
    keys = {}
    for obj in lines:
        event_type, record, _ = parse(obj)
        keys[record["event_id"]] = partition_key(event_type, record)
    assert keys["tip-0001"] == b"25813"
    assert keys["dev-0003"] == str(geography.legacy_to_2025()[31885]).encode()
    assert keys["mc-0001"] == b"zalo-datdo-ketnoi"
    assert keys["aa-0001"] == b"alert-0001"
    assert keys["fb-0001"] == b"25813"


def test_pseudonyms_are_stable_keyed_and_contact_free() -> None:
    forms = ["+84912000111", "0912000111", "+84 912-000-111", "84912000111"]
    assert {normalise_contact(form) for form in forms} == {"0912000111"}
    assert len({Pseudonymiser(KEY).reporter(form) for form in forms}) == 1
    assert Pseudonymiser(KEY).reporter("zalo:5512093") == Pseudonymiser(KEY).reporter("ZALO:5512093")
    assert Pseudonymiser(KEY).reporter("0912000111") != Pseudonymiser(b"z" * 32).reporter("0912000111")
    assert Pseudonymiser(KEY).reporter("0912000111") != Pseudonymiser(KEY).reporter("0912000112")
    assert "0912000111" not in Pseudonymiser(KEY).reporter("0912000111")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymiser(b"short").reporter("0912000111")


@pytest.mark.parametrize(("event", "reason"), [
    ({"type": "model_change", "model_id": "z1", "model_kind": "zalo_group", "change": "members_changed",
      "members_delta": 99999999999},
     "members_delta: outside the contract's 32-bit integer range (-2,147,483,648 to 2,147,483,647); send the real value"),
    ({"type": "model_change", "model_id": "z1", "model_kind": "zalo_group", "change": "teams_changed",
      "teams_delta": -2 ** 31 - 1}, "teams_delta: outside the contract's 32-bit integer range"),
    ({"type": "tip", "channel": "zalo", "text": "x", "commune_code": 2 ** 31}, "commune_code: outside the contract's"),
    ({"type": "tip", "channel": "zalo", "text": "x", "lat": 10 ** 400, "lon": 106.0},
     "lat: not a finite number; send decimal degrees"),
    ({"type": "tip", "channel": "zalo", "text": "x", "lat": float("inf"), "lon": 106.0}, "lat/lon: must be finite numbers"),
])
def test_numbers_the_wire_cannot_carry_are_refused_in_one_line(event: dict[str, Any], reason: str) -> None:
    line = {"event_id": "n-1", "occurred_at": "2025-06-26T06:35:00+07:00", "commune_code": 25813, **event}
    with pytest.raises(InvalidEvent) as caught:
        parse(line)
    assert str(caught.value).startswith(reason) and "\n" not in str(caught.value)
    assert "99999999999" not in str(caught.value) and "0000000000" not in str(caught.value)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"source_ref": "x" * 1001}, "source_ref: 1001 characters; at most 1000 are allowed"),
    ({"location_text": "x" * 1001}, "location_text: 1001 characters; at most 1000 are allowed"),
    ({"event_id": "x" * 201}, "event_id: 201 characters; at most 200 are allowed"),
    ({"reporter_contact": "0" * 201}, "reporter_contact: longer than 200 characters; send one phone number or chat id"),
    ({"occurred_at": "2025-06-26T06:35:00+07:00" + " " * 200}, "occurred_at: 225 characters; at most 200 are allowed"),
    ({"attachments": [{"kind": "image", "sha256": "a" * 201}]}, "attachments[0].sha256: 201 characters; at most 200"),
])
def test_every_string_field_has_a_length_limit(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(tip(**fields))
    assert str(caught.value).startswith(reason), str(caught.value)


ID_FIELDS = {
    "event_id": ("tip", {}), "device_id": ("device_signal", {"device_kind": "alarm_bell", "signal": "panic_pressed"}),
    "model_id": ("model_change", {"model_kind": "zalo_group", "change": "launched"}),
    "replicated_from": ("model_change", {"model_id": "z2", "model_kind": "zalo_group", "change": "replicated"}),
    "tip_event_id": ("feedback", {"verdict": "valuable"}), "incident_id": ("feedback", {"verdict": "valuable"}),
    "alert_id": ("alert_action", {"action": "ack", "by": "ca-nghixuan-truc-ban"}),
    "by": ("alert_action", {"alert_id": "al-25813-0a1b2c3d4e5f6a7b", "action": "ack"}),
}


@pytest.mark.parametrize("field", sorted(ID_FIELDS))
@pytest.mark.parametrize("value", ["sms-0912000777-2025", "cccd-001203004567", "nguyenvana@gmail.com"])
def test_an_identifier_holding_a_contact_is_refused_without_repeating_it(field: str, value: str) -> None:
    event_type, fields = ID_FIELDS[field]
    event = {"type": event_type, "event_id": "id-1", "occurred_at": "2025-06-26T06:35:00+07:00",
             "commune_code": 25813, "channel": "zalo", "text": "có trộm", **fields, field: value}
    event = {k: v for k, v in event.items() if k in ("type", "event_id", "occurred_at", "commune_code", field)
             or k in fields or (event_type == "tip" and k in ("channel", "text"))}
    with pytest.raises(InvalidEvent) as caught:
        parse(event)
    assert str(caught.value) == (f"{field}: holds a phone number, ID number or e-mail address; "
                                 "send an id that carries no contact")


def test_the_edge_output_passes_the_workers_check_and_nothing_else_does() -> None:
    edge = Pseudonymiser(KEY)
    check = edge.check()
    _, record, _ = parse(tip(reporter_contact="+84 912 000 111", text="gọi 0912.345.678", source_ref="zalo:0987654321"))
    check_rules("tip", record, check)
    other = Pseudonymiser(b"z" * 32)
    stored_as_phone = "rp_" + "0" * 22 + "0936214587"  # format-valid: only the check tells it from a pseudonym
    for forged in (other.reporter("+84 912 000 111"), stored_as_phone):
        check_rules("tip", dict(record, reporter_pseudonym=forged))  # the format alone lets it through
        with pytest.raises(InvalidEvent) as caught:
            check_rules("tip", dict(record, reporter_pseudonym=forged), check)
        assert str(caught.value) == ("reporter_pseudonym: not produced by binhyen's edge key; publish through "
                                     "binhyen's publisher or the gateway, which pseudonymise contacts")
    for text in ("gọi [SĐT:0936214587abcdef]", "gọi " + other.text_token("SĐT", "0912345678")):
        with pytest.raises(InvalidEvent) as caught:
            check_rules("tip", dict(record, text=text), check)
        assert str(caught.value) == ("text: holds a token not made by binhyen's edge key; publish through "
                                     "`binhyen publish` or the gateway, which replace contacts with keyed tokens")
    assert check.pseudonym_ok(record["reporter_pseudonym"]) and not check.pseudonym_ok(stored_as_phone)
    assert not check.pseudonym_ok(record["reporter_pseudonym"] + "\n")


def test_one_person_one_pseudonym_however_the_contact_is_written() -> None:
    forms = ["912 345 678", "tel:0912345678", "Zalo: 0912345678", "٠٩١٢٣٤٥٦٧٨", "0912345678", "+84 912 345 678",
             "0\u200b912\u00a0345\u202f678", "O912345678"]
    assert {normalise_contact(form) for form in forms} == {"0912345678"}
    assert len({Pseudonymiser(KEY).reporter(form) for form in forms}) == 1
    assert normalise_contact("0168 234 5719") == normalise_contact("038 234 5719")  # renumbered in 2018
