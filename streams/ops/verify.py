"""Did every published event reach ClickHouse exactly once? (`binhyen verify`, the fault tests)

Checks `events` and the typed table of each event's type, reading with FINAL as analysts do,
for the given event ids (sent as an external table, so any number of ids fits in one query).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sinks.clickhouse import events_table

TYPED_TABLE = {"tip": "tips", "device_signal": "device_signals", "feedback": "feedback", "model_change": "model_changes"}
SHOWN = 3


@dataclass
class DeliveryReport:
    expected: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # more than one row even with FINAL
    typed_lost: dict[str, list[str]] = field(default_factory=dict)
    redelivered_rows: int = 0  # copies written by at-least-once delivery, collapsed by FINAL

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or any(self.typed_lost.values()))

    def line(self) -> str:
        if self.ok:
            return (f"ALL-RECORDS-DELIVERED: {self.expected} events, each once "
                    f"({self.redelivered_rows} re-delivered copies collapsed)")
        parts = [f"LOST {len(self.lost)} {self.lost[:SHOWN]}", f"DUPLICATED {len(self.duplicated)} {self.duplicated[:SHOWN]}"]
        parts += [f"missing from {table}: {len(ids)} {ids[:SHOWN]}" for table, ids in self.typed_lost.items() if ids]
        return f"NOT ALL DELIVERED of {self.expected} events: " + "; ".join(parts)


def _wanted(ids: Iterable[str]) -> list[dict[str, Any]]:
    return [{"name": "wanted", "structure": [("event_id", "String")], "data": [{"event_id": i} for i in ids]}]


def verify_delivery(client: Any, database: str, events: Iterable[tuple[str, str]]) -> DeliveryReport:
    """`events` are (event_id, type) pairs; the report says what is missing or doubled."""
    raw = events_table(database)
    by_type: dict[str, list[str]] = {}
    for event_id, event_type in events:
        by_type.setdefault(event_type, []).append(event_id)
    ids = [event_id for group in by_type.values() for event_id in group]
    report = DeliveryReport(expected=len(set(ids)))
    rows = dict(client.execute(f"SELECT event_id, count() FROM {raw} FINAL WHERE event_id IN wanted GROUP BY event_id",
                               external_tables=_wanted(set(ids))))
    report.lost = sorted(set(ids) - set(rows))
    report.duplicated = sorted(event_id for event_id, n in rows.items() if n > 1)
    report.redelivered_rows = client.execute(f"SELECT count() - uniqExact(event_id) FROM {raw} WHERE event_id IN wanted",
                                             external_tables=_wanted(set(ids)))[0][0]
    for event_type, group in by_type.items():
        table = TYPED_TABLE.get(event_type)
        if table is None:
            continue
        found = Counter(event_id for (event_id,) in client.execute(
            f"SELECT event_id FROM {database}.{table} FINAL WHERE event_id IN wanted", external_tables=_wanted(set(group))))
        report.typed_lost[table] = sorted(set(group) - set(found))
        report.duplicated += sorted(event_id for event_id, n in found.items() if n > 1)
    return report
