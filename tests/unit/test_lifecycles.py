"""Alert lifecycles live and offline: the worker reads acks late (they take a hop through the
control topic), tips ahead of device signals, and escalates from a timer; `binhyen process`
reads everything in time order. Per alert, both must give the same states in the same order
at the same times (processors/alerts.py, streams/runtime/timer.py)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from typing import Any

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from schemas import CODEC
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
from streams.runtime.batch import Accepted, BatchStep, Message, Rejected, Tick, in_event_time_order
from streams.runtime.timer import TickTimer, due_communes, tick_message
from streams.sim.simulator import VN, SimConfig, simulate
from streams.topics import COMMUNE_CONTROL, DEVICE_SIGNALS, TIPS, TOPIC_OF_TYPE
from tests.unit.test_alerts import COMMUNE, action, at, press, tip

CREDIBILITY = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
ALERTING = AlertConfig.load(DEFAULT_ALERT_CONFIG)
KEY = Pseudonymiser(b"k" * 32)
LATER = 10 ** 13  # a wall clock long after the events: ticks go by event time
Lifecycles = dict[str, list[tuple[str, str, int]]]
Arrival = dict[str, Any] | int  # an event, or a tick of every due commune at that event time


def lifecycles(alerts: list[dict[str, Any]]) -> Lifecycles:
    out: Lifecycles = defaultdict(list)
    for alert in alerts:
        out[alert["alert_id"]].append((alert["state"], alert["severity"], alert["at_ms"]))
    return dict(out)


def offline(events: list[dict[str, Any]]) -> Lifecycles:
    """`binhyen process`: time order, event time fires what is due everywhere."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    alerts = []
    for event in events:
        event_type, record, _ = parse_contract(event, KEY)
        alerts += processor.handle(event_type, record).alerts
    return lifecycles(alerts)


class Worker:
    """The worker's batch step and timer, without Kafka: batches as they arrive, ticks on demand."""

    def __init__(self) -> None:
        self.step = BatchStep(EventProcessor(ProcessorState(), CREDIBILITY, ALERTING, global_ticks=False))
        self.alerts: list[dict[str, Any]] = []
        self.offset = 0

    def message(self, event: dict[str, Any]) -> Message:
        event_type, record, _ = parse_contract(event, KEY)
        topic = COMMUNE_CONTROL if event_type == "alert_action" else TOPIC_OF_TYPE[event_type]  # acks: forwarded
        self.offset += 1
        return Message(topic, 0, self.offset, CODEC.encode(event_type, record))

    def run(self, batch: list[dict[str, Any]]) -> None:
        self.alerts += self.step.run([self.message(event) for event in batch], 0).alerts

    def tick(self, watermark_ms: int) -> None:
        """What the timer sends once the barrier has passed: a tick per due commune."""
        assert self.step.processor is not None
        states = list(self.step.processor.state.alerts.items())
        ticks = [Message(COMMUNE_CONTROL, 0, 0, tick_message(commune, moment))
                 for commune, moment in due_communes(states, watermark_ms, LATER)]
        self.alerts += self.step.run(ticks, 0).alerts


def live(arrivals: list[Arrival]) -> Lifecycles:
    worker = Worker()
    for arrival in arrivals:
        worker.tick(arrival) if isinstance(arrival, int) else worker.run([arrival])
    return lifecycles(worker.alerts)


def ms(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


def test_an_ack_inside_the_window_read_after_a_later_tip_stops_the_escalation() -> None:
    bell, ack_at = press("p1", at(21, 0)), at(21, 3)
    raised = offline([bell])
    alert_id = next(iter(raised))
    ack = action("a1", ack_at, alert_id, "ack")
    later = tip("t1", at(21, 7), "có người lạ ở ngân hàng", commune=COMMUNE)  # after the 21:05 deadline
    expected = offline([bell, ack, later])
    assert expected == {alert_id: [("raised", "P1", ms(at(21, 0))), ("acked", "P1", ms(ack_at))]}
    assert live([bell, later, ack, ms(at(21, 7))]) == expected


def test_an_ack_after_the_deadline_escalates_first_whenever_the_tick_comes() -> None:
    bell = press("p1", at(21, 0))
    alert_id = next(iter(offline([bell])))
    ack, elsewhere = action("a1", at(21, 6), alert_id, "ack"), tip("t1", at(21, 10), "chuyện khác", commune=25813)
    expected = offline([bell, ack, elsewhere])
    assert expected == {alert_id: [("raised", "P1", ms(at(21, 0))), ("escalated", "P1", ms(at(21, 5))),
                                   ("acked", "P1", ms(at(21, 6)))]}
    assert live([bell, elsewhere, ack, ms(at(21, 10))]) == expected  # the ack before the tick
    assert live([bell, elsewhere, ms(at(21, 10)), ack]) == expected  # the tick before the ack


def test_a_quiet_commune_escalates_from_the_timer_at_its_deadline() -> None:
    bell, elsewhere = press("p1", at(21, 0)), tip("t1", at(21, 20), "chuyện khác", commune=25813)
    expected = offline([bell, elsewhere])
    assert [step[0] for steps in expected.values() for step in steps] == ["raised", "escalated", "escalated"]
    assert live([bell, elsewhere]) != expected  # nothing else happens in the commune: only a tick escalates
    assert live([bell, elsewhere, ms(at(21, 20))]) == expected


def test_a_heartbeat_read_after_a_later_tip_is_not_a_silent_device() -> None:
    beats = [press("h1", at(8, 0), device="gate-1", signal="heartbeat"),
             press("h2", at(9, 0), device="gate-1", signal="heartbeat")]
    later = tip("t1", at(9, 30), "có người lạ", commune=COMMUNE)
    assert offline([*beats, later]) == {}
    assert live([beats[0], later, beats[1], ms(at(9, 30))]) == {}


def test_devices_fall_silent_in_time_order_whichever_signal_reveals_it() -> None:
    events = [press("h1", at(8, 0), device="bell-2", signal="heartbeat"),
              press("h2", at(8, 10), device="bell-1", signal="heartbeat"),
              press("h3", at(9, 40), device="bell-3", signal="heartbeat")]
    expected = offline(events)
    assert [(steps[0][0], steps[0][2]) for steps in expected.values()] == [("raised", ms(at(8, 0)) + 75 * 60_000)]
    assert live(events) == expected
    assert live([*events[:2], ms(at(9, 40)), events[2]]) == expected


def test_a_simulated_day_with_late_acks_and_timer_ticks_matches_the_offline_run() -> None:
    """Every ack and resolve of a simulated day read up to 40 events late, in batches of up to
    30; the timer ticks as the worker's does, once everything published before its moment is
    read (streams.runtime.timer)."""
    events = [e for e in simulate(SimConfig(96, days=2, seed=7, scale=0.6, start=datetime(2025, 10, 6, tzinfo=VN))).events
              if e["type"] != "model_change"]
    expected = offline(events)
    rng = random.Random(3)
    delay: dict[str, int] = defaultdict(lambda: rng.randint(1, 40))  # one per alert: its actions stay in order
    order = sorted(range(len(events)), key=lambda i: i + (delay[events[i]["alert_id"]] + 0.5
                                                          if events[i]["type"] == "alert_action" else 0))
    worker, done, read, barrier = Worker(), [False] * len(events), 0, None
    while read < len(order):
        size = rng.randint(1, 30)
        batch = order[read:read + size]
        worker.run([events[i] for i in batch])
        for i in batch:
            done[i] = True
        read += len(batch)
        if barrier is not None and all(done[:barrier[1]]):
            worker.tick(barrier[0])
            barrier = None
        if barrier is None:  # the timer samples: the clock now, and what has been published by now
            barrier = (worker.step.clock.watermark_ms, min(len(events), max(batch) + 1 + rng.randint(0, 20)))
    worker.tick(worker.step.clock.watermark_ms)
    got = lifecycles(worker.alerts)
    states = [step[0] for steps in expected.values() for step in steps]
    assert states.count("acked") >= 10 and states.count("escalated") >= 3, states  # the day has both
    assert got == expected


def test_the_timer_waits_until_the_group_has_read_what_was_published() -> None:
    """Ticks computed at the moment the high watermarks were read, sent once the group has
    committed up to them — not before, and with the barrier's clock."""
    deadline = ms(at(21, 5))
    states = [(str(COMMUNE), {"due": deadline})]
    reads: list[str] = []
    committed = {("tips", 0): 5}

    def highwaters() -> dict[tuple[str, int], int]:
        reads.append("highwaters")
        return {("tips", 0): 9, ("alert-actions", 1): 2}

    timer = TickTimer(highwaters, lambda: committed)
    assert timer.round(states, deadline - 1, LATER) == [] and reads == []  # nothing due: no broker call
    assert timer.round(states, deadline, LATER) == []  # due, but the group is behind
    committed.update({("tips", 0): 9, ("alert-actions", 1): 1})
    assert timer.round(states, deadline + 60_000, LATER) == []
    committed[("alert-actions", 1)] = 2
    assert timer.round(states, deadline + 60_000, LATER) == [(COMMUNE, deadline)]  # the barrier's moment
    assert reads == ["highwaters"]


def test_a_batch_is_processed_in_event_time_order_each_partition_in_its_own() -> None:
    def accepted(topic: str, partition: int, offset: int, minute: int) -> tuple[Message, Accepted]:
        return Message(topic, partition, offset, b""), Accepted("tip", {"occurred_at_ms": minute * 60_000})

    batch = [accepted(TIPS, 0, 1, 5), accepted(TIPS, 0, 2, 3), accepted(TIPS, 0, 3, 9),
             accepted(DEVICE_SIGNALS, 0, 1, 4), accepted(DEVICE_SIGNALS, 0, 2, 8),
             (Message(COMMUNE_CONTROL, 0, 1, b""), Tick(COMMUNE, 6 * 60_000)),
             (Message(TIPS, 1, 1, b""), Rejected("decode", "bad"))]
    order = [(m.topic, m.partition, m.offset) for m, _ in in_event_time_order(batch)]
    assert order == [(TIPS, 1, 1), (DEVICE_SIGNALS, 0, 1), (TIPS, 0, 1), (TIPS, 0, 2), (COMMUNE_CONTROL, 0, 1),
                     (DEVICE_SIGNALS, 0, 2), (TIPS, 0, 3)]


def test_the_offline_timer_keeps_one_live_entry_per_commune_however_long_the_history() -> None:
    """`binhyen process` fires what falls due from a heap of (deadline, commune); an entry
    superseded by a later schedule is dropped, not pushed again — it kept every stale entry alive,
    and a run slowed from ~1,200 to ~250 tips/s after 100,000 tips of history (bench/dedup_cost.py)."""
    processor = EventProcessor(ProcessorState(), CREDIBILITY, ALERTING)
    pseudonyms = Pseudonymiser(b"k" * 32)
    rng = random.Random(3)
    for n in range(3000):  # a month of tips in three communes, a bell now and then, nobody acks
        day, minute = divmod(n * 15, 24 * 60)
        when = at(minute // 60, minute % 60, day=1 + day % 28, month=9 + day // 28)
        commune = (COMMUNE, 31867, 26680)[rng.randrange(3)]
        event = press(f"p{n}", when) if n % 50 == 0 else tip(f"t{n}", when, f"chuyện {n} ở ấp {n % 7}", commune)
        processor.handle(*parse_contract(event, pseudonyms)[:2])
    assert len(processor._due) <= 3  # one per commune at most (8 and growing before)
