"""What the worker does with each consumed message value, without Kafka."""

from __future__ import annotations

import pytest

from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from schemas import CODEC
from streams.topics import DEVICE_SIGNALS, TIPS
from streams.runtime.batch import Accepted, Message, Rejected, dead_letter, triage

TIP = {"type": "tip", "event_id": "t-1", "occurred_at": "2025-06-26T06:35:00+07:00",
       "commune_code": 25813, "channel": "zalo", "text": "có đánh nhau", "reporter_contact": "0912000111"}


def wire(obj: dict) -> tuple[str, dict]:
    event_type, record, _ = parse_contract(obj, Pseudonymiser(b"k" * 32))
    return event_type, record


def test_a_valid_event_is_accepted() -> None:
    event_type, record = wire(TIP)
    verdict = triage(CODEC.encode(event_type, record), TIPS)
    assert isinstance(verdict, Accepted) and verdict.event_type == "tip"
    assert {k: verdict.record[k] for k in record} == record
    # fields the tip did not carry come back as their schema defaults
    assert {k: v for k, v in verdict.record.items() if k not in record} == {
        "source_ref": None, "location_text": None, "lat": None, "lon": None, "category": None,
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message value (tombstone)"),
        (b"\x00garbage\xff" * 3, "not Avro single-object encoded: missing the C3 01 marker"),
        (b'{"type":"tip"}', "not Avro single-object encoded: missing the C3 01 marker"),
    ],
)
def test_undecodable_values_get_a_reason(value: bytes | None, reason: str) -> None:
    verdict = triage(value, TIPS)
    assert isinstance(verdict, Rejected) and verdict.reason.startswith(reason)
    assert verdict.kind == ("tombstone" if value is None else "decode")


def test_an_event_on_the_wrong_topic_is_dead_lettered() -> None:
    event_type, record = wire(TIP)
    assert triage(CODEC.encode(event_type, record), DEVICE_SIGNALS) == Rejected(
        "wrong_topic", "a tip event on binhyen.device-signals.v1; publish it to binhyen.tips.v1"
    )


def test_a_well_encoded_but_invalid_event_is_dead_lettered() -> None:
    """A producer that bypasses the publisher is still held to the contract."""
    event_type, record = wire(TIP)
    bad = dict(record, commune_code=99_999_999, text="   ")
    verdict = triage(CODEC.encode(event_type, bad), TIPS)
    assert isinstance(verdict, Rejected) and verdict.kind == "contract"
    assert verdict.reason.startswith("commune_code: 99999999 is not a 2025 commune code")


def test_dead_letter_carries_reason_origin_and_original_bytes() -> None:
    letter = dead_letter(Rejected("contract", "why"), Message(TIPS, 3, 42, b"\x01\x02"), 1_700_000_000_000)
    event_type, record = CODEC.decode(letter)
    assert event_type == "dead_letter"
    assert record == {"reason": "why", "source_topic": TIPS, "source_partition": 3, "source_offset": 42,
                      "original": b"\x01\x02", "original_size": 2, "dead_lettered_at_ms": 1_700_000_000_000}


def test_an_oversize_original_is_cut_but_its_size_kept() -> None:
    huge = b"\xff" * 900_000
    assert triage(huge, TIPS) == Rejected("decode", "not Avro single-object encoded: missing the C3 01 marker")
    letter = dead_letter(Rejected("decode", "too big"), Message(TIPS, 0, 7, huge), 0)
    assert len(letter) < 70_000
    record = CODEC.decode(letter)[1]
    assert record["original"] == huge[:65_536] and record["original_size"] == 900_000


def test_an_event_off_its_keys_partition_is_dead_lettered_and_on_it_accepted() -> None:
    """Key 25813 hashes (murmur2, as kafka-python and the Java client) to one partition of eight;
    a producer with another partitioner (librdkafka's default) puts it elsewhere, where the
    commune's state is not: dead-lettered, with what the producer must change."""
    from kafka.partitioner.default import DefaultPartitioner

    from streams.runtime.batch import BatchStep

    event_type, record = wire(TIP)
    value = CODEC.encode(event_type, record)
    class EightPartitions:  # the cluster metadata kafka-python's partitioner asks
        def topics(self) -> set[str]:
            return {TIPS}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(8))

        available_partitions_for_topic = partitions_for_topic

    home = DefaultPartitioner().partition(TIPS, "25813", b"25813", None, value, EightPartitions())
    away = (home + 1) % 8
    step = BatchStep(None, partitions=8)
    [(_, at_home), (_, elsewhere)] = step.triage([Message(TIPS, home, 0, value), Message(TIPS, away, 0, value)], 0)
    assert isinstance(at_home, Accepted)
    assert elsewhere == Rejected("wrong_partition", f"key '25813' belongs on partition {home} of {TIPS}, not {away}: "
                                 "the producer must partition keys with murmur2 as the Java client does "
                                 "(librdkafka: partitioner=murmur2_random)")
    assert isinstance(BatchStep(None).triage([Message(TIPS, away, 0, value)], 0)[0][1], Accepted)  # unchecked


def test_a_pseudonym_or_token_the_edge_did_not_make_is_dead_lettered() -> None:
    """A producer with write access to the input topics, past the edge, stores a phone number as a
    format-valid pseudonym or as a fake token: the worker's check key (one-way from the pseudonym
    key) tells them from the edge's; without it only the format is checked."""
    edge = Pseudonymiser(b"k" * 32)
    check = edge.check()
    event_type, record = wire(TIP)
    assert isinstance(triage(CODEC.encode(event_type, record), TIPS, check=check), Accepted)
    forged = dict(record, reporter_pseudonym="rp_" + "0" * 22 + "0936214587")
    refused = triage(CODEC.encode(event_type, forged), TIPS, check=check)
    assert isinstance(refused, Rejected) and refused.kind == "contract"
    assert "0936214587" not in refused.reason and refused.reason.startswith("reporter_pseudonym: ")
    assert isinstance(triage(CODEC.encode(event_type, forged), TIPS), Accepted)  # no check key: format only
    other_edge = dict(record, reporter_pseudonym=Pseudonymiser(b"x" * 32).reporter("0912000111"))
    assert isinstance(triage(CODEC.encode(event_type, other_edge), TIPS, check=check), Rejected)
    token = edge.text_token("SĐT", "0936214587")
    with_token = dict(record, text=f"gọi số {token}")
    assert isinstance(triage(CODEC.encode(event_type, with_token), TIPS, check=check), Accepted)
    fake = "[SĐT:" + "0936214587" + token[-7:]
    faked = triage(CODEC.encode(event_type, dict(record, text=f"gọi số {fake}")), TIPS, check=check)
    assert isinstance(faked, Rejected) and "0936214587" not in faked.reason
