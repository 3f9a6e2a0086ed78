"""Incidents from the real worker: the same clustering as `binhyen process`, in ClickHouse and on Kafka."""

from __future__ import annotations

import json
from typing import Any

import pytest

from processors import geography
from schemas import CODEC
from streams.edge.kafka import read_topic
from streams.ops.stack import WorkerProcess
from streams.topics import INCIDENTS
from tests.conftest import REPO, offline_run, run_cli, wait_for

pytestmark = pytest.mark.integration


def test_worker_clusters_the_corpus_exactly_as_the_offline_run(
    worker: WorkerProcess, clickhouse: Any, settings: Any
) -> None:
    rows = [json.loads(line) for line in (REPO / "tests/data/dedup_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    # In communes (of province 4) and a year no other test uses: the live worker's state holds the
    # other tests' events too, and a later tip in a commune moves its clock past the corpus.
    communes = sorted({row["event"]["commune_code"] for row in rows})
    moved = dict(zip(communes, sorted(c.code for c in geography.communes_of_province(4))[:len(communes)]))
    events = sorted(({**row["event"], "occurred_at": row["event"]["occurred_at"].replace("2025-", "2021-"),
                      "commune_code": moved[row["event"]["commune_code"]]} for row in rows),
                    key=lambda e: e["occurred_at"])
    lines = [json.dumps(event, ensure_ascii=False) for event in events]
    ids = tuple(event["event_id"] for event in events)

    output = [out for out in offline_run().process(lines) if out["kind"] == "event"]
    assert len(output) == 152
    # what the meaning model reads as no tip (a found wallet, a question) joins no incident, live or offline
    offline = {out["event_id"]: out["incident_id"] for out in output if "incident_id" in out}
    assert len(offline) >= 140

    assert run_cli("publish", "-q", "-", input="\n".join(lines) + "\n").returncode == 0
    wait_for(lambda: clickhouse.execute(
        "SELECT uniqExact(event_id) FROM incident_members WHERE event_id IN %(ids)s", {"ids": ids})[0][0]
        == len(offline), 90, "the corpus tips placed in incidents")
    live = dict(clickhouse.execute(
        "SELECT event_id, incident_id FROM incident_members FINAL WHERE event_id IN %(ids)s", {"ids": ids}))
    assert live == offline

    incident_ids = tuple(sorted(set(offline.values())))
    incidents = clickhouse.execute(
        "SELECT incident_id, version, tips, credibility, reasons, scorer_version FROM incidents FINAL "
        "WHERE incident_id IN %(ids)s ORDER BY incident_id", {"ids": incident_ids})
    assert len(incidents) == len(incident_ids)
    sizes = {i: list(offline.values()).count(i) for i in incident_ids}
    for incident_id, version, tips, credibility, reasons, scorer in incidents:
        assert tips == sizes[incident_id]
        assert version >= tips  # one version per report at least
        assert 0.0 <= credibility <= 1.0 and scorer == "cred-2"
        assert {"signal", "contribution"} <= set(json.loads(reasons)[0])

    latest: dict[str, dict[str, Any]] = {}
    for record in read_topic(settings, INCIDENTS, idle_seconds=1):
        assert record.key is not None
        snapshot = CODEC.decode(record.value)[1]
        if snapshot["incident_id"] in sizes:
            assert record.key == str(snapshot["commune_code"]).encode()  # keyed by commune
            if snapshot["version"] >= latest.get(snapshot["incident_id"], {"version": 0})["version"]:
                latest[snapshot["incident_id"]] = snapshot
    assert set(latest) == set(incident_ids)
    assert {i: len(s["event_ids"]) for i, s in latest.items()} == sizes
