"""Event-time alignment across partitions, for reprocessing history.

Read live, the topics arrive roughly in event time; read from the beginning, they do not: a
fetch brings a whole week of verdicts (a sparse topic) long before the device signals of the
week's first hour. Processed in that order, verdicts would move reputations and incidents
before the tips they follow were even scored — `binhyen reprocess` under the live config would
differ from `binhyen process`. So a reprocessing worker holds what it reads and releases it
by Kafka Streams' PartitionGroup rule: always the partition whose head is oldest, and nothing
while a partition it holds has nothing buffered yet more to read (its end is not reached).
Held messages are not acknowledged, so a crash or a rebalance loses none of them: their
offsets are not committed, and the partition's next owner reads them again.

A partition that stays empty and unfinished for `IDLE_S` (a stale end) stops holding the others
back, as Kafka Streams' `max.task.idle.ms` does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from streams.runtime.batch import BatchOutput, BatchStep, Message, Triaged, event_time

IDLE_S = 2.0
Partition = tuple[str, int]


class EventTimeAligner:
    def __init__(self, at_end: Callable[[Partition, int | None], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`at_end(partition, last offset read or None)`: has the partition nothing more to read?"""
        self.at_end = at_end
        self.clock = clock
        self.held: dict[Partition, deque[Triaged]] = {}
        self.last_offset: dict[Partition, int] = {}
        self.last_arrival = clock()

    def add(self, triaged: Iterable[Triaged]) -> None:
        for item in triaged:
            partition = (item[0].topic, item[0].partition)
            self.held.setdefault(partition, deque()).append(item)
            self.last_offset[partition] = item[0].offset
            self.last_arrival = self.clock()

    def release(self, assigned: Iterable[Partition]) -> list[Triaged]:
        """Everything that may be processed now, in order; what a partition no longer assigned
        held is dropped (unacknowledged: its next owner reads it again)."""
        owned = set(assigned)
        self.forget([p for p in self.held if p not in owned])
        idle = self.clock() - self.last_arrival >= IDLE_S
        waiting = [p for p in owned if not self.held.get(p) and not idle
                   and not self.at_end(p, self.last_offset.get(p))]
        released: list[Triaged] = []
        while not waiting:
            heads = [(event_time(queue[0][1]), partition) for partition, queue in self.held.items() if queue]
            if not heads:
                break
            _, oldest = min(heads)
            queue = self.held[oldest]
            released.append(queue.popleft())
            if not queue and not idle and not self.at_end(oldest, self.last_offset.get(oldest)):
                waiting.append(oldest)
        return released

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in list(partitions):
            self.held.pop(partition, None)
            self.last_offset.pop(partition, None)

    def holding(self) -> int:
        return sum(len(queue) for queue in self.held.values())


class AlignedStep:
    """A batch step that processes what the aligner releases (and only that is acknowledged)."""

    def __init__(self, step: BatchStep, aligner: EventTimeAligner, assigned: Callable[[], Iterable[Partition]]) -> None:
        self.step, self.aligner, self.assigned = step, aligner, assigned

    def run(self, messages: list[Message], now_ms: int) -> BatchOutput:
        self.aligner.add(self.step.triage(messages, now_ms))
        return self.step.process(self.aligner.release(self.assigned()), now_ms)
