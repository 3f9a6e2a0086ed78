"""The retry loop every sink goes through (sinks.base.flush_until_done) and what the checkpoint
reports of it: the backoff doubles from 0.5 s up to 10 s, each failure is handed over with its
error, a success with its count and a plausible duration; the checkpoint produces each record
with its own key and value, counts failures, rows and flushes per sink in Prometheus, and logs
what waits and what was taken."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import sinks.base
from sinks.base import SinkError, flush_until_done
from streams.runtime import metrics
from streams.runtime.batch import BatchOutput
from streams.runtime.checkpoint import Checkpoint
from tests.sink_contract import FlakySink


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The retry loop's sleeps, recorded and not slept."""
    slept: list[Any] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: Any) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(sinks.base.asyncio, "sleep", sleep)
    return slept


def test_the_backoff_doubles_from_half_a_second_to_ten_and_stays_there(sleeps: list[Any]) -> None:
    sink = FlakySink("events", failures=7)
    for n in range(3):
        sink.add(n)
    failures: list[tuple[Any, SinkError, float]] = []
    successes: list[tuple[Any, int, float]] = []
    asyncio.run(flush_until_done(sink, lambda *args: failures.append(args), lambda *args: successes.append(args)))
    assert [backoff for _, _, backoff in failures] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # each failure waits what it reported
    assert [(s, e) for s, e, _ in failures] == [(sink, error) for error in sink.errors]
    assert len(successes) == 1
    took, written, seconds = successes[0]
    assert took is sink and written == 3 and sink.pending == 0
    assert 0.0 <= seconds < 30.0  # the flush's own duration, not a clock reading


def test_a_sink_with_nothing_pending_is_not_flushed(sleeps: list[Any]) -> None:
    sink = FlakySink("events", failures=1)
    asyncio.run(flush_until_done(sink, lambda *args: pytest.fail("flushed"), lambda *args: pytest.fail("flushed")))
    assert sink.errors == [] and sleeps == []


def _sample(name: str, sink: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"table": sink}) or 0.0


def test_the_checkpoint_produces_each_record_with_its_key_and_counts_each_sink(
        sleeps: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    name = "mutation-probe-sink"  # a label of its own: other tests' counts do not mix in
    before = {sample: _sample(sample, name) for sample in (
        "binhyen_sink_failures_total", "binhyen_sink_rows_total", "binhyen_sink_batch_rows_count",
        "binhyen_sink_batch_rows_sum", "binhyen_sink_insert_seconds_count")}
    sink = FlakySink(name, failures=2)
    sent: list[tuple[str, bytes | None, bytes]] = []
    acked: list[Any] = []

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        sent.append((topic, key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def acknowledge(token: Any) -> None:
        acked.append(token)

    records = [("binhyen.incidents.v1", b"25813", b"incident-1"), ("binhyen.dead-letter.v1", None, b"dead-1"),
               ("binhyen.alerts.v1", b"al-25813-x", b"alert-1")]
    out = BatchOutput(rows={name: [("r1",), ("r2",), ("r3",)]}, records=list(records))
    with caplog.at_level(logging.INFO, logger="binhyen.worker"):
        asyncio.run(Checkpoint([], send, {name: sink}, acknowledge).commit(out, ["m1", "m2"]))
    assert sent == records  # the commune key routes an incident to its commune's partition
    assert acked == ["m1", "m2"]
    after = {sample: _sample(sample, name) - value for sample, value in before.items()}
    assert after == {"binhyen_sink_failures_total": 2.0, "binhyen_sink_rows_total": 3.0,
                     "binhyen_sink_batch_rows_count": 1.0, "binhyen_sink_batch_rows_sum": 3.0,
                     "binhyen_sink_insert_seconds_count": 1.0}
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "binhyen.worker"] == [
        (logging.WARNING, f"{name} is down (1 more); 3 items wait; retrying in 0.5s"),
        (logging.WARNING, f"{name} is down (0 more); 3 items wait; retrying in 1.0s"),
        (logging.INFO, f"{name} took 3 items"),
    ]
