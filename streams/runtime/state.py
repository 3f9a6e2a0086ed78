"""Faust tables behind the processors' plain mappings, written once per batch.

The processors mutate a commune's state and assign it back on every event. Written through,
that is one changelog record per heartbeat. `BatchedTable` keeps the batch's reads and writes
in memory and `flush()` writes each changed key once, under the event that changed it last —
Faust sends a table change to the changelog (and RocksDB) partition of the current event, so
each key lands in its own partition. The batch step names the current event through an
`EventCursor`; only `flush()` (the checkpoint's first step) hands it to Faust.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

_MISSING = object()


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
