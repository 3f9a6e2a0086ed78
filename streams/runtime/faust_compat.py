"""Every Faust private the worker touches, in one place, each with why.

Three helpers the worker needs and Faust does not offer publicly (version 0.15.3):
- `route_state_to(stream, event)`: which event's partition a table write goes to;
- `committed_offset(consumer, tp)`: the last offset Faust committed, for the lag gauges;
- `bound_fetch_wait(ms)`: a cap on the consumer's fetch wait, which Faust fixes at 1500 ms.

And the patches to faust-streaming 0.15.3 so that a rebalance does not lose records.

With two workers in one consumer group, faust-streaming 0.15.3 skips records when a member
joins or leaves, and then commits past them, so a restart does not re-read them either
(measured in ../shared/tools/rebalance/README.md; no fix upstream, the code is the same on
faust-streaming master). Three changes close the two mechanisms found there (with all
three, no run there or in tests/integration/test_rebalance.py lost a record):

1. the aiokafka driver hands aiokafka a *copy* of the active partitions, so that pausing
   partitions meanwhile cannot turn it into "all partitions" (mechanism A);
2. seeking to committed offsets also positions stream partitions whose committed offset
   is 0 or absent, which aiokafka's `seek_to_committed` leaves where they were (A);
3. recovery seeks stream partitions to their committed offsets *before* resuming them (B).

`apply()` installs them; it refuses any other faust-streaming version, so that an upgrade
forces a re-check against the new upstream code (and a run of
tests/integration/test_rebalance.py, which fails without these patches). The copied
methods keep upstream's text and layout; lines marked "patched" are the changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import ConsumerStoppedError
from faust.tables.recovery import Recovery
from faust.transport.consumer import RecordMap
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

FAUST_VERSION = "0.15.3"  # the version whose code the methods below are copied from


# Replaces faust/transport/drivers/aiokafka.py AIOKafkaConsumerThread._fetch_records
# (faust-streaming 0.15.3). Upstream passes the consumer's live set of active partitions
# to aiokafka's fetched_records(), which waits in this thread; if the main thread pauses
# the last of them meanwhile, aiokafka reads the empty set as "all partitions", hands over
# (and moves past) records of paused stream partitions, and faust drops those records.
# Related: faust-streaming #221 / PR #223 (prefetched records delivered after a rebalance),
# and issue #606 / PR #707 (faust then commits past the records it never processed).
async def _fetch_records(
    self: AIOKafkaConsumerThread,
    consumer: AIOKafkaConsumer,
    active_partitions: set[TP] | None,
    timeout: float | None = None,
    max_records: int | None = None,
) -> RecordMap:
    """Fetch for the partitions active now; hand back nothing of one paused meanwhile."""
    if not self.consumer.flow_active:
        return {}
    fetcher = consumer._fetcher
    if consumer._closed or fetcher._closed:
        raise ConsumerStoppedError()
    requested = None if active_partitions is None else set(active_partitions)  # patched: a copy
    if requested is not None and not requested:  # patched: to aiokafka, empty means all
        return {}
    with fetcher._subscriptions.fetch_context():
        records = await fetcher.fetched_records(
            requested,  # patched
            timeout=timeout,
            max_records=max_records,
        )
    if active_partitions is not None:  # patched: what Consumer.getmany would drop, read again
        for tp in [tp for tp in records if tp not in active_partitions
                   and tp not in self.consumer._buffered_partitions]:
            dropped = records.pop(tp)
            if tp in consumer.assignment():
                consumer.seek(tp, dropped[0].offset)
    return records


# Replaces faust/transport/drivers/aiokafka.py AIOKafkaConsumerThread.seek_to_committed
# (faust-streaming 0.15.3), which calls aiokafka's seek_to_committed(): that seeks only
# when the committed offset is > 0 (aiokafka #1003), so a stream partition with no commit
# (or a commit of 0) resumes wherever an earlier fetch left it.
async def seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[TP, int]:
    """Seek partitions to the last committed offset, also 0 or none (stream partitions only)."""
    return await self.call_thread(_seek_to_committed, self)


async def _seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[TP, int]:
    consumer = self._ensure_consumer()
    committed = await consumer.seek_to_committed()
    # Changelog partitions stay with recovery, which seeks them itself.
    unpositioned = [tp for tp, offset in committed.items() if not offset and not self.consumer._is_changelog_tp(tp)]
    for tp in unpositioned:
        if committed[tp] == 0:
            consumer.seek(tp, 0)
    never = [tp for tp in unpositioned if committed[tp] is None]
    if never and self.app.conf.consumer_auto_offset_reset == "earliest":
        await consumer.seek_to_beginning(*never)
    return committed


# Replaces faust/tables/recovery.py Recovery._resume_streams (faust-streaming 0.15.3): the
# same code with resume_partitions back after the seek, where PR #217 (for issue #216) had
# put it and PR #241 took it away. Resumed first, stream partitions are fetched while the
# flow runs for changelog recovery; records fetched before the seek are delivered after it,
# and faust commits past the ones it skipped (issue #606 / PR #707).
async def _resume_streams(self: Recovery, generation_id: int = 0) -> None:
    """Resume stream partitions only once they are at their committed offsets."""
    app = self.app
    consumer = app.consumer
    await app.on_rebalance_complete.send()
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(
            consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout
        )
        self.log.dev("Resume stream partitions")  # patched: resumed after the seek
        consumer.resume_partitions(
            {tp for tp in assignment if not self._is_changelog_tp(tp)}
        )
    else:
        self.log.info("Resuming streams with empty assignment")
    self.completed.set()
    # Resume partitions and start fetching.
    self.log.info("Resuming flow...")
    app.flow_control.resume()
    consumer.resume_flow()
    # finally make sure the fetcher is running.
    await app._fetcher.maybe_start()  # type: ignore[attr-defined]
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


# Replaces faust/tables/recovery.py Recovery.on_recovery_completed (faust-streaming 0.15.3):
# the same code with resume_partitions back after the seek (as before PR #241), as above.
async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """Call when active table recovery is completed."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    # This needs to happen if all goes well
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(
            consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout
        )
    self.completed.set()
    self.log.dev("Resume stream partitions")
    consumer.resume_partitions(  # patched: resumed after the seek
        {tp for tp in assignment if not self._is_changelog_tp(tp)}
    )
    self.app.flow_control.resume()
    consumer.resume_flow()
    # finally make sure the fetcher is running.
    await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


def route_state_to(stream: Any, event: Any) -> None:
    """Table writes go to the changelog (and RocksDB) partition of the stream's *current*
    event; Faust sets it per event only when iterating one at a time, and a batch taken with
    `noack_take` is ours to set (faust/streams.py `Stream._set_current_event`)."""
    stream._set_current_event(event)


def committed_offset(consumer: Any, tp: TP) -> int:
    """The offset Faust last committed for `tp` (faust/transport/consumer.py keeps it in
    `Consumer._committed_offset`; aiokafka's `committed()` would ask the broker every time)."""
    return consumer._committed_offset.get(tp) or 0


def at_end(consumer: Any, tp: TP, last_offset: int | None) -> bool:
    """Has this worker read everything `tp` holds now? From the fetch responses' high watermark
    and the last offset read (else the committed one). Unknown ends count as not reached."""
    highwater = consumer.highwater(tp)
    if highwater is None:
        return False
    return (committed_offset(consumer, tp) if last_offset is None else last_offset + 1) >= highwater


def bound_fetch_wait(max_wait_ms: int) -> None:
    """Cap the fetch wait of faust's consumer, which faust-streaming 0.15 fixes at 1500 ms
    (faust/transport/drivers/aiokafka.py creates `aiokafka.AIOKafkaConsumer` itself).

    A broker may hold a fetch until that wait runs out when some fetched partitions are empty
    (the local tansu broker does: a bare consumer of an 8-partition topic sees p50 342 ms at
    1500 ms and 3 ms at 100 ms). Apache Kafka answers as soon as data is there, so the cap
    only makes idle polls more frequent there.
    """
    from faust.transport.drivers import aiokafka as driver

    original = driver.aiokafka.AIOKafkaConsumer
    if getattr(original, "binhyen_bounded", False):
        return

    class BoundedWaitConsumer(original):  # type: ignore[misc, valid-type]
        binhyen_bounded = True

        def __init__(self, *topics: Any, **options: Any) -> None:
            options["fetch_max_wait_ms"] = min(options.get("fetch_max_wait_ms", max_wait_ms), max_wait_ms)
            super().__init__(*topics, **options)

    driver.aiokafka.AIOKafkaConsumer = BoundedWaitConsumer


PATCHES: dict[type, dict[str, Any]] = {
    AIOKafkaConsumerThread: {"_fetch_records": _fetch_records, "seek_to_committed": seek_to_committed},
    Recovery: {"_resume_streams": _resume_streams, "on_recovery_completed": on_recovery_completed},
}


def apply() -> None:
    """Install the patches (idempotent); refuse a faust-streaming they were not written for."""
    installed = version("faust-streaming")
    if installed != FAUST_VERSION:
        raise RuntimeError(
            f"streams.runtime.faust_compat patches faust-streaming {FAUST_VERSION}, but {installed} is installed: "
            "compare the patched methods with the new upstream code, then update or drop the patches "
            "(tests/integration/test_rebalance.py must still pass)")
    for cls, methods in PATCHES.items():
        for name, method in methods.items():
            setattr(cls, name, method)
