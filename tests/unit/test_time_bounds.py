"""Event time you can trust: the edge rejects an event dated too far ahead of its clock (or
before 2020), and the worker dead-letters one that bypassed the edge, so one bad clock cannot
move a commune's clock — the 2052 tip once closed its commune's incidents and reported its
devices silent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import InvalidEvent, TimeBounds, parse_contract
from schemas import CODEC
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
from streams.edge.publisher import Publisher
from streams.runtime.batch import BatchStep, Message
from streams.topics import DEVICE_SIGNALS, TIPS
from tests.unit.test_alerts import COMMUNE, at, press, tip

KEY = Pseudonymiser(b"k" * 32)
NOW = datetime.fromisoformat(at(21, 0)).timestamp()  # the receiving clock, in seconds


def publisher() -> Publisher:
    return Publisher(None, KEY.key, TimeBounds(), clock=lambda: NOW)


def test_the_edge_rejects_a_tip_from_2052_and_a_device_clock_20_minutes_ahead() -> None:
    with pytest.raises(InvalidEvent) as caught:
        publisher().encode(tip("t-2052", "2052-01-01T08:00:00+07:00", "có trộm"))
    assert str(caught.value).startswith("occurred_at: 13,")  # 13,xxx,xxx minutes ahead
    assert str(caught.value).endswith("minutes ahead of the receiving clock (at most 10 allowed); "
                                      "fix the sender's clock, or send when it happened")
    with pytest.raises(InvalidEvent) as caught:
        publisher().encode(press("p-drift", at(21, 20)))
    assert str(caught.value) == ("occurred_at: 20 minutes ahead of the receiving clock (at most 10 allowed); "
                                 "fix the sender's clock, or send when it happened")
    assert publisher().encode(press("p-slow-drift", at(21, 8))).topic == DEVICE_SIGNALS  # within the margin
    with pytest.raises(InvalidEvent) as caught:
        publisher().encode(tip("t-2019", "2019-12-31T23:59:00+07:00", "chuyện cũ"))
    assert str(caught.value) == ("occurred_at: before 2020-01-01, the earliest accepted (BINHYEN_EARLIEST_EVENT); "
                                 "send when it happened")


def message(event: dict[str, Any], offset: int) -> Message:
    event_type, record, _ = parse_contract(event, KEY)  # produced straight to Kafka, past the edge
    return Message(TIPS if event_type == "tip" else DEVICE_SIGNALS, 0, offset, CODEC.encode(event_type, record))


def test_the_worker_dead_letters_a_2052_tip_and_the_commune_keeps_its_clock() -> None:
    step = BatchStep(EventProcessor(ProcessorState(), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                                    AlertConfig.load(DEFAULT_ALERT_CONFIG), global_ticks=False),
                     bounds=TimeBounds())
    now_ms = int(NOW * 1000)
    first = step.run([message(press("h1", at(20, 50), device="gate-1", signal="heartbeat"), 1),
                      message(tip("t1", at(20, 55), "Có đánh nhau ở chợ, nhiều người cầm gậy"), 2)], now_ms)
    assert sum(first.rejected.values()) == 0
    poisoned = step.run([message(tip("t-2052", "2052-01-01T08:00:00+07:00", "Có đánh nhau ở chợ"), 3)], now_ms)
    assert dict(poisoned.rejected) == {"clock": 1}
    assert [topic for topic, _, _ in poisoned.records] == ["binhyen.dead-letter.v1"]
    reason = CODEC.decode(poisoned.records[0][2])[1]["reason"]
    assert reason.startswith("occurred_at: ") and "ahead of the receiving clock" in reason
    assert step.clock.watermark_ms == datetime.fromisoformat(at(20, 55)).timestamp() * 1000
    later = step.run([message(tip("t2", at(21, 1), "có đánh nhau ở chợ, nhiều người cầm gậy"), 4)], now_ms)
    incidents = [CODEC.decode(value)[1] for topic, _, value in later.records if topic == "binhyen.incidents.v1"]
    assert [(i["tips"], i["event_ids"]) for i in incidents] == [(2, ["t1", "t2"])]  # its incident was still open


def test_a_simulation_starting_early_in_2020_is_all_accepted_by_the_edge() -> None:
    """The simulator's model history (up to two years back) stops at the earliest accepted time."""
    from streams.sim.simulator import VN, SimConfig, simulate

    events = simulate(SimConfig(96, days=1, seed=3, scale=0.1, start=datetime(2020, 3, 1, tzinfo=VN))).events
    history = [e for e in events if e["occurred_at"] < "2020-03"]
    assert history and min(e["occurred_at"] for e in history) == "2020-01-01T00:00:00+07:00"
    edge = publisher()
    assert all(edge.encode(event) for event in events)
