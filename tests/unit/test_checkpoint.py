"""At-least-once, below integration: the checkpoint commits state, then produces, then fills
every sink (retrying until each took its rows), and acknowledges only then — and the batch
step turns messages into exactly the rows and records the checkpoint must get out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import sinks.base
from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from schemas import CODEC
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG
from streams.runtime.batch import BatchOutput, BatchStep, Message
from streams.runtime.checkpoint import Checkpoint
from streams.runtime.state import BatchedTable, EventCursor, PartitionedCounts
from streams.topics import ALERT_ACTIONS, DEAD_LETTER, DEVICE_SIGNALS, TIPS
from tests.conftest import offline_run
from tests.sink_contract import FlakySink

PSEUDONYMS = Pseudonymiser(b"k" * 32)


class JournalTable(BatchedTable):
    def __init__(self, journal: list[str]) -> None:
        super().__init__({}, EventCursor(), lambda event: None)
        self.journal = journal

    def flush(self) -> int:
        self.journal.append("state")
        return super().flush()


def commit(out: BatchOutput, sinks_by_name: dict[str, FlakySink], journal: list[str],
           tokens: list[str]) -> None:
    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        journal.append(f"produce {topic}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def acknowledge(token: Any) -> None:
        journal.append(f"ack {token}")

    checkpoint = Checkpoint([JournalTable(journal)], send, dict(sinks_by_name), acknowledge)
    asyncio.run(checkpoint.commit(out, tokens))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry loop's sleeps, shortened: the order of steps is what is under test."""
    real_sleep = asyncio.sleep
    monkeypatch.setattr(sinks.base.asyncio, "sleep", lambda seconds: real_sleep(0))


def test_steps_run_in_order_and_offsets_move_last() -> None:
    journal: list[str] = []
    out = BatchOutput(rows={"events": [("e1",), ("e2",)], "alerts": [("a1",)]},
                      records=[(DEAD_LETTER, None, b"x"), (TIPS, b"1", b"y")])
    sinks_by_name = {"events": FlakySink("events", journal), "alerts": FlakySink("alerts", journal)}
    commit(out, sinks_by_name, journal, ["m1", "m2"])
    assert journal == ["state", f"produce {DEAD_LETTER}", f"produce {TIPS}", "events took 2", "alerts took 1",
                       "ack m1", "ack m2"]


def test_a_failing_sink_is_retried_with_the_same_rows_and_nothing_is_acked_before() -> None:
    journal: list[str] = []
    events = FlakySink("events", journal, failures=3)
    out = BatchOutput(rows={"events": [("e1",), ("e2",)]})
    commit(out, {"events": events}, journal, ["m1"])
    assert journal == ["state", "events failed", "events failed", "events failed", "events took 2", "ack m1"]
    assert events.written == [("e1",), ("e2",)]  # the batch was kept whole, not cleared or duplicated


def test_a_batch_whose_sink_never_recovers_is_never_acknowledged() -> None:
    journal: list[str] = []

    async def run() -> None:
        events = FlakySink("events", journal, failures=10**9)
        task = asyncio.ensure_future(asyncio.wait_for(
            Checkpoint([], _never_sent, {"events": events}, _ack_into(journal)).commit(
                BatchOutput(rows={"events": [("e1",)]}), ["m1"]), timeout=0.5))
        with pytest.raises(asyncio.TimeoutError):
            await task

    asyncio.run(run())
    assert "ack m1" not in journal and journal.count("events failed") > 3


async def _never_sent(topic: str, key: bytes | None, value: bytes) -> Any:
    raise AssertionError("nothing to produce")


def _ack_into(journal: list[str]) -> Any:
    async def acknowledge(token: Any) -> None:
        journal.append(f"ack {token}")
    return acknowledge


def live_processor(state: ProcessorState) -> EventProcessor:
    """The processors as the worker runs them (commune ticks come from its timer)."""
    return EventProcessor(state, CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                          AlertConfig.load(DEFAULT_ALERT_CONFIG), global_ticks=False)


def message(obj: dict[str, Any], topic: str, offset: int) -> Message:
    event_type, record, _ = parse_contract(obj, PSEUDONYMS)
    return Message(topic, 0, offset, CODEC.encode(event_type, record), token=f"token-{offset}")


def test_the_batch_step_makes_the_rows_and_records_the_offline_run_makes() -> None:
    bell = {"type": "device_signal", "event_id": "b-1", "occurred_at": "2025-06-26T06:35:00+07:00",
            "commune_code": 25813, "device_id": "bell-1", "device_kind": "alarm_bell", "signal": "panic_pressed"}
    ack = {"type": "alert_action", "event_id": "aa-1", "occurred_at": "2025-06-26T06:36:00+07:00",
           "alert_id": "whatever", "action": "ack", "by": "truc-ban"}
    step = BatchStep(live_processor(ProcessorState()), EventCursor())
    out = step.run([message(bell, DEVICE_SIGNALS, 0), Message(DEVICE_SIGNALS, 0, 1, b"garbage", token="token-1"),
                    message(ack, ALERT_ACTIONS, 2)], 1_750_895_000_000)
    assert [row[0] for row in out.rows["events"]] == ["b-1", "aa-1"]
    assert [row[1] for row in out.rows["alerts"]] == ["raised"]  # the bell's P1
    assert [topic for topic, _, _ in out.records] == [DEAD_LETTER, "binhyen.incidents.v1", "binhyen.alerts.v1"]
    assert out.rejected == {"decode": 1}
    assert out.consumed == {(DEVICE_SIGNALS, "device_signal"): 1, (DEVICE_SIGNALS, "invalid"): 1,
                            (ALERT_ACTIONS, "alert_action"): 1}
    expected = [line for line in offline_run().process([json.dumps(bell)]) if line["kind"] == "alert"]
    assert [(a["state"], a["rule"]) for a in out.alerts] == [(a["state"], a["rule"]) for a in expected]


def test_state_written_by_the_step_goes_to_the_partition_of_the_event_that_wrote_it() -> None:
    cursor, routed = EventCursor(), []
    table = BatchedTable({}, cursor, routed.append)
    processor = live_processor(ProcessorState(communes=table))
    tip = {"type": "tip", "event_id": "t-1", "occurred_at": "2025-06-26T06:35:00+07:00", "commune_code": 25813,
           "channel": "zalo", "text": "có đánh nhau ở chợ"}
    BatchStep(processor, cursor).run([message(tip, TIPS, 7)], 1_750_895_000_000)
    assert cursor.current is None and table.dirty == {"25813": "token-7"}
    table.flush()
    assert routed == ["token-7", None]


def test_two_workers_counting_one_reputation_lose_no_verdict() -> None:
    """Each worker holds a replica of the global reputation table and writes verdicts of its own
    partitions; replicas exchange changes afterwards (the changelog). Read-modify-write of one
    shared value keeps one of two simultaneous increments; counts per partition keep both."""
    from processors.credibility import ReputationBook

    credibility = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
    replicas: list[dict[str, Any]] = [{}, {}]

    def replicate() -> None:
        """Each key has one writer (worker n writes `…@n`): every replica takes the writer's value."""
        merged = {key: value for n, replica in enumerate(replicas) for key, value in replica.items()
                  if key.endswith(f"@{n}")}
        for replica in replicas:
            replica.update(merged)

    books = [ReputationBook(PartitionedCounts(replicas[n], 4, lambda n=n: n), credibility) for n in (0, 1)]
    for round_ in range(5):
        books[0].record(["channel:zalo", "commune:1"], "valuable")  # at the same moment on both workers
        books[1].record(["channel:zalo"], "false_report")
        if round_ % 2:
            replicate()
    replicate()
    for book in books:
        assert book.counts["channel:zalo"] == [5, 10]
        assert book.counts["commune:1"] == [5, 5]
        assert set(book.counts) == {"channel:zalo", "commune:1"}
    replicas[0]["channel:zalo"] = [2, 3]  # counts written before this layout are still read
    assert books[0].counts["channel:zalo"] == [7, 13]
    shared: list[dict[str, Any]] = [{}, {}]  # the old layout, for contrast: one value per key
    for _ in range(5):
        for n in (0, 1):
            ReputationBook(shared[n], credibility).record(["channel:zalo"], "valuable")
        shared[0].update(shared[1])
        shared[1].update(shared[0])
    assert shared[0]["channel:zalo"] == [5, 5]  # ten verdicts, five counted
