"""The publisher: the only door through which upstream events enter Kafka.

It validates every contract rule, replaces `reporter_contact` with its pseudonym (or drops
it for anonymous tips), encodes to Avro single-object form and produces keyed per design.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from processors.pseudonym import Pseudonymiser
from processors.validation import InvalidEvent, claimed, parse_contract, parse_json_line, partition_key
from schemas import CODEC
from streams.topics import TOPIC_OF_TYPE

FLUSH_EVERY = 10_000


@dataclass(frozen=True)
class Outcome:
    """What became of one input line."""

    line: int
    status: str  # "published" | "rejected"
    event_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    assigned_id: bool = False


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

    def __init__(self, producer: KafkaProducer, pseudonym_key: bytes) -> None:
        self.producer = producer
        self.pseudonyms = Pseudonymiser(pseudonym_key)
        self._in_flight: list[tuple[int, Any]] = []  # (line, send future) until collected
        self._failures: list[tuple[int, str]] = []

    def encode(self, event: Any) -> tuple[str, bytes, bytes, str, bool]:
        """(topic, key, value, event_id, id_assigned) or raise InvalidEvent; nothing is sent."""
        event_type, record, assigned = parse_contract(event, self.pseudonyms)
        value = CODEC.encode(event_type, record)
        return TOPIC_OF_TYPE[event_type], partition_key(event_type, record), value, record["event_id"], assigned

    def publish(self, event: Any) -> tuple[str, str]:
        """Send one event (asynchronously; call `flush`); returns (topic, event_id)."""
        topic, key, value, event_id, _ = self.encode(event)
        self.producer.send(topic, key=key, value=value)
        return topic, event_id

    def publish_lines(self, lines: Iterable[str | bytes]) -> Iterator[Outcome]:
        """One outcome per non-blank line; a bad line never stops the others."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            obj = None
            try:
                obj = parse_json_line(line)
                topic, key, value, event_id, assigned = self.encode(obj)
            except InvalidEvent as exc:
                yield Outcome(number, "rejected", claimed(obj, "event_id"), claimed(obj, "type"), str(exc))
                continue
            self._in_flight.append((number, self.producer.send(topic, key=key, value=value)))
            if len(self._in_flight) >= FLUSH_EVERY:
                self._collect()
            yield Outcome(number, "published", event_id, obj["type"], assigned_id=assigned)

    def flush(self, timeout: float | None = 30) -> list[tuple[int, str]]:
        """Wait for delivery; returns (line, reason) for every line the broker did not take."""
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
