"""Faust tables behind the processors' plain mappings, written once per batch.

The processors mutate a commune's state and assign it back on every event. Written through,
that is one changelog record per heartbeat. `BatchedTable` keeps the batch's reads and writes
in memory and `flush()` writes each changed key once, under the event that changed it last —
Faust sends a table change to the changelog (and RocksDB) partition of the current event, so
each key lands in its own partition. The batch step names the current event through an
`EventCursor`; only `flush()` (the checkpoint's first step) hands it to Faust.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

_MISSING = object()
_PARTITION_SUFFIX = re.compile(r"(.*)@\d+")


class EventCursor:
    """The event whose processing is under way: its partition owns the state written now."""

    current: Any = None


class BatchedTable(MutableMapping[str, Any]):
    def __init__(self, table: MutableMapping[str, Any], cursor: EventCursor,
                 set_current_event: Callable[[Any], None]) -> None:
        self.table = table
        self.cursor = cursor
        self.set_current_event = set_current_event
        self.cache: dict[str, Any] = {}
        self.dirty: dict[str, Any] = {}  # key -> the event that changed it last

    def __getitem__(self, key: str) -> Any:
        value = self.cache.get(key, _MISSING)
        if value is _MISSING:
            value = self.cache[key] = self.table[key]
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            self.cache.setdefault(key, None)
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self.cache[key] = value
        self.dirty[key] = self.cursor.current

    def __delitem__(self, key: str) -> None:
        """Forget the key (a no-op write if it was already gone)."""
        self.cache[key] = None
        self.dirty[key] = self.cursor.current

    def __iter__(self) -> Iterator[str]:
        self.flush()
        return iter(list(self.table.keys()))

    def __len__(self) -> int:
        self.flush()
        return len(self.table)

    def flush(self) -> int:
        """Write every changed key once; returns how many. Call before acknowledging the batch."""
        for key, event in self.dirty.items():
            self.set_current_event(event)
            value = self.cache[key]
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        written = len(self.dirty)
        self.dirty.clear()
        self.cache.clear()
        self.set_current_event(None)
        return written


class PartitionedCounts(MutableMapping[str, Any]):
    """Counters in a table every worker writes (reputation, a GlobalTable), kept per partition.

    The processors read a key's counts and write them back incremented. On one shared value,
    two workers doing so at once lose an increment (both read 5, both write 6, and the
    changelog keeps one). Here each key is one counter per input partition — `key@3` — written
    only by the worker that holds partition 3, and read as the sum of all of them (plus the
    plain key of state written before; read-only). A write adds the caller's increment to the
    current event's partition's counter.
    """

    def __init__(self, table: MutableMapping[str, Any], partitions: int, partition_of_current: Callable[[], int]) -> None:
        self.table = table
        self.partitions = partitions
        self.partition_of_current = partition_of_current

    def _parts(self, key: str) -> list[str]:
        return [key] + [f"{key}@{p}" for p in range(self.partitions)]

    def __getitem__(self, key: str) -> list[int]:
        found = [value for part in self._parts(key) if (value := self.table.get(part)) is not None]
        if not found:
            raise KeyError(key)
        return [sum(column) for column in zip(*found)]

    def __setitem__(self, key: str, value: list[int]) -> None:
        before = self.get(key) or [0] * len(value)
        mine = f"{key}@{self.partition_of_current()}"
        own = self.table.get(mine) or [0] * len(value)
        self.table[mine] = [o + v - b for o, v, b in zip(own, value, before)]

    def __delitem__(self, key: str) -> None:
        raise TypeError("counters are never deleted")

    def __iter__(self) -> Iterator[str]:
        return iter({match.group(1) if (match := _PARTITION_SUFFIX.fullmatch(key)) else key for key in self.table})

    def __len__(self) -> int:
        return sum(1 for _ in self)
