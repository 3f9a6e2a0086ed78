"""Hostile input, property-based: whatever arrives, the decoder, the validator and the offline
run answer with a reason — never a crash — and valid events survive unchanged."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.pseudonym import Pseudonymiser
from processors.validation import InvalidEvent, check_rules, parse_contract
from schemas import CODEC, DecodeError
from streams.topics import TIPS
from streams.runtime.batch import REJECTION_KINDS, Accepted, Rejected, triage
from tests.conftest import offline_run

KEY = b"k" * 32
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
FIELDS = ["type", "event_id", "occurred_at", "commune_code", "legacy_commune_code", "channel", "text", "lat", "lon",
          "category", "attachments", "reporter_contact", "anonymous", "device_id", "device_kind", "signal",
          "verdict", "tip_event_id", "alert_id", "action", "by", "model_id", "model_kind", "change",
          "members_delta", "teams_delta", "replicated_from", "name", "note", "incident_id", "location_text"]
contract_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10) | json_values
BASE_TIP = {"type": "tip", "event_id": "f-1", "occurred_at": "2025-06-26T06:35:00+07:00", "commune_code": 25813,
            "channel": "zalo", "text": "có đánh nhau"}


pseudonym = Pseudonymiser(KEY)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(contract_like)
def test_any_json_value_is_parsed_or_rejected_with_a_reason(value: Any) -> None:
    try:
        event_type, record, _ = parse_contract(value, pseudonym)
    except InvalidEvent as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # what passes must encode, decode and pass the rules again, the worker's check included
    decoded_type, decoded = CODEC.decode(CODEC.encode(event_type, record))
    assert decoded_type == event_type
    check_rules(decoded_type, decoded, pseudonym.check())


BASE_MODEL = {"type": "model_change", "event_id": "f-2", "occurred_at": "2025-06-26T06:35:00+07:00",
              "commune_code": 25813, "model_id": "zalo-1", "model_kind": "zalo_group", "change": "members_changed"}
numbers = st.integers() | st.floats() | st.integers(min_value=10 ** 300, max_value=10 ** 400)


@settings(max_examples=400)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_mutated_tips_are_parsed_or_rejected(changes: dict[str, Any]) -> None:
    try:
        parse_contract({**BASE_TIP, **changes}, pseudonym)
    except InvalidEvent as exc:
        assert str(exc)


@settings(max_examples=200)
@given(st.sampled_from(["members_delta", "teams_delta", "commune_code", "legacy_commune_code", "lat", "lon"]),
       numbers, st.booleans())
def test_any_number_is_encoded_or_refused_in_one_line(field: str, value: Any, model: bool) -> None:
    """A number the wire cannot carry (a 32-bit int overflowing, a float past 1e308) is refused
    with a reason: it once stopped `publish` and `--dry-run` with a traceback."""
    event = {**(BASE_MODEL if model else BASE_TIP), field: value}
    if field in ("lat", "lon"):
        event = {**event, "lat": 10.5, "lon": 106.0, field: value}
    try:
        event_type, record, _ = parse_contract(event, pseudonym)
    except InvalidEvent as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert CODEC.decode(CODEC.encode(event_type, record))[0] == event_type


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_on_a_topic_are_accepted_or_dead_lettered_with_a_reason(value: bytes) -> None:
    verdict = triage(value, TIPS)
    assert isinstance(verdict, (Accepted, Rejected))
    if isinstance(verdict, Rejected):
        assert verdict.kind in REJECTION_KINDS and verdict.reason and "\n" not in verdict.reason


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=40), st.integers(min_value=10, max_value=200))
def test_corrupted_avro_bodies_are_decode_errors_or_another_record(noise: bytes, cut: int) -> None:
    """A cut body is always a DecodeError; spliced noise is one, or decodes to a record that is
    visibly not the original (never another exception, never the original read back)."""
    _, record, _ = parse_contract(BASE_TIP, pseudonym)
    data = CODEC.encode("tip", record)
    with pytest.raises(DecodeError) as cut_short:
        CODEC.decode(data[: len(data) // 2])
    assert str(cut_short.value)
    for broken in (data[:cut] + noise, data[:10] + noise + data[10:]):
        if broken == data:
            continue  # the noise happened to restore what was cut
        try:
            decoded = CODEC.decode(broken)
        except DecodeError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert decoded != ("tip", record)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_any_line_gives_exactly_one_event_line(line: str) -> None:
    if not line.strip() or len(line.splitlines()) != 1:
        return  # blank lines are skipped; line breaks make several lines
    out = [o for o in offline_run().process([line]) if o["kind"] == "event"]
    assert len(out) == 1 and out[0]["status"] in ("accepted", "rejected")


INJECTIONS = ["'; DROP TABLE events; --", "\" OR 1=1 --", "Robert'); DROP TABLE tips;--", "{{7*7}}", "${jndi:x}"]
UNICODE_EDGES = ["Có đánh nhau", unicodedata.normalize("NFD", "Có đánh nhau ở chợ"), "abc\u202egnp.exe",
                 "😡🚨‼️ cháy!!!", "zero\u200bwidth", "ـبـ mixed اختبار"]


def test_injection_strings_round_trip_unchanged() -> None:
    for text in INJECTIONS:
        _, record, _ = parse_contract({**BASE_TIP, "text": text, "source_ref": text}, pseudonym)
        decoded = CODEC.decode(CODEC.encode("tip", record))[1]
        assert decoded["text"] == text and decoded["source_ref"] == text


def test_unicode_edge_cases_are_kept_as_nfc() -> None:
    for text in UNICODE_EDGES:
        _, record, _ = parse_contract({**BASE_TIP, "text": text}, pseudonym)
        assert record["text"] == unicodedata.normalize("NFC", text)
        assert CODEC.decode(CODEC.encode("tip", record))[1]["text"] == record["text"]


def test_nul_bytes_are_not_json_and_control_characters_are_rejected_or_kept() -> None:
    rejected = next(iter(offline_run().process(['{"type": "tip", "text": "a\x00b"}'])))
    assert rejected["status"] == "rejected" and rejected["reason"].startswith("not valid JSON")
    escaped = json.dumps({**BASE_TIP, "text": "a\u0000b"})
    out = next(iter(offline_run().process([escaped])))
    assert out["status"] == "accepted"  # an escaped NUL is text like any other; Avro and ClickHouse keep it
