"""A minimal faust worker shaped like `commune_events`, for tests/integration/test_rebalance.py.

The worker's settings (session timeout 6 s, heartbeat 1 s, commit every 1 s, earliest reset,
fetch wait capped at 100 ms, producer max batch 1 byte), raw bytes, one agent at
concurrency 1 draining `noack_take(200, within=0.05)`, "processing" each batch (a sleep
standing in for the ClickHouse insert) and only then acknowledging it, and a Table written
under the last event of each partition in the batch (so every rebalance runs changelog
recovery). Every processed "partition offset" goes to RB_OFFSETS. It does not call
faust_compat.apply(): the test applies the patches through
tests/integration/faust_compat_site/ (sitecustomize), or leaves them out.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust

from streams.runtime.faust_compat import bound_fetch_wait

TOPIC = os.environ["RB_TOPIC"]
PARTITIONS = int(os.environ["RB_PARTITIONS"])
bound_fetch_wait(100)  # as the worker does (BINHYEN_FETCH_MAX_WAIT_MS)

app = faust.App(
    os.environ["RB_GROUP"],
    broker=f"kafka://{os.environ['RB_BOOTSTRAP']}",
    datadir=os.environ["RB_DATADIR"],
    store="memory://",
    web_enabled=False,
    topic_disable_leader=True,
    topic_partitions=PARTITIONS,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_commit_interval=1.0,
    producer_acks=-1,
    producer_max_batch_size=1,
)
source = app.topic(TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
table = app.Table("rb_counts", default=int, partitions=PARTITIONS)
out = open(os.environ["RB_OFFSETS"], "a", buffering=1)


@app.agent(source, concurrency=1)
async def consume(stream: faust.StreamT) -> None:
    async for events in stream.noack_take(200, within=0.05):
        last: dict[int, tuple[Any, int]] = {}  # partition -> its last event in the batch, events
        for event in events:
            last[event.message.partition] = (event, last.get(event.message.partition, (None, 0))[1] + 1)
        for partition, (event, count) in last.items():  # one write per key, like BatchedTable.flush
            stream._set_current_event(event)
            table[str(partition)] += count
        stream._set_current_event(None)
        out.write("".join(f"{event.message.partition} {event.message.offset}\n" for event in events))
        await asyncio.sleep(0.2)  # the ClickHouse insert
        for event in events:
            await stream.ack(event)


if __name__ == "__main__":
    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()
