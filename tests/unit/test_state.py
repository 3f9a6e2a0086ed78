"""BatchedTable: reads and writes of a batch in memory, each changed key written once, under
the event that changed it last."""

from __future__ import annotations

from typing import Any

from streams.runtime.state import BatchedTable, EventCursor


class FakeTable(dict):
    """Records which event was current at each write, as Faust's table does by partition."""

    def __init__(self) -> None:
        super().__init__()
        self.current: Any = None
        self.writes: list[tuple[str, Any, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((key, value, self.current))
        super().__setitem__(key, value)


def batched() -> tuple[FakeTable, BatchedTable, EventCursor]:
    table, cursor = FakeTable(), EventCursor()

    def set_current(event: Any) -> None:
        table.current = event

    return table, BatchedTable(table, cursor, set_current), cursor


def test_each_changed_key_is_written_once_under_its_last_event() -> None:
    table, state, cursor = batched()
    for n in range(100):  # a batch of heartbeats in two communes
        cursor.current = f"event-{n}"
        key = str(n % 2)
        value = state.get(key) or {"seen": 0}
        value["seen"] += 1
        state[key] = value
    assert table == {}  # nothing written before the flush
    assert state.flush() == 2
    assert sorted(table.writes) == [("0", {"seen": 50}, "event-98"), ("1", {"seen": 50}, "event-99")]
    assert state.flush() == 0


def test_reads_see_the_table_and_deletes_of_missing_keys_are_harmless() -> None:
    table, state, cursor = batched()
    table.update({"a": 1})
    cursor.current = "e"
    assert state["a"] == 1 and state.get("b") is None
    del state["a"]
    del state["never-there"]
    state.flush()
    assert "a" not in table and "never-there" not in table
    assert list(state) == []
