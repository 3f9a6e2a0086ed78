"""One contract, every sink (sinks.base): the same tests run against the ClickHouse table sink on
the real local server, the webhook notifier against a real loopback endpoint, and the log
notifier. A new sink gets a subclass here, as the `eventsourcing` library tests every recorder."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from sinks.base import Sink, SinkError
from sinks.clickhouse import TableSink, connect
from sinks.notifiers import LogNotifier, WebhookNotifier
from tests.conftest import WebhookReceiver

pytestmark = pytest.mark.integration
_tables = itertools.count()


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


class TestWebhookNotifier(FailingSinkContract):
    @pytest.fixture(autouse=True)
    def _endpoint(self) -> Any:
        self.receiver = WebhookReceiver(fail_first=0)
        yield
        self.receiver.server.shutdown()

    def create_sink(self) -> Sink:
        return WebhookNotifier({"commune-post": self.receiver.url}, b"s" * 32, "morning-digest")

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
