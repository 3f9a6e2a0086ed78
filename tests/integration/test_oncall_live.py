"""A sample of the on-call scenarios (tests/data/oncall/) on the real worker: it raises the pages
`binhyen process` raises for them — same alerts, severities, rules and delivery — and keeps the
messages that are not tips out of incidents, as offline."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import CODEC
from sinks.clickhouse import connect, events_table
from streams.config import Settings
from streams.edge.kafka import read_topic
from streams.ops.stack import WorkerProcess, free_port_block
from streams.topics import ALERTS
from tests.conftest import jsonl, offline_run, run_cli, stack_of_its_own, wait_for, webhook_env
from tests.oncall import scenarios

pytestmark = pytest.mark.integration
# A lost child forwarded across communes, a night fire in six short messages, a stabbing filed as
# `other`, a prank caller after a false report, a settled fight, and a morning of non-tips.
SAMPLE = ("s01_lost_child_cross_commune", "s02_night_fire_six_short_reports", "s13_stabbing_hotline_wrong_category",
          "s37_prank_caller_after_false_report", "s33_fight_last_night_settled", "s38_non_tips_daytime_mix")


def moved(events: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The scenario `days` ago at the same local times: nothing else the session publishes is near."""
    first = datetime.fromisoformat(events[0]["occurred_at"])
    today = datetime.now(first.tzinfo)
    shift = timedelta(days=(today.date() - first.date()).days - days)
    return [{**e, "occurred_at": (datetime.fromisoformat(e["occurred_at"]) + shift).isoformat()} for e in events]


def raised(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """The alerts raised (the digest is the timer's, not the scenarios')."""
    return {(a["alert_id"], a["severity"], a["rule"], a["delivery"]) for a in alerts
            if a["state"] == "raised" and a["rule"] != "morning_digest"}


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Settings]:
    """A stack and worker of its own: the offline run starts from empty state, so must the worker
    (the session's has other tests' verdicts in its reputations and base rates)."""
    with stack_of_its_own(tmp_path) as (settings, receiver):
        worker = WorkerProcess(tmp_path / "worker.log", env={
            **os.environ, **webhook_env(receiver), "BINHYEN_METRICS_PORT": str(free_port_block(1))})
        worker.start()
        try:
            yield settings
        finally:
            if worker.alive():
                worker.stop()


def test_a_sample_of_the_on_call_scenarios_pages_live_as_offline(fresh: Settings) -> None:
    settings, clickhouse = fresh, connect(fresh, fresh.clickhouse_database)
    chosen = {s.name: s for s in scenarios() if s.name in SAMPLE}
    assert set(chosen) == set(SAMPLE)
    events = [e for i, name in enumerate(SAMPLE) for e in moved(chosen[name].events, 60 - 5 * i)]
    ids = [e["event_id"] for e in events]
    offline = list(offline_run().process(json.dumps(e, ensure_ascii=False) for e in events))
    expected = raised([line for line in offline if line["kind"] == "alert"])
    assert {rule for _, _, rule, _ in expected} >= {"urgent_report"} and len(expected) >= 4

    assert run_cli("publish", "-q", "-", input=jsonl(events)).returncode == 0
    wait_for(lambda: clickhouse.execute(f"SELECT uniqExact(event_id) FROM {events_table(settings.clickhouse_database)}"
                                        " WHERE event_id IN %(ids)s", {"ids": tuple(ids)})[0][0] == len(ids),
             120, "every scenario event in ClickHouse")
    begin = min(datetime.fromisoformat(e["occurred_at"]) for e in events).timestamp() * 1000
    end = max(datetime.fromisoformat(e["occurred_at"]) for e in events).timestamp() * 1000

    def live() -> set[tuple[str, str, str, str]]:
        alerts = [CODEC.decode(record.value)[1] for record in read_topic(settings, ALERTS, idle_seconds=1)]
        return raised([a for a in alerts if begin <= a["at_ms"] <= end])

    try:
        wait_for(lambda: live() == expected, 60, "the live pages of the sample")
    finally:
        assert live() == expected

    non_tips = [i for name in SAMPLE for i in chosen[name].expect["non_tips"]]
    joined = clickhouse.execute(f"SELECT count() FROM {settings.clickhouse_database}.incident_members "
                                "WHERE event_id IN %(ids)s", {"ids": tuple(non_tips)})[0][0]
    assert len(non_tips) >= 7 and joined == 0
