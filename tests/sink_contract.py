"""One contract, every sink (sinks.base), as the `eventsourcing` library tests every recorder:
a sink's test class subclasses `SinkContract` (or `FailingSinkContract`) and says how to make the
sink, an item, and how to read what reached the destination. The unit suite runs it against the
table sink on a fake client and on chdb (current ClickHouse, in process), the webhook notifier on
a loopback endpoint and the log notifier; the integration suite against the local ClickHouse."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.base import Sink, SinkError


class SinkContract:
    """What every sink promises: `add` queues, `flush` writes everything queued once and
    empties `pending`, a flush of nothing writes nothing."""

    def create_sink(self) -> Sink:
        raise NotImplementedError

    def item(self, n: int) -> Any:
        raise NotImplementedError

    def written(self) -> list[int]:
        """The numbers of the items that reached the destination, in order, repeats included."""
        raise NotImplementedError

    def test_add_queues_and_flush_writes_everything_once(self) -> None:
        sink = self.create_sink()
        for n in range(5):
            sink.add(self.item(n))
        assert sink.pending == 5 and self.written() == []
        assert sink.flush() == 5
        assert sink.pending == 0 and self.written() == [0, 1, 2, 3, 4]
        assert sink.flush() == 0 and self.written() == [0, 1, 2, 3, 4]


class FailingSinkContract(SinkContract):
    """Sinks whose destination can fail: a failed flush raises SinkError naming the sink and
    keeps every item; the retry after the destination is back writes each of them once."""

    def break_destination(self, sink: Sink) -> None:
        raise NotImplementedError

    def heal_destination(self, sink: Sink) -> None:
        raise NotImplementedError

    def test_a_failed_flush_keeps_every_item_and_the_retry_writes_each_once(self) -> None:
        sink = self.create_sink()
        for n in range(3):
            sink.add(self.item(n))
        self.break_destination(sink)
        for _ in range(2):
            with pytest.raises(SinkError) as caught:
                sink.flush()
            assert sink.name in str(caught.value)
            assert sink.pending == 3
        self.heal_destination(sink)
        sink.add(self.item(3))
        assert sink.flush() == 4
        assert sorted(set(self.written())) == [0, 1, 2, 3] and sink.pending == 0


class FlakySink:
    """A fake that honours the contract and fails its first `failures` flushes (keeping what is
    pending); what happens goes into `journal` ("NAME failed", "NAME took N"), each failure's
    error into `errors`, what was taken into `written`."""

    def __init__(self, name: str, journal: list[str] | None = None, failures: int = 0) -> None:
        self.name = name
        self.journal = journal if journal is not None else []
        self.failures = failures
        self.items: list[Any] = []
        self.written: list[Any] = []
        self.errors: list[SinkError] = []

    @property
    def pending(self) -> int:
        return len(self.items)

    def add(self, item: Any) -> None:
        self.items.append(item)

    def give_up(self) -> list[Any]:
        """What a notifier does with a page it gave up on (streams.runtime.delivery)."""
        dropped, self.items = self.items, []
        self.journal.append(f"{self.name} gave up {len(dropped)}")
        return dropped

    def flush(self) -> int:
        if self.failures:
            self.failures -= 1
            self.journal.append(f"{self.name} failed")
            error = SinkError(f"{self.name} is down ({self.failures} more)")
            self.errors.append(error)
            raise error
        self.written += self.items
        written, self.items = len(self.items), []
        self.journal.append(f"{self.name} took {written}")
        return written
