"""`binhyen reprocess` on a stack of its own: four simulated days are processed live under the shipped
credibility config (cred-2), then reprocessed under cred-3 (another calibration) while the live
worker runs on. The new scores must be those `binhyen process` gives under cred-3, `--compare`
must report them, reprocessing must page nobody, and `--promote` must swap them in and move the
live worker onto cred-3 without paging the history again."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.meaning import MeaningModel
from processors.offline import OfflineRun
from processors.pseudonym import Pseudonymiser
from sinks.clickhouse import connect, private_database
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG, Settings
from streams.ops.stack import WorkerProcess, free_port_block
from streams.sim.simulator import VN, SimConfig, simulate
from streams.topics import COMMUNE_CONTROL
from tests.conftest import WebhookReceiver, read_as_tip, run_cli, settled, stack_of_its_own, wait_for, webhook_env

pytestmark = pytest.mark.integration
HISTORY = SimConfig(11, days=4, seed=17, scale=0.2, start=datetime(2023, 6, 1, tzinfo=VN))
NEW_VERSION = "cred-3-alerts-3-meaning-2"


def cred3_text() -> str:
    config = json.loads(DEFAULT_CREDIBILITY_CONFIG.read_text(encoding="utf-8"))
    return json.dumps({**config, "version": "cred-3", "calibration_intercept": config["calibration_intercept"] + 1.0})


@pytest.fixture(scope="module")
def days() -> list[dict[str, Any]]:
    events = simulate(HISTORY).events
    assert 20_000 <= len(events) <= 30_000 and sum(e["type"] == "tip" for e in events) >= 60
    return events


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Settings, WorkerProcess, WebhookReceiver]]:
    with stack_of_its_own(tmp_path) as (settings, receiver):
        worker = WorkerProcess(tmp_path / "worker.log", env={
            **os.environ, **webhook_env(receiver), "BINHYEN_METRICS_PORT": str(free_port_block(1))})
        worker.start()
        try:
            yield settings, worker, receiver
        finally:
            if worker.alive():
                worker.stop()


def settled_group(settings: Settings, group: str) -> None:
    settled(settings, group, COMMUNE_CONTROL if group == settings.worker_group else f"{COMMUNE_CONTROL}.{NEW_VERSION}")


def scores_by_members(client: Any, database: str) -> dict[frozenset[str], float]:
    rows = client.execute(
        f"SELECT incident_id, groupUniqArray(event_id) FROM {database}.incident_members GROUP BY incident_id")
    credibility = dict(client.execute(f"SELECT incident_id, argMax(credibility, version) FROM {database}.incidents "
                                      "GROUP BY incident_id"))
    return {frozenset(members): credibility[incident] for incident, members in rows}


def offline_scores(events: list[dict[str, Any]], credibility: str) -> dict[frozenset[str], float]:
    run = OfflineRun.create(Pseudonymiser(b"k" * 32), CredibilityConfig.parse(credibility),
                            AlertConfig.load(DEFAULT_ALERT_CONFIG), MeaningModel.load(DEFAULT_MEANING_CONFIG))
    scores = {}
    for output in run.process([json.dumps(event, ensure_ascii=False) for event in events]):
        if output["kind"] == "incident":
            scores[output["incident_id"]] = (frozenset(output["event_ids"]), output["credibility"])
    return dict(scores.values())


def test_reprocess_compare_and_promote_a_new_credibility_config(
        days: list[dict[str, Any]], live: tuple[Settings, WorkerProcess, WebhookReceiver], tmp_path: Path) -> None:
    settings, worker, webhook = live
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(event, ensure_ascii=False) + "\n" for event in days), encoding="utf-8")
    assert run_cli("publish", str(history), timeout=300).returncode == 0
    settled_group(settings, settings.worker_group)
    client = connect(settings, settings.clickhouse_database)
    live_scores = scores_by_members(client, settings.clickhouse_database)
    paged_live = [(page["alert_id"], page["state"]) for page in webhook.delivered()]
    assert live_scores and paged_live

    # Reprocess under cred-3: new scores, the same incidents, nobody paged.
    config = tmp_path / "credibility.v3.json"
    config.write_text(cred3_text(), encoding="utf-8")
    done = run_cli("reprocess", "--credibility", str(config), "--compare", "--quiet", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"reprocessed {len(days)} events under {NEW_VERSION} with 1 worker(s)" in done.stdout
    recorded = client.execute(f"SELECT credibility, alerts, meaning FROM {private_database(settings.clickhouse_database)}"
                              ".processor_versions WHERE name = %(name)s", {"name": NEW_VERSION})
    assert recorded == [(cred3_text(), DEFAULT_ALERT_CONFIG.read_text(encoding="utf-8"),
                         DEFAULT_MEANING_CONFIG.read_text(encoding="utf-8"))]  # every replica reads text alike
    version_db = f"{settings.clickhouse_database}_{NEW_VERSION.replace('-', '_')}"
    new_scores = scores_by_members(client, version_db)
    assert set(new_scores) == set(live_scores)  # clustering did not change
    expected = offline_scores(days, cred3_text())
    assert set(expected) == set(new_scores)
    assert all(abs(new_scores[members] - score) < 1e-4 for members, score in expected.items())
    moved = sum(1 for members in live_scores if abs(new_scores[members] - live_scores[members]) >= 0.1)
    assert moved > 0
    assert client.execute(f"SELECT groupUniqArray(scorer_version) FROM {version_db}.incidents")[0][0] == ["cred-3"]
    assert "scorer: live cred-2; new cred-3" in done.stdout
    compared = re.search(r"credibility: (\d+) incidents on both sides, (\d+) moved by 0.1 or more", done.stdout)
    assert compared and (int(compared[1]), int(compared[2])) == (len(live_scores), moved), done.stdout
    assert re.search(rf"incidents: live {len(live_scores)}, new {len(live_scores)} \(0 live incidents split, "
                     r"0 new incidents merge several\)", done.stdout), done.stdout
    assert [(page["alert_id"], page["state"]) for page in webhook.delivered()] == paged_live  # no page
    reprocessing_log = settings.state_dir / "reprocess" / NEW_VERSION / "worker-0.log"
    assert "Worker]: Ready" in reprocessing_log.read_text() and "ALERT " not in reprocessing_log.read_text()

    # Promote: the live tables hold cred-3's scores, the live worker runs cred-3, history is not paged.
    # (through `binhyen credibility promote`, which takes a candidate config to a live version this way)
    promoted = run_cli("credibility", "promote", str(config), "--name", NEW_VERSION, "--quiet", timeout=600)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert f"promoted {NEW_VERSION} (was the configs from files)" in promoted.stdout
    assert scores_by_members(client, settings.clickhouse_database) == new_scores
    assert scores_by_members(client, version_db) == live_scores  # the previous ones, kept
    tip_scores = dict(client.execute(f"SELECT scorer_version, uniqExact(event_id) FROM "
                                     f"{settings.clickhouse_database}_private.tip_scores GROUP BY scorer_version"))
    # what it reads as no tip (a question, thanks) is never scored
    read_as_tips = {e["event_id"] for e in days if e["type"] == "tip" and read_as_tip(e)}
    assert 0 < len(read_as_tips) < len({e["event_id"] for e in days if e["type"] == "tip"})
    assert tip_scores["cred-3"] == tip_scores["cred-2"] == len(read_as_tips)
    wait_for(lambda: f"processor version {NEW_VERSION} (live)" in worker.log_since(0), 120, "the worker under cred-3")
    assert worker.alive()
    press = next(event for event in reversed(days) if event.get("signal") == "panic_pressed")
    last = max(datetime.fromisoformat(event["occurred_at"]) for event in days)
    new_press = {**press, "event_id": "after-promotion-press", "occurred_at": (last + timedelta(hours=1)).isoformat()}
    assert run_cli("publish", "-", input=json.dumps(new_press, ensure_ascii=False) + "\n").returncode == 0
    group = f"{settings.worker_group}.{NEW_VERSION}"
    wait_for(lambda: client.execute(
        f"SELECT count() FROM {settings.clickhouse_database}.incident_members WHERE event_id = 'after-promotion-press'"
    )[0][0], 120, "the press after the promotion")
    settled_group(settings, group)
    incident = client.execute(f"SELECT incident_id FROM {settings.clickhouse_database}.incident_members "
                              "WHERE event_id = 'after-promotion-press'")[0][0]
    after = webhook.delivered()[len(paged_live):]
    pages_after = [(page["alert_id"], page["state"]) for page in after]
    assert ([page for page in pages_after if page[1] == "raised" and page[0].endswith(incident.removeprefix("inc-"))]
            == [(f"al-{press['commune_code']}-{incident.removeprefix('inc-')}", "raised")])
    # What pages now is new: the press, and re-pages of alerts still unanswered, due in the hour since.
    assert min(page["at_ms"] for page in after) > last.timestamp() * 1000, "history paged again"
