"""The publisher: the only door through which upstream events enter Kafka.

It validates every contract rule, replaces `reporter_contact` with its pseudonym (or drops
it for anonymous tips) and contacts typed in free text with keyed tokens, encodes to Avro
single-object form and produces keyed per design. `dry_run_lines` does all of it but the
producing, and shows what would be sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from processors.pseudonym import Pseudonymiser
from processors.validation import InvalidEvent, TimeBounds, claimed, parse_contract, parse_json_line, partition_key
from schemas import CODEC
from streams.topics import TOPIC_OF_TYPE

FLUSH_EVERY = 10_000


@dataclass(frozen=True)
class Encoded:
    topic: str
    key: bytes
    value: bytes
    event_id: str
    assigned_id: bool


@dataclass(frozen=True)
class Outcome:
    """What became of one input line."""

    line: int
    status: str  # "published" | "rejected"
    event_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    assigned_id: bool = False
    topic: str | None = None  # where it was published: known once the broker acknowledged it
    partition: int | None = None
    offset: int | None = None


@dataclass
class Summary:
    published: int = 0
    rejected: int = 0
    assigned_ids: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "published":
            self.published += 1
            self.assigned_ids += outcome.assigned_id
            assert outcome.event_type is not None
            self.by_type[outcome.event_type] = self.by_type.get(outcome.event_type, 0) + 1
        else:
            self.rejected += 1


class Publisher:
    """Validate, pseudonymise, encode and produce contract events.

    >>> publisher = Publisher(producer, key)   # doctest: +SKIP
    >>> publisher.publish({"type": "tip", ...})  # -> (topic, event_id)
    """

    def __init__(self, producer: KafkaProducer | None, pseudonym_key: bytes, bounds: TimeBounds = TimeBounds(),
                 clock: Callable[[], float] = time.time) -> None:
        """`producer` may be None for a publisher that only encodes (`dry_run_lines`); `bounds`
        are checked against `clock` (seconds), the receiving clock."""
        self.producer = producer
        self.pseudonyms = Pseudonymiser(pseudonym_key)
        self.bounds, self.clock = bounds, clock
        self._in_flight: list[tuple[int, Any]] = []  # (line, send future) until collected
        self._failures: list[tuple[int, str]] = []

    def encode(self, event: Any) -> Encoded:
        """The record to produce, or raise InvalidEvent; nothing is sent."""
        return self._encoded(*self._parse(event))

    def _parse(self, event: Any) -> tuple[str, dict[str, Any], bool]:
        """(event type, the record as it will be encoded, whether its id was assigned), or raise InvalidEvent.
        A value the rules did not foresee is a rejected line too, never a stopped run (nor a 500)."""
        try:
            event_type, record, assigned = parse_contract(event, self.pseudonyms)
        except InvalidEvent:
            raise
        except (ValueError, TypeError, OverflowError, KeyError) as exc:  # the value is never repeated
            raise InvalidEvent(f"a value could not be read ({type(exc).__name__}); check the values against "
                               "the contract") from None
        self.bounds.check(record["occurred_at_ms"], int(self.clock() * 1000))
        return event_type, record, assigned

    @staticmethod
    def _encoded(event_type: str, record: dict[str, Any], assigned: bool) -> Encoded:
        try:
            value = CODEC.encode(event_type, record)
        except (ValueError, TypeError, OverflowError) as exc:  # a value the rules let through and Avro cannot hold
            raise InvalidEvent(f"a value does not fit the {event_type} schema ({type(exc).__name__}); "
                               "check the values against the contract") from None
        return Encoded(TOPIC_OF_TYPE[event_type], partition_key(event_type, record), value, record["event_id"], assigned)

    def publish(self, event: Any) -> tuple[str, str]:
        """Send one event (asynchronously; call `flush`); returns (topic, event_id)."""
        encoded = self.encode(event)
        self._producer().send(encoded.topic, key=encoded.key, value=encoded.value)
        return encoded.topic, encoded.event_id

    def publish_lines(self, lines: Iterable[str | bytes]) -> Iterator[Outcome]:
        """One outcome per non-blank line; a bad line never stops the others."""
        for number, obj, encoded in self._encode_lines(lines):
            if isinstance(encoded, InvalidEvent):
                yield Outcome(number, "rejected", claimed(obj, "event_id"), claimed(obj, "type"), str(encoded))
                continue
            self._in_flight.append((number, self._producer().send(encoded.topic, key=encoded.key, value=encoded.value)))
            if len(self._in_flight) >= FLUSH_EVERY:
                self._collect()
            yield Outcome(number, "published", encoded.event_id, obj["type"], assigned_id=encoded.assigned_id)

    def publish_and_confirm(self, objects: list[tuple[int, Any]], allowed: Callable[[str, dict[str, Any]], str | None],
                            timeout: float = 30) -> list[Outcome]:
        """Encode and send parsed events, wait for the broker's acknowledgements, and return one
        outcome per event with where it landed ("failed" when the broker did not take it). An
        event `allowed(event_type, record)` answers a reason for is rejected with that reason."""
        sent: list[tuple[int, Any, Encoded, Any]] = []
        outcomes: dict[int, Outcome] = {}
        for number, obj in objects:
            try:
                event_type, record, assigned = self._parse(obj)
                refused = allowed(event_type, record)
                if refused is not None:
                    outcomes[number] = Outcome(number, "rejected", record["event_id"], event_type, refused)
                    continue
                encoded = self._encoded(event_type, record, assigned)
            except InvalidEvent as exc:
                outcomes[number] = Outcome(number, "rejected", claimed(obj, "event_id"), claimed(obj, "type"), str(exc))
                continue
            future = self._producer().send(encoded.topic, key=encoded.key, value=encoded.value)
            sent.append((number, event_type, encoded, future))
        self._producer().flush(timeout=timeout)
        for number, event_type, encoded, future in sent:
            if future.succeeded():
                where = future.value
                outcomes[number] = Outcome(number, "published", encoded.event_id, event_type, None, encoded.assigned_id,
                                           encoded.topic, where.partition, where.offset)
            else:
                reason = f"the broker did not take it ({type(future.exception).__name__}); send it again"
                outcomes[number] = Outcome(number, "failed", encoded.event_id, event_type, reason)
        return [outcomes[number] for number, _ in objects]

    def dry_run_lines(self, lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
        """Per non-blank line, what `publish_lines` would send — the record decoded back from
        the bytes it would produce, field names as in schemas/ — or why it would be rejected."""
        for number, obj, encoded in self._encode_lines(lines):
            if isinstance(encoded, InvalidEvent):
                yield {"line": number, "status": "rejected", "reason": str(encoded)}
            else:
                yield {"line": number, "status": "would_publish", "topic": encoded.topic,
                       "key": encoded.key.decode("utf-8"), "event": CODEC.decode(encoded.value)[1]}

    def _encode_lines(self, lines: Iterable[str | bytes]) -> Iterator[tuple[int, Any, Encoded | InvalidEvent]]:
        """(line number, parsed JSON or None, the encoded event or why not) per non-blank line."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            obj = None
            try:
                obj = parse_json_line(line)
                yield number, obj, self.encode(obj)
            except InvalidEvent as exc:
                yield number, obj, exc

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            raise RuntimeError("this publisher only encodes (dry run): it was given no producer")
        return self.producer

    def flush(self, timeout: float | None = 30) -> list[tuple[int, str]]:
        """Wait for delivery; returns (line, reason) for every line the broker did not take."""
        if self.producer is None:
            return []
        self._collect(timeout)
        failures, self._failures = self._failures, []
        return failures

    def _collect(self, timeout: float | None = 30) -> None:
        """Wait for what is in flight and keep the failures (bounds memory on big files)."""
        self.producer.flush(timeout=timeout)
        self._failures.extend(
            (line, f"{type(future.exception).__name__}: {future.exception}")
            for line, future in self._in_flight
            if future.failed()
        )
        self._in_flight = []
