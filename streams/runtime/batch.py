"""The batch step: raw messages in, everything they cause out — plain code, no Faust.

`triage` turns one message value into a typed verdict (`Accepted`, `Tick` or
`Rejected(kind, reason)`); `BatchStep.run` takes a batch through triage and the processors
(the same ones `binhyen process` runs) and returns a `BatchOutput`: the rows each sink must
take and the records to produce before the batch may be acknowledged. The checkpoint
(streams.runtime.checkpoint) then commits it.

Within a batch, events are processed in event-time order, each partition's own order kept
(`in_event_time_order`, as Kafka Streams picks the partition whose head is oldest): a tip and
the panic bell pressed a minute before it arrive on different topics, often whole fetches
apart, and `binhyen process` reads them in time order.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka.partitioner.default import murmur2

from processors.alerts import commune_of_alert
from processors.pipeline import EventProcessor
from processors.pseudonym import EdgeCheck
from processors.validation import InvalidEvent, TimeBounds, check_rules, partition_key
from schemas import CODEC, DecodeError
from sinks.clickhouse import alert_row, event_row, incident_rows, tip_score_row
from streams.runtime.state import EventCursor
from streams.topics import (
    ALERT_ACTIONS, ALERTS, COMMUNE_CONTROL, DEAD_LETTER, DEVICE_SIGNALS, FEEDBACK, INCIDENTS, TIPS, TOPIC_OF_TYPE,
)

log = logging.getLogger("binhyen.worker")
MAX_DEAD_LETTER_ORIGINAL = 65_536
SWEEP_EVERY_MS = 60_000

RejectionKind = Literal["tombstone", "tick", "decode", "wrong_topic", "wrong_partition", "contract", "clock",
                        "verdict", "action", "processing"]
REJECTION_KINDS: tuple[RejectionKind, ...] = ("tombstone", "tick", "decode", "wrong_topic", "wrong_partition",
                                              "contract", "clock", "verdict", "action", "processing")


@dataclass(frozen=True)
class Message:
    """One consumed record; `token` is the framework's handle on it (state writes are routed by it)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    token: Any = None
    timestamp_ms: int = 0  # when it was written (the record's timestamp)


@dataclass(frozen=True)
class Accepted:
    event_type: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Tick:
    """The worker's timer asking a commune to act on what is due (escalations, silent devices)."""

    commune: int
    now_ms: int


@dataclass(frozen=True)
class Rejected:
    """Why a message is dead-lettered: a bounded `kind` for metrics, the `reason` for people."""

    kind: RejectionKind
    reason: str


Verdict = Accepted | Tick | Rejected


def triage(value: Any, topic: str, bounds: TimeBounds | None = None, now_ms: int = 0,
           check: EdgeCheck | None = None) -> Verdict:
    """Decode and validate one message value: the event, a tick, or why it is dead-lettered.
    With `bounds`, an event dated too far from the clock `now_ms` is dead-lettered too (one that
    bypassed the edge), so no commune's clock runs ahead of the wall clock by more than they allow.
    With `check`, a pseudonym or text token the edge's key did not make is dead-lettered: a
    producer past the edge cannot store a phone number as a format-valid pseudonym."""
    if not isinstance(value, (bytes, bytearray)):
        return Rejected("tombstone", "empty message value (tombstone); binhyen input topics carry no tombstones")
    if topic == COMMUNE_CONTROL and value[:1] == b"{":
        try:
            tick = json.loads(value)
            return Tick(int(tick["tick"]), int(tick["now_ms"]))
        except (ValueError, KeyError, TypeError):
            return Rejected("tick", "malformed tick on the control topic")
    try:
        event_type, record = CODEC.decode(value)
    except DecodeError as exc:
        return Rejected("decode", str(exc))
    # alert actions and verdicts without a commune are forwarded to the commune's control partition
    expected = (TOPIC_OF_TYPE.get(event_type), COMMUNE_CONTROL) if event_type in ("alert_action", "feedback") else (
        TOPIC_OF_TYPE.get(event_type),)
    if topic not in expected:
        return Rejected("wrong_topic", f"a {event_type} event on {topic}; publish it to {TOPIC_OF_TYPE[event_type]}")
    try:
        check_rules(event_type, record, check)
    except InvalidEvent as exc:
        return Rejected("contract", str(exc))
    try:
        if bounds is not None:
            bounds.check(record["occurred_at_ms"], now_ms)
    except InvalidEvent as exc:
        return Rejected("clock", str(exc))
    return Accepted(event_type, record)


def on_its_partition(message: Message, verdict: Verdict, partitions: int) -> Verdict:
    """An event of a commune-keyed input topic must be on the partition its key hashes to (murmur2,
    as the Java client and binhyen's publisher and gateway partition): the commune's state lives
    with that partition, and an event elsewhere would split it (an alert raised on one partition
    and escalated on another, for ever "due" to the timer). Such an event is dead-lettered."""
    if not isinstance(verdict, Accepted) or message.topic not in (TIPS, DEVICE_SIGNALS, FEEDBACK):
        return verdict
    key = partition_key(verdict.event_type, verdict.record)
    expected = (murmur2(key) & 0x7FFFFFFF) % partitions
    if message.partition == expected:
        return verdict
    return Rejected("wrong_partition", f"key {key.decode(errors='replace')!r} belongs on partition {expected} of "
                                       f"{message.topic}, not {message.partition}: the producer must partition keys "
                                       "with murmur2 as the Java client does (librdkafka: partitioner=murmur2_random)")


def dead_letter(rejected: Rejected, message: Message, now_ms: int) -> bytes:
    """The dead-letter event; the original is cut to 64 KiB so a near-limit message still fits."""
    original = bytes(message.value or b"")
    return CODEC.encode("dead_letter", {
        "reason": rejected.reason,
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "original": original[:MAX_DEAD_LETTER_ORIGINAL],
        "original_size": len(original),
        "dead_lettered_at_ms": now_ms,
    })


@dataclass
class EventClock:
    """The highest event time the worker has processed: its event-time watermark (the timer reads it)."""

    watermark_ms: int = 0


Triaged = tuple[Message, Verdict]


def in_event_time_order(triaged: list[Triaged]) -> list[Triaged]:
    """The batch merged by event time, each partition's order kept (rejections first)."""
    by_partition: dict[tuple[str, int], list[Triaged]] = {}
    for item in triaged:
        by_partition.setdefault((item[0].topic, item[0].partition), []).append(item)
    return list(heapq.merge(*by_partition.values(), key=lambda item: event_time(item[1])))


def event_time(verdict: Verdict) -> int:
    """Where a verdict sorts in event time (rejections first: they wait for nothing)."""
    if isinstance(verdict, Accepted):
        return int(verdict.record["occurred_at_ms"])
    return verdict.now_ms if isinstance(verdict, Tick) else -1


@dataclass
class BatchOutput:
    """What one batch must get out before it may be acknowledged, and what it saw."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # sink name -> rows
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)  # (topic, key, value) to produce
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, event type or kind)
    rejected: Counter[RejectionKind] = field(default_factory=Counter)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    done: list[Message] = field(default_factory=list)  # the messages it processed: to acknowledge once committed
    event_ages_s: list[float] = field(default_factory=list)
    device_communes: set[int] = field(default_factory=set)
    still_due: list[int] = field(default_factory=list)  # communes a tick left due (a bug: they would tick for ever)

    def row(self, sink: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(sink, []).append(row)


class BatchStep:
    """Triage → processors → outputs for one batch. `processor` is None for agents that only
    record their events (model changes, alert actions)."""

    def __init__(self, processor: EventProcessor | None, cursor: EventCursor | None = None,
                 clock: EventClock | None = None, bounds: TimeBounds | None = None, record_events: bool = True,
                 partitions: int | None = None, check: EdgeCheck | None = None) -> None:
        """`partitions`: the commune-keyed input topics' partition count, to dead-letter an event on
        a partition its key does not hash to (None: not checked, as for a step fed by hand)."""
        self.processor = processor
        self.partitions = partitions
        self.record_events = record_events  # False when reprocessing: the events are recorded already
        self.cursor = cursor
        self.clock = clock or EventClock()
        self.bounds = bounds
        self.check = check  # verifies pseudonyms and tokens (None: not verified)
        self.last_sweep_ms: int | None = None

    def run(self, messages: list[Message], now_ms: int) -> BatchOutput:
        return self.process(in_event_time_order(self.triage(messages, now_ms)), now_ms)

    def triage(self, messages: list[Message], now_ms: int) -> list[Triaged]:
        verdicts = [(m, triage(m.value, m.topic, self.bounds, now_ms, self.check)) for m in messages]
        if self.partitions is None:
            return verdicts
        return [(m, on_its_partition(m, verdict, self.partitions)) for m, verdict in verdicts]

    def process(self, ordered: list[Triaged], now_ms: int) -> BatchOutput:
        """The triaged messages, in the order given, through the processors."""
        out = BatchOutput(done=[message for message, _ in ordered])
        incidents: dict[str, dict[str, Any]] = {}  # the latest snapshot of each changed incident
        for message, verdict in ordered:
            if isinstance(verdict, Rejected):
                self._reject(out, message, verdict, now_ms)
            elif isinstance(verdict, Tick):
                out.consumed[message.topic, "tick"] += 1
                self._tick(out, message, verdict)
            else:
                out.consumed[message.topic, verdict.event_type] += 1
                self._accept(out, incidents, message, verdict, now_ms)
        for snapshot in incidents.values():
            row, members = incident_rows(snapshot)
            out.row("incidents", row)
            for member in members:
                out.row("incident_members", member)
            out.records.append((INCIDENTS, str(snapshot["commune_code"]).encode(), CODEC.encode("incident", snapshot)))
        for alert in out.alerts:
            out.row("alerts", alert_row(alert))
            out.records.append((ALERTS, alert["alert_id"].encode(), CODEC.encode("alert", alert)))
        self._sweep(now_ms)
        if self.cursor is not None:
            self.cursor.current = None
        return out

    def _reject(self, out: BatchOutput, message: Message, rejected: Rejected, now_ms: int) -> None:
        log.warning("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, rejected.reason)
        out.consumed[message.topic, "invalid"] += 1
        out.rejected[rejected.kind] += 1
        out.records.append((DEAD_LETTER, None, dead_letter(rejected, message, now_ms)))

    def _tick(self, out: BatchOutput, message: Message, tick: Tick) -> None:
        if self.processor is None:
            return
        self._route_state_to(message)
        try:
            out.alerts += self.processor.alerting.tick(tick.commune, tick.now_ms)
        except Exception:  # the next tick tries again
            log.exception("tick of commune %d failed", tick.commune)
            return
        due = self.processor.alerting.next_deadline(tick.commune)
        if due is not None and due <= tick.now_ms:  # `binhyen process` raises here; a worker says so and goes on
            log.error("the tick of commune %d at %d left it due at %d: its timer will tick it again every round",
                      tick.commune, tick.now_ms, due)
            out.still_due.append(tick.commune)

    def _accept(self, out: BatchOutput, incidents: dict[str, dict[str, Any]], message: Message,
                accepted: Accepted, now_ms: int) -> None:
        record = accepted.record
        judged = None  # a verdict that names no commune belongs to its tip's (or incident's)
        if accepted.event_type == "feedback" and record.get("commune_code") is None and self.processor is not None:
            judged = self.processor.commune_of(record)
        if self.record_events and message.topic != COMMUNE_CONTROL:  # a forwarded action was recorded already
            recorded = record if judged is None else dict(record, commune_code=judged)  # counted where it belongs
            out.row("events", event_row(accepted.event_type, recorded, message.topic, message.partition,
                                        message.offset, now_ms // 1000))
        if accepted.event_type == "alert_action" and message.topic == ALERT_ACTIONS:
            commune = commune_of_alert(record["alert_id"])
            if commune is not None:  # to the worker that holds the commune's alert state
                out.records.append((COMMUNE_CONTROL, str(commune).encode(), bytes(message.value or b"")))
            return
        if self.processor is None:
            return
        if judged is not None:  # to the worker that holds the commune of the tip or incident judged
            out.records.append((COMMUNE_CONTROL, str(judged).encode(),
                                CODEC.encode("feedback", dict(record, commune_code=judged))))
            return
        self._route_state_to(message)
        try:
            result = self.processor.handle(accepted.event_type, record)
        except Exception as exc:  # a bug must not stop the stream: isolate the event
            log.exception("processing %s[%d]@%d failed", message.topic, message.partition, message.offset)
            self._reject(out, message, Rejected("processing", f"processing failed: {type(exc).__name__}: {exc}"),
                         now_ms)
            return
        self.clock.watermark_ms = max(self.clock.watermark_ms, record["occurred_at_ms"])
        out.event_ages_s.append(max(0.0, now_ms / 1000 - record["occurred_at_ms"] / 1000))
        if accepted.event_type == "device_signal":
            out.device_communes.add(record["commune_code"])
        for snapshot in result.incidents:
            incidents[snapshot["incident_id"]] = snapshot
        if result.joined is not None:
            out.row("tip_scores", tip_score_row(record, result.joined))
        out.alerts += result.alerts
        if result.unapplied:  # a verdict that cannot be placed, an action its `by` may not take
            kind: RejectionKind = "action" if accepted.event_type == "alert_action" else "verdict"
            self._reject(out, message, Rejected(kind, result.unapplied), now_ms)

    def _route_state_to(self, message: Message) -> None:
        """State written from here on belongs to this message's partition (its changelog)."""
        if self.cursor is not None:
            self.cursor.current = message.token

    def _sweep(self, now_ms: int) -> None:
        """Bound the state now and then (wall clock: it is housekeeping, not a result)."""
        if self.processor is None:
            return
        if self.last_sweep_ms is None:
            self.last_sweep_ms = now_ms
        if now_ms - self.last_sweep_ms < SWEEP_EVERY_MS:
            return
        try:
            self.processor.sweep(self.clock.watermark_ms)
        except Exception:  # bounding state can wait for the next sweep; the stream cannot
            log.exception("state sweep failed")
        self.last_sweep_ms = now_ms
