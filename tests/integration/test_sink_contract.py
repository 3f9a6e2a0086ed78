"""The sink contract (tests/sink_contract.py) against the ClickHouse table sink on the real local
server; the unit suite runs the same contract on a fake client, chdb and the notifiers."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from sinks.base import Sink
from sinks.clickhouse import TableSink, connect
from tests.sink_contract import FailingSinkContract

pytestmark = pytest.mark.integration
_tables = itertools.count()


class TestTableSink(FailingSinkContract):
    @pytest.fixture(autouse=True)
    def _clickhouse(self, settings: Any, clickhouse: Any) -> None:
        self.settings, self.client = settings, clickhouse
        self.table = f"sink_contract_{next(_tables)}"
        clickhouse.execute(f"CREATE TABLE {self.table} (n UInt32, at UInt64) ENGINE = MergeTree() ORDER BY at")
        self.sink = TableSink(clickhouse, self.table, ("n", "at"))

    def create_sink(self) -> Sink:
        return self.sink

    def item(self, n: int) -> Any:
        return (n, next(_tables))

    def written(self) -> list[int]:
        return [n for n, _ in self.client.execute(f"SELECT n, at FROM {self.table} ORDER BY at")]

    def break_destination(self, sink: Sink) -> None:
        self.sink.client = connect(self.settings, self.settings.clickhouse_database, password="wrong")

    def heal_destination(self, sink: Sink) -> None:
        self.sink.client = self.client
