"""Exact-duplicate memory (processors.dedup.ExactDedup): swept once it holds 1,024 ids, then each
time it has doubled, keeping ids exactly `retention_ms` behind the newest event and forgetting
older ones."""

from __future__ import annotations

from processors.dedup import ExactDedup


def test_the_memory_is_swept_at_1024_ids_and_again_each_time_it_doubles() -> None:
    dedup = ExactDedup(retention_ms=100)
    for n in range(1022):
        assert dedup.first_seen(f"old-{n}", 0)
    assert dedup.first_seen("edge", 50)
    assert len(dedup.seen) == 1023  # no sweep yet
    assert dedup.first_seen("new", 150)  # the 1,024th id: swept, 100 ms behind 150
    assert set(dedup.seen) == {"edge", "new"}  # 50 is exactly the retention behind: kept
    assert dedup.first_seen("old-0", 0)  # forgotten, so new again
    assert not dedup.first_seen("edge", 50)
    for n in range(1020):
        dedup.first_seen(f"mid-{n}", 300)
    assert len(dedup.seen) == 1023  # 3 + 1,020: the next sweep is at 1,024, not before
    dedup.first_seen("mid-last", 300)
    assert len(dedup.seen) == 1021  # old-0, edge and new are over 100 ms behind 300
    for n in range(1020):
        dedup.first_seen(f"late-{n}", 500)
    assert len(dedup.seen) == 2041  # the next sweep waits for twice the survivors: 2,042
    dedup.first_seen("late-last", 500)
    assert len(dedup.seen) == 1021 and all(at == 500 for at in dedup.seen.values())
