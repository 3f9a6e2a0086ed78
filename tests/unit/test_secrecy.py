"""Informants stay secret at the edge: the security review's findings 1, 4, 6 and 7, and the second
round's forged pseudonyms and tokens and run-stopping numbers, each reproduced against what the
publisher and the worker do now.

Finding 1 was an auto-assigned event id that was an unkeyed uuid5 over the raw event,
contact included: brute force over the phone numbers recovered the contact. The attack
below runs over a small keyspace; it must find the contact with the old derivation (so the
attack is real) and find nothing in anything binhyen now stores.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.pseudonym import Pseudonymiser, normalise_contact
from processors.validation import MAX_LINE_BYTES, InvalidEvent, check_rules, parse_contract
from schemas import CODEC
from streams.cli import _bounded_lines
from streams.edge.publisher import Publisher
from streams.topics import TIPS
from streams.runtime.batch import Accepted, Rejected, triage
from tests.conftest import legacy_event_id, unkeyed_hashes

KEY = b"k" * 32
PSEUDONYMS = Pseudonymiser(KEY)
KEYSPACE = [f"0912345{n:03d}" for n in range(1000)]
SECRET = "0912345678"


def tip_without_id(contact: str, anonymous: bool = False) -> dict[str, Any]:
    return {"type": "tip", "occurred_at": "2025-06-26T06:35:00+07:00", "commune_code": 25813,
            "channel": "zalo", "reporter_contact": contact, "anonymous": anonymous,
            "text": "Có người lạ mặt bán ma tuý ở hẻm 12"}


def stored_strings(record: dict[str, Any]) -> set[str]:
    """Every string value of a wire record, as it is stored in Kafka and ClickHouse."""
    found = set()
    for value in record.values():
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found |= {v for item in value for v in item.values() if isinstance(v, str)}
    return found


def brute_force(stored: set[str], keyspace: list[str], derive: Any) -> list[str]:
    return [guess for guess in keyspace if derive(guess) & stored]


@pytest.mark.parametrize("anonymous", [False, True])
def test_a_contact_cannot_be_brute_forced_from_stored_values(anonymous: bool) -> None:
    obj = tip_without_id(SECRET, anonymous)
    _, record, assigned = parse_contract(obj, PSEUDONYMS)
    assert assigned
    stored = stored_strings(record)

    def every_unkeyed_derivation(guess: str) -> set[str]:
        return ({legacy_event_id(tip_without_id(guess, anonymous))} | unkeyed_hashes(guess)
                | unkeyed_hashes(normalise_contact(guess)) | unkeyed_hashes(json.dumps(tip_without_id(guess, anonymous))))

    # the attack is real: against the old derivation it finds the reporter
    assert brute_force({legacy_event_id(obj)}, KEYSPACE, every_unkeyed_derivation) == [SECRET]
    # and against what binhyen stores now it finds nobody
    assert brute_force(stored, KEYSPACE, every_unkeyed_derivation) == []
    assert not any(SECRET in value or SECRET[1:] in value for value in stored)
    encoded = CODEC.encode("tip", record)
    assert SECRET.encode() not in encoded and SECRET[1:].encode() not in encoded


def test_assigned_ids_are_stable_for_a_retry_and_keyed() -> None:
    first = parse_contract(tip_without_id(SECRET), PSEUDONYMS)[1]["event_id"]
    assert parse_contract(tip_without_id(SECRET), PSEUDONYMS)[1]["event_id"] == first
    assert parse_contract(tip_without_id(SECRET), Pseudonymiser(b"z" * 32))[1]["event_id"] != first
    assert str(uuid.UUID(first)) == first
    # an anonymous tip's id no longer depends on the contact it dropped
    ids = {parse_contract(tip_without_id(guess, anonymous=True), PSEUDONYMS)[1]["event_id"] for guess in KEYSPACE[:50]}
    assert len(ids) == 1


def test_every_way_of_writing_one_number_gives_one_pseudonym() -> None:
    forms = ["0912345678", "+84 912 345 678", "84912345678", "0084 912 345 678", "+84 (0)912 345 678",
             "(+84) 912.345.678", "０９１２３４５６７８", "＋８４ ９１２ ３４５ ６７８", " 0912-345-678 "]
    assert {normalise_contact(form) for form in forms} == {"0912345678"}
    assert len({PSEUDONYMS.reporter(form) for form in forms}) == 1
    landline = ["028 3829 1234", "+84 28 3829 1234", "0084 28 3829 1234"]
    assert {normalise_contact(form) for form in landline} == {"02838291234"}
    assert PSEUDONYMS.reporter("Zalo:ABC") == PSEUDONYMS.reporter("zalo:abc")


@pytest.mark.parametrize("contact", [912345678, [912345678], {"phone": "0912345678"}, 9.12345678e8])
def test_a_contact_of_the_wrong_type_is_rejected_without_repeating_it(contact: Any) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_contract({**tip_without_id(SECRET), "reporter_contact": contact}, PSEUDONYMS)
    assert str(caught.value).startswith("reporter_contact: expected a string for a tip, got ")
    assert "912" not in str(caught.value)


def test_an_over_long_contact_is_rejected_without_repeating_it() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_contract({**tip_without_id(SECRET), "reporter_contact": SECRET * 30}, PSEUDONYMS)
    assert str(caught.value) == "reporter_contact: longer than 200 characters; send one phone number or chat id"


@pytest.mark.parametrize("forged", ["+84 912 345 678", "0912345678", "rp_x", "rp_" + "A" * 32, "rp_" + "0" * 33,
                                    PSEUDONYMS.reporter(SECRET) + "\n"])
def test_the_worker_dead_letters_a_tip_whose_pseudonym_is_not_one(forged: str) -> None:
    _, record, _ = parse_contract({**tip_without_id(SECRET), "event_id": "forged-1"}, PSEUDONYMS)
    # a producer that bypasses the publisher writes its own "pseudonym"
    verdict = triage(CODEC.encode("tip", dict(record, reporter_pseudonym=forged)), TIPS)
    assert verdict == Rejected("contract", "reporter_pseudonym: not a binhyen pseudonym (rp_ and 32 hex digits); "
                                           "publish through binhyen's publisher, which pseudonymises contacts")
    assert isinstance(triage(CODEC.encode("tip", record), TIPS), Accepted)
    with pytest.raises(InvalidEvent):
        check_rules("tip", dict(record, reporter_pseudonym=forged))


def test_a_phone_number_in_a_format_valid_pseudonym_or_a_fake_token_is_refused() -> None:
    """The second review: a producer with write access to the input topics stored 0936214587 as
    `rp_000…0936214587` and as `[SĐT:0936214587]`. The worker holds only the check key."""
    _, record, _ = parse_contract({**tip_without_id(SECRET), "event_id": "forged-2"}, PSEUDONYMS)
    check = PSEUDONYMS.check()
    check_rules("tip", record, check)
    with pytest.raises(InvalidEvent, match="^reporter_pseudonym: not produced by binhyen's edge key;") as caught:
        check_rules("tip", dict(record, reporter_pseudonym="rp_" + "0" * 22 + "0936214587"), check)
    assert "0936214587" not in str(caught.value)
    for text in ("Có trộm [SĐT:0936214587]", "Có trộm [SĐT:0936214587a1b2c3]"):
        with pytest.raises(InvalidEvent) as caught:
            check_rules("tip", dict(record, text=text), check)
        assert "0936214587" not in str(caught.value)
    with pytest.raises(InvalidEvent):  # the old, ten-digit shape is no token even without the check
        check_rules("tip", dict(record, text="Có trộm [SĐT:0936214587]"))


class RecordingProducer:
    """Stands in for KafkaProducer at the publisher's edge: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        self.sent.append((topic, key, value))
        return _Delivered()

    def flush(self, timeout: float | None = None) -> None:
        return None


class _Delivered:
    def failed(self) -> bool:
        return False


def valid_line(n: int) -> bytes:
    return json.dumps({"type": "device_signal", "event_id": f"ok-{n}", "occurred_at": "2025-06-26T06:35:00+07:00",
                       "commune_code": 25813, "device_id": "bell-1", "device_kind": "alarm_bell",
                       "signal": "panic_pressed"}).encode() + b"\n"


HOSTILE_LINES = {
    "lone surrogate": (b'{"type": "tip", "event_id": "s-1", "occurred_at": "2025-06-26T06:35:00+07:00", '
                       b'"commune_code": 25813, "channel": "zalo", "text": "ch\\u00e1y \\ud83d"}\n',
                       "text: contains a lone UTF-16 surrogate (a character cut in half); send valid Unicode text"),
    "surrogate in the id": (b'{"type": "tip", "event_id": "\\ud800", "text": "x"}\n',
                            "event_id: contains a lone UTF-16 surrogate"),
    "huge integer": (b'{"type": "tip", "commune_code": ' + b"9" * 5000 + b"}\n",
                     "a number in the JSON is too long (over 4,300 digits); send real values"),
    "deep nesting": (b'{"type": "tip", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", ""),
    "invalid UTF-8": (b'{"type": "tip", "text": "\xff\xfe caf\xe9"}\n',
                      "not UTF-8 text (byte 0xff at byte 26); send UTF-8 encoded JSON"),
    "over-long line": (b'{"type": "tip", "text": "' + b"a" * (2 * MAX_LINE_BYTES) + b'"}\n',
                       f"line longer than {MAX_LINE_BYTES:,} bytes; send one event of at most that size per line"),
    "membership beyond 32 bits": (b'{"type": "model_change", "event_id": "m-1", "occurred_at": "2025-06-26T06:35:00+07:00", '
                                  b'"commune_code": 25813, "model_id": "z1", "model_kind": "zalo_group", '
                                  b'"change": "members_changed", "members_delta": 99999999999}\n',
                                  "members_delta: outside the contract's 32-bit integer range"),
    "a 400-digit latitude": (b'{"type": "tip", "event_id": "l-1", "occurred_at": "2025-06-26T06:35:00+07:00", '
                             b'"commune_code": 25813, "channel": "zalo", "text": "x", "lat": ' + b"9" * 400
                             + b', "lon": 106.0}\n', "lat: not a finite number; send decimal degrees"),
    "an id holding a phone number": (b'{"type": "tip", "event_id": "sms-0912000777-1", "occurred_at": '
                                     b'"2025-06-26T06:35:00+07:00", "commune_code": 25813, "channel": "sms", "text": "x"}\n',
                                     "event_id: holds a phone number, ID number or e-mail address"),
}


def publish(raw: bytes) -> tuple[list[Any], RecordingProducer]:
    producer = RecordingProducer()
    outcomes = list(Publisher(producer, KEY).publish_lines(_bounded_lines(io.BytesIO(raw))))  # type: ignore[arg-type]
    return outcomes, producer


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_a_hostile_line_is_rejected_alone_and_the_run_goes_on(name: str) -> None:
    line, reason = HOSTILE_LINES[name]
    outcomes, producer = publish(valid_line(1) + line + valid_line(2))
    assert [(o.line, o.status) for o in outcomes] == [(1, "published"), (2, "rejected"), (3, "published")]
    if name == "deep nesting":  # over the line limit or too deep, depending on which bites first
        assert outcomes[1].reason in (HOSTILE_LINES["over-long line"][1], "JSON nested too deeply; an event is one flat object")
    else:
        assert outcomes[1].reason.startswith(reason)
    assert "\n" not in outcomes[1].reason
    assert [topic for topic, _, _ in producer.sent] == ["binhyen.device-signals.v1"] * 2


def test_deep_nesting_within_the_line_limit_is_rejected() -> None:
    depth = MAX_LINE_BYTES // 2 - 20
    outcomes, _ = publish(b'{"type": "tip", "text": ' + b"[" * depth + b"]" * depth + b"}\n")
    assert outcomes[0].reason == "JSON nested too deeply; an event is one flat object"


def test_an_over_long_line_is_read_past_without_keeping_it() -> None:
    huge = b"x" * (10 * MAX_LINE_BYTES) + b"\n"
    lines = list(_bounded_lines(io.BytesIO(valid_line(1) + huge + valid_line(2))))
    assert [len(line) for line in lines] == [len(valid_line(1)), MAX_LINE_BYTES + 1, len(valid_line(2))]


hostile_bytes = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([line for line, _ in HOSTILE_LINES.values()]),
    st.text(max_size=80).map(lambda t: json.dumps({"type": "tip", "text": t}).encode()),
    st.integers(min_value=4200, max_value=6000).map(lambda n: b'{"type": "tip", "x": ' + b"1" * n + b"}"),
    st.binary(max_size=40).map(lambda b: b'{"type": "tip", "text": "' + b + b'"}'),
    st.integers().map(lambda n: b'{"type": "model_change", "event_id": "m", "occurred_at": "2025-06-26T06:35:00+07:00", '
                                b'"commune_code": 25813, "model_id": "z", "model_kind": "zalo_group", '
                                b'"change": "members_changed", "members_delta": ' + str(n).encode() + b'}'),
    st.integers(min_value=300, max_value=4000).map(
        lambda n: b'{"type": "tip", "commune_code": 25813, "channel": "zalo", "text": "x", "lat": ' + b"9" * n
                  + b', "lon": 1e400, "event_id": "f", "occurred_at": "2025-06-26T06:35:00+07:00"}'),
)


@settings(max_examples=150)
@given(st.lists(hostile_bytes, min_size=1, max_size=5))
def test_publisher_fuzz_every_line_gets_an_outcome_and_nothing_stops_the_run(lines: list[bytes]) -> None:
    raw = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines) + valid_line(99)
    outcomes, producer = publish(raw)
    non_blank = [n for n, line in enumerate(raw.split(b"\n")[:-1], start=1) if line.strip()]
    assert [o.line for o in outcomes] == non_blank
    assert outcomes[-1].status == "published" and outcomes[-1].event_id == "ok-99"
    for outcome in outcomes:
        if outcome.status == "rejected":
            assert outcome.reason and "\n" not in outcome.reason
            outcome.reason.encode("utf-8")  # printable: no lone surrogate reaches the terminal
        if outcome.event_id is not None:
            outcome.event_id.encode("utf-8")
    assert len(producer.sent) == sum(o.status == "published" for o in outcomes)
