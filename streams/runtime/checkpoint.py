"""Committing one batch, in the only order that never moves an offset past a lost effect.

Like quixstreams' `Checkpoint.commit`, in numbered steps:
1. state   — the batch's table changes go to their changelogs (and local stores);
2. produce — dead letters, incidents, alert events and forwarded actions; every delivery
             is awaited;
3. sinks   — each sink takes the batch's rows, retried until it does;
4. offsets — only now are the batch's messages acknowledged, so the framework may commit.

A crash anywhere before step 4 re-delivers the whole batch: at-least-once, with sinks and
receivers that drop repeats (ReplacingMergeTree keys, idempotency keys).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from sinks.base import Sink, SinkError, flush_until_done
from streams.runtime import metrics
from streams.runtime.batch import BatchOutput
from streams.runtime.state import BatchedTable

log = logging.getLogger("binhyen.worker")
# (topic, key, value) -> a future of its delivery
Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]


def sink_failed(sink: Sink, exc: SinkError, backoff: float) -> None:
    metrics.SINK_FAILURES.labels(sink.name).inc()
    log.warning("%s; %d items wait; retrying in %.1fs", exc, sink.pending, backoff)


def sink_flushed(sink: Sink, written: int, seconds: float) -> None:
    metrics.SINK_SECONDS.labels(sink.name).observe(seconds)
    metrics.SINK_BATCH.labels(sink.name).observe(written)
    metrics.SINK_ROWS.labels(sink.name).inc(written)
    log.info("%s took %d items", sink.name, written)


class Checkpoint:
    def __init__(self, tables: Iterable[BatchedTable], send: Send, sinks: dict[str, Sink],
                 acknowledge: Callable[[Any], Awaitable[None]]) -> None:
        self.tables = list(tables)
        self.send = send
        self.sinks = sinks
        self.acknowledge = acknowledge

    async def commit(self, out: BatchOutput, tokens: Sequence[Any]) -> None:
        # 1. state
        for table in self.tables:
            table.flush()
        # 2. produce
        deliveries = [await self.send(topic, key, value) for topic, key, value in out.records]
        for delivery in deliveries:
            await delivery
        # 3. sinks
        for name, rows in out.rows.items():
            for row in rows:
                self.sinks[name].add(row)
        for sink in self.sinks.values():
            await flush_until_done(sink, sink_failed, sink_flushed)
        # 4. offsets
        for token in tokens:
            await self.acknowledge(token)
