"""Many workers in one consumer group lose nothing: on a stack of its own, a simulated province
day (~50,000 events) flows while workers join, die (SIGKILL) or are replaced one by one
(rolling restart). Every event must reach ClickHouse once, every incident must cluster as
`binhyen process` clusters it (state moved with its partitions), and every alert raised for
an incident must be raised — and paged — once. And one or two workers give every alert of a
day of devices and on-call acks, published at accelerated pace, the lifecycle `binhyen
process` gives it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.meaning import MeaningModel
from processors.offline import OfflineRun, alert_line
from processors.pseudonym import Pseudonymiser
from processors.staff import StaffRegistry
from schemas import CODEC
from sinks.clickhouse import connect, events_table
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG, DEFAULT_STAFF_CONFIG, \
    Settings
from streams.edge.kafka import read_topic
from streams.ops.stack import WorkerProcess, free_port_block
from streams.ops.verify import verify_delivery
from streams.sim.runner import publish_events
from streams.sim.simulator import VN, SimConfig, id_prefix, simulate
from streams.topics import ALERTS
from tests.conftest import (
    WebhookReceiver, offline_run, publish_in_background, stack_of_its_own, wait_for, webhook_env,
)

pytestmark = pytest.mark.integration
CONFIG = SimConfig(96, days=1, seed=14, scale=1.25, start=datetime(2022, 9, 5, tzinfo=VN))
CHUNK, PAUSE_S = 2_500, 0.5


@pytest.fixture(scope="module")
def province() -> dict[str, Any]:
    """The simulated day, and what `binhyen process` makes of it."""
    events = simulate(CONFIG).events
    run = offline_run()
    outputs = list(run.process([json.dumps(event, ensure_ascii=False) for event in events]))
    members = {o["incident_id"]: frozenset(o["event_ids"]) for o in outputs if o["kind"] == "incident"}
    paged = [o for o in outputs if o["kind"] == "alert" and o["state"] == "raised" and o.get("incident_id")]
    assert 45_000 <= len(events) <= 60_000 and len(paged) >= 10, (len(events), len(paged))
    return {"events": events, "incidents": set(members.values())}


class Group:
    """Workers of one consumer group on the test's stack, each with state and metrics port of its own."""

    def __init__(self, root: Path, webhook: WebhookReceiver, settings: Settings) -> None:
        self.root, self.count = root, 0
        self.env = {**os.environ, "BINHYEN_CLICKHOUSE_PASSWORD": settings.clickhouse_password, **webhook_env(webhook)}
        self.workers: list[WorkerProcess] = []

    def start(self) -> WorkerProcess:
        n, self.count = self.count, self.count + 1
        worker = WorkerProcess(self.root / f"worker-{n}.log", env={
            **self.env, "BINHYEN_STATE_DIR": str(self.root / f"worker-{n}"),
            "BINHYEN_METRICS_PORT": str(free_port_block(1))})
        worker.start()
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        """Every worker still running, together (each shuts down in ~1.5 s, more under load)."""
        running = [worker for worker in self.workers if worker.alive()]
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(lambda worker: worker.stop(), running))


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[Group, Settings, WebhookReceiver]]:
    with stack_of_its_own(tmp_path) as (settings, receiver):
        workers = Group(tmp_path, receiver, settings)
        try:
            yield workers, settings, receiver
        finally:
            workers.stop_all()


def arrived(client: Any, settings: Settings, config: SimConfig = CONFIG) -> int:
    return client.execute(f"SELECT uniqExact(event_id) FROM {events_table(settings.clickhouse_database)} "
                          "WHERE startsWith(event_id, %(p)s)", {"p": id_prefix(config)})[0][0]


def run_the_day(province: dict[str, Any], workers: Group, settings: Settings, webhook: WebhookReceiver,
                disrupt: Callable[[Callable[[float], None]], None]) -> None:
    """Publish the day while `disrupt` changes the group (it is handed a wait-for-share-arrived),
    then check every event, incident and alert against the offline run."""
    events = province["events"]
    client = connect(settings, settings.clickhouse_database)

    def until_share(share: float) -> None:
        wait_for(lambda: arrived(client, settings) >= share * len(events), 240, f"{share:.0%} of the day")

    feeder = publish_in_background(settings, events, CHUNK, PAUSE_S)
    disrupt(until_share)
    feeder.join()
    wait_for(lambda: arrived(client, settings) == len(events), 300, f"all {len(events)} events")

    report = verify_delivery(client, settings.clickhouse_database, [(e["event_id"], e["type"]) for e in events])
    assert report.line().startswith(f"ALL-RECORDS-DELIVERED: {len(events)} events, each once"), report.line()

    # Clustered as one process clusters the whole day: the same groups of events. (An incident's
    # id names its first event, and which of a tip and a bell pressed together comes first
    # depends on how two topics interleave, live or offline; the grouping does not.)
    clustered = tuple(event_id for members in province["incidents"] for event_id in members)
    wait_for(lambda: client.execute("SELECT uniqExact(event_id) FROM incident_members WHERE event_id IN %(ids)s",
                                    {"ids": clustered})[0][0] == len(clustered), 120, "every clustered event")
    members: dict[str, set[str]] = defaultdict(set)
    for incident_id, event_id in client.execute("SELECT incident_id, event_id FROM incident_members FINAL "
                                                "WHERE event_id IN %(ids)s", {"ids": clustered}):
        members[incident_id].add(event_id)
    assert {frozenset(group) for group in members.values()} == province["incidents"]
    assert client.execute("SELECT incident_id FROM incidents FINAL WHERE incident_id IN %(ids)s "
                          "GROUP BY incident_id HAVING count() > 1", {"ids": tuple(members)}) == []

    # Every incident is paged at most once, and every alert raised once, whatever moved or died.
    # (Which incidents are paged, and at which severity, is not compared with the offline run:
    # credibility reads reporters' reputations from a GlobalTable that each worker updates and
    # replicates on its own, so with several workers a score can differ — README, Scaling.)
    raised = client.execute("SELECT alert_id, incident_id, count(), any(delivery) FROM alerts FINAL "
                            "WHERE state = 'raised' AND incident_id IN %(ids)s GROUP BY alert_id, incident_id",
                            {"ids": tuple(members)})
    assert len(raised) >= 10
    assert {n for _, _, n, _ in raised} == {1}
    assert Counter(incident for _, incident, _, _ in raised).most_common(1)[0][1] == 1
    expected = {alert_id for alert_id, _, _, delivery in raised if delivery == "now"}  # the rest: the digest
    assert len(expected) >= 5

    def pages() -> dict[str, set[str]]:
        keys: dict[str, set[str]] = defaultdict(set)
        for headers, body, status in webhook.requests:
            alert = json.loads(body)
            if status == 200 and alert["state"] == "raised" and alert["alert_id"] in expected:
                keys[alert["alert_id"]].add(headers["Idempotency-Key"])
        return keys

    paged = wait_for(lambda: (lambda got: got if len(got) == len(expected) else None)(pages()), 60,
                     "a page for every raised alert")
    assert Counter(len(keys) for keys in paged.values()) == {1: len(expected)}  # one page each (repeats share a key)


def test_three_workers_a_fourth_joins_and_one_is_killed_lose_nothing(
    province: dict[str, Any], group: tuple[Group, Settings, WebhookReceiver]
) -> None:
    workers, settings, webhook = group
    first = [workers.start() for _ in range(3)]

    def disrupt(until_share: Callable[[float], None]) -> None:
        until_share(0.3)
        workers.start()  # a fourth joins mid-stream: a rebalance
        until_share(0.6)
        assert first[1].stop(signal.SIGKILL) == -signal.SIGKILL  # one dies: its partitions move

    run_the_day(province, workers, settings, webhook, disrupt)
    assert [worker.alive() for worker in workers.workers] == [True, False, True, True]


def test_a_rolling_restart_of_every_worker_loses_nothing(
    province: dict[str, Any], group: tuple[Group, Settings, WebhookReceiver]
) -> None:
    workers, settings, webhook = group
    old = [workers.start() for _ in range(3)]

    def disrupt(until_share: Callable[[float], None]) -> None:
        for n, worker in enumerate(old):
            until_share(0.15 + 0.2 * n)
            workers.start()  # the new one is up before the old one is told to stop
            assert worker.stop(signal.SIGTERM) == 0

    run_the_day(province, workers, settings, webhook, disrupt)
    assert [worker.alive() for worker in workers.workers] == [False, False, False, True, True, True]


LIFECYCLE_DAY = SimConfig(11, days=1, seed=23, scale=1.0, start=datetime(2025, 11, 3, tzinfo=VN))
Lifecycles = dict[str, list[tuple[str, str, str]]]


def lifecycles(alert_lines: list[dict[str, Any]]) -> Lifecycles:
    """Per alert, its (state, severity, time) steps in the order they were emitted."""
    steps: Lifecycles = defaultdict(list)
    for line in alert_lines:
        steps[line["alert_id"]].append((line["state"], line["severity"], line["at"]))
    return dict(steps)


@pytest.mark.parametrize("count", [1, 2], ids=["one-worker", "two-workers"])
def test_workers_give_every_alert_the_lifecycle_of_the_offline_run(
    count: int, group: tuple[Group, Settings, WebhookReceiver], tmp_path: Path
) -> None:
    """A day of panic bells, gates, heartbeats, outages and on-call acks published over half a
    minute (a 3-minute ack window passes in a sixteenth of a second): acks inside and after the window,
    acks forwarded to whichever worker holds the alert's commune, escalations and silent
    devices of communes gone quiet — each alert's steps as `binhyen process` has them.

    Without tips: which of a tip and a bell pressed together is read first decides which
    incident the page names, and that order across topics holds within a batch, not across
    batches (README, Scaling); tests/unit/test_lifecycles.py covers whole days with tips and
    verdicts. The acks come 40 s to 6 min after the press, so a 3-minute window has both."""
    workers, settings, _ = group
    config = json.loads(DEFAULT_ALERT_CONFIG.read_text())
    config["escalation"][0]["ack_minutes"]["P1"] = 3  # the commune post's window; the province desk keeps 10
    (tmp_path / "alerts.json").write_text(json.dumps(config))
    workers.env["BINHYEN_ALERT_CONFIG"] = str(tmp_path / "alerts.json")
    events = [e for e in simulate(LIFECYCLE_DAY).events if e["type"] not in ("tip", "feedback")]
    run = OfflineRun.create(Pseudonymiser(b"k" * 32), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                            AlertConfig.load(tmp_path / "alerts.json"), MeaningModel.load(DEFAULT_MEANING_CONFIG),
                            StaffRegistry.load(DEFAULT_STAFF_CONFIG))
    expected = lifecycles([o for o in run.process([json.dumps(e, ensure_ascii=False) for e in events])
                           if o["kind"] == "alert"])
    states = Counter(step[0] for steps in expected.values() for step in steps)
    assert states["acked"] >= 12 and states["escalated"] >= 5, states
    for _ in range(count):
        workers.start()
    publish_events(settings, events, Console(quiet=True), pace_seconds=30)
    client = connect(settings, settings.clickhouse_database)
    wait_for(lambda: arrived(client, settings, LIFECYCLE_DAY) == len(events), 300, f"all {len(events)} events")

    def live() -> Lifecycles:
        return lifecycles([alert_line(CODEC.decode(record.value)[1]) for record in read_topic(settings, ALERTS)])

    total = sum(len(steps) for steps in expected.values())
    with contextlib.suppress(AssertionError):  # the last escalations come from the timer, after the last event
        wait_for(lambda: sum(len(steps) for steps in live().values()) >= total, 60, f"{total} alert steps", every=1)
    assert live() == expected
    assert all(worker.alive() for worker in workers.workers)
