"""The sink contract (tests/sink_contract.py) without servers: the ClickHouse table sink on a fake
client and on chdb (current ClickHouse in process), the webhook notifier on a loopback endpoint,
the log notifier. The integration suite runs the same contract on the local ClickHouse 18.16."""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from chdb import session
from clickhouse_driver.errors import ServerException

from sinks.base import Sink
from sinks.clickhouse import TableSink
from sinks.notifiers import LogNotifier, WebhookNotifier
from tests.chdb_client import INSERT, ChdbClient
from tests.conftest import WebhookReceiver
from tests.sink_contract import FailingSinkContract, SinkContract

_items = itertools.count()


class FakeClickHouse:
    """clickhouse_driver's `Client.execute` for inserts, keeping rows in memory; `down` makes it
    fail as a server refusing the login does."""

    def __init__(self) -> None:
        self.tables: dict[str, list[tuple[Any, ...]]] = {}
        self.down = False

    def execute(self, query: str, rows: list[tuple[Any, ...]], types_check: bool = False) -> int:
        if self.down:
            raise ServerException("Authentication failed: password is incorrect", code=516)
        table = INSERT.match(query)
        assert table, query
        self.tables.setdefault(table.group(1), []).extend(rows)
        return len(rows)


class TestTableSinkOnAFakeClient(FailingSinkContract):
    @pytest.fixture(autouse=True)
    def _client(self) -> None:
        self.client = FakeClickHouse()
        self.sink = TableSink(self.client, "sink_contract", ("n", "at"))

    def create_sink(self) -> Sink:
        return self.sink

    def item(self, n: int) -> Any:
        return (n, next(_items))

    def written(self) -> list[int]:
        return [n for n, _ in self.client.tables.get("sink_contract", [])]

    def break_destination(self, sink: Sink) -> None:
        self.client.down = True

    def heal_destination(self, sink: Sink) -> None:
        self.client.down = False


@pytest.fixture(scope="module")
def chdb_session() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        yield db
        db.close()


class TestTableSinkOnChdb(FailingSinkContract):
    @pytest.fixture(autouse=True)
    def _chdb(self, chdb_session: Any) -> None:
        self.db = chdb_session
        self.table = f"sink_contract_{next(_items)}"
        self.db.query(f"CREATE TABLE default.{self.table} (n UInt32, at UInt64) ENGINE = MergeTree() ORDER BY at")
        self.sink = TableSink(ChdbClient(self.db), f"default.{self.table}", ("n", "at"))

    def create_sink(self) -> Sink:
        return self.sink

    def item(self, n: int) -> Any:
        return (n, next(_items))

    def written(self) -> list[int]:
        result = self.db.query(f"SELECT n FROM default.{self.table} ORDER BY at", "JSONCompact")
        return [row[0] for row in json.loads(result.bytes())["data"]]

    def break_destination(self, sink: Sink) -> None:
        self.db.query(f"RENAME TABLE default.{self.table} TO default.{self.table}_away")

    def heal_destination(self, sink: Sink) -> None:
        self.db.query(f"RENAME TABLE default.{self.table}_away TO default.{self.table}")


class TestWebhookNotifier(FailingSinkContract):
    @pytest.fixture(autouse=True)
    def _endpoint(self) -> Any:
        self.receiver = WebhookReceiver(fail_first=0)
        yield
        self.receiver.server.shutdown()

    def create_sink(self) -> Sink:
        return WebhookNotifier("commune-post", self.receiver.url, b"s" * 32)

    def item(self, n: int) -> Any:
        return {"alert_id": f"a-{n}", "n": n, "state": "raised", "at_ms": n, "route": "commune-post",
                "delivery": "now"}

    def written(self) -> list[int]:
        return [alert["n"] for alert in self.receiver.delivered()]

    def break_destination(self, sink: Sink) -> None:
        self.receiver.fail_first = len(self.receiver.requests) + 2

    def heal_destination(self, sink: Sink) -> None:
        assert len(self.receiver.requests) >= self.receiver.fail_first  # both failed flushes reached it


class TestLogNotifier(SinkContract):
    @pytest.fixture(autouse=True)
    def _log(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, logger="binhyen.alerts")
        self.caplog = caplog

    def create_sink(self) -> Sink:
        return LogNotifier()

    def item(self, n: int) -> Any:
        return {"alert_id": f"a-{n}", "state": "raised", "severity": "P1", "commune_code": n, "rule": "r",
                "route": "commune-post", "delivery": "now", "summary": f"n={n}"}

    def written(self) -> list[int]:
        return [int(record.getMessage().rsplit("n=", 1)[1]) for record in self.caplog.records]
