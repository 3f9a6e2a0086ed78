"""`binhyen credibility fit` and `report` on the real stack: a simulated week of a province no
other test uses goes through the worker; the fit learns from exactly the tips and verdicts of
its period, the stored features re-score to the stored scores, and the report judges a
candidate on later days only. (`credibility promote` is exercised by test_reprocess.py.)"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from processors.credibility import CredibilityConfig, score_features
from processors.credibility_fit import roc_auc
from sinks.clickhouse import private_database
from streams.ops.stack import WorkerProcess
from streams.sim.simulator import VN, SimConfig, simulate
from tests.conftest import jsonl, read_as_tip, run_cli, wait_for

pytestmark = pytest.mark.integration
WEEK = SimConfig(56, days=7, seed=7, start=datetime(2022, 10, 3, tzinfo=VN))  # Khánh Hòa, a province of its own
JUDGED = ("valuable", "not_valuable", "false_report")


@pytest.fixture(scope="module")
def week(worker: WorkerProcess, clickhouse: Any, settings: Any) -> list[dict[str, Any]]:
    """The week's tips and verdicts as published; returned without the messages that are no tip
    (a found wallet, an ad: the meaning model's reading, as the worker's): they have no score."""
    events = [e for e in simulate(WEEK).events if e["type"] in ("tip", "feedback")]
    assert run_cli("publish", "-q", "-", input=jsonl(events), timeout=300).returncode == 0
    events = [e for e in events if e["type"] != "tip" or read_as_tip(e)]
    tips = tuple({e["event_id"] for e in events if e["type"] == "tip"})
    verdicts = tuple({e["event_id"] for e in events if e["type"] == "feedback"})
    scores = f"{private_database(settings.clickhouse_database)}.tip_scores"
    wait_for(lambda: clickhouse.execute(f"SELECT uniqExact(event_id) FROM {scores} WHERE event_id IN %(ids)s",
                                        {"ids": tips})[0][0] == len(tips), 180, "every tip's score in tip_scores")
    wait_for(lambda: clickhouse.execute("SELECT uniqExact(event_id) FROM feedback WHERE event_id IN %(ids)s",
                                        {"ids": verdicts})[0][0] == len(verdicts), 120, "every verdict in feedback")
    return events


def judged_tips(events: list[dict[str, Any]], since: str, until: str) -> dict[str, bool]:
    """Tip id -> judged valuable, for the tips of [since, until) (Vietnam days) with a verdict."""
    verdict = {e["tip_event_id"]: e["verdict"] for e in sorted(
        (e for e in events if e["type"] == "feedback"), key=lambda e: e["occurred_at"])}
    return {e["event_id"]: verdict[e["event_id"]] == "valuable" for e in events
            if e["type"] == "tip" and since <= e["occurred_at"][:10] < until and verdict.get(e["event_id"]) in JUDGED}


def live_config() -> CredibilityConfig:
    from streams.config import DEFAULT_CREDIBILITY_CONFIG

    return CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)


def test_stored_features_rescore_to_the_stored_scores(week: list[dict[str, Any]], clickhouse: Any,
                                                      settings: Any) -> None:
    tips = tuple(e["event_id"] for e in week if e["type"] == "tip")
    rows = clickhouse.execute(
        f"SELECT event_id, scorer_version, credibility, features FROM "
        f"{private_database(settings.clickhouse_database)}.tip_scores WHERE event_id IN %(ids)s", {"ids": tips})
    assert len({row[0] for row in rows}) == len(set(tips)) and {row[1] for row in rows} == {"cred-2"}
    config = live_config()
    # Scores are rounded to 4 places and stored as Float32, features to 6 places: a score a hair's
    # breadth from a rounding boundary may re-score to the neighbouring 4th place (0.3748 stored,
    # read back as 0.37479999…, 0.3749 again), never further.
    off = [(event_id, stored) for event_id, _, stored, features in rows
           if abs(score_features(json.loads(features), config)[0] - stored) > 1e-4 + 1e-6]
    assert off == []
    assert {"base_rate", "independent_reporters"} <= set().union(*(json.loads(row[3]) for row in rows))


def test_fit_learns_from_the_verdicts_of_its_period_and_writes_a_new_config(
        week: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "credibility.v3.json"
    done = run_cli("credibility", "fit", "--since", "2022-10-03", "--until", "2022-10-08", "--out", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    expected = judged_tips(week, "2022-10-03", "2022-10-08")
    assert len(expected) >= 300
    assert (f"fitted cred-3 from cred-2 on {len(expected)} verdicts ({sum(expected.values())} valuable) on tips of "
            f"2022-10-03 .. 2022-10-07") in done.stdout
    assert f"wrote {path}" in done.stdout
    candidate = CredibilityConfig.load(path)
    live = live_config()
    assert candidate.version == "cred-3" and candidate.weights != live.weights
    assert candidate.fit is not None and candidate.fit["verdicts"] == len(expected)
    assert (candidate.fit["since"], candidate.fit["until"]) == ("2022-10-03", "2022-10-08")
    assert candidate.fit["log_loss_after"] < candidate.fit["log_loss_before"]
    moved = re.findall(r"^  (\w+) +(-?\d+\.\d\d) -> (-?\d+\.\d\d)$", done.stdout, re.MULTILINE)
    assert len(moved) == 5
    again = run_cli("credibility", "fit", "--since", "2022-10-03", "--until", "2022-10-08", "--out", str(path))
    assert again.returncode == 2 and again.stderr.startswith(f"binhyen: {path} exists: a config is never overwritten")
    empty = run_cli("credibility", "fit", "--since", "2021-01-01", "--until", "2021-01-02", "--out",
                    str(tmp_path / "none.json"))
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1
    assert empty.stderr.startswith("binhyen: 0 verdicts (0 valuable) are too few to fit: at least 30")
    assert not (tmp_path / "none.json").exists()


def test_report_judges_the_candidate_on_later_days_only(week: list[dict[str, Any]], tmp_path: Path,
                                                        clickhouse: Any, settings: Any) -> None:
    candidate = tmp_path / "credibility.v3.json"
    assert run_cli("credibility", "fit", "--since", "2022-10-03", "--until", "2022-10-08", "--out",
                   str(candidate)).returncode == 0
    plot = tmp_path / "reliability.png"
    # Open: updated within --open-hours of the newest incident (other modules' data is newer): all of them here.
    done = run_cli("credibility", "report", str(candidate), "--since", "2022-10-08", "--until", "2022-10-10",
                   "--plot", str(plot), "--open-hours", "200000")
    assert done.returncode == 0, done.stdout + done.stderr
    held_out = judged_tips(week, "2022-10-08", "2022-10-10")
    assert (f"held-out verdicts: {len(held_out)} tips of 2022-10-08 .. 2022-10-09 ({sum(held_out.values())} "
            "valuable), scored by cred-2 when they came") in done.stdout
    stored = dict(clickhouse.execute(
        f"SELECT event_id, any(credibility) FROM {private_database(settings.clickhouse_database)}.tip_scores "
        "WHERE event_id IN %(ids)s GROUP BY event_id", {"ids": tuple(held_out)}))
    auc_now = roc_auc([(stored[tip], valuable) for tip, valuable in held_out.items()])
    figures = re.search(r"^ROC-AUC +(\d\.\d{3}) +(\d\.\d{3})$", done.stdout, re.MULTILINE)
    assert figures and figures[1] == f"{auc_now:.3f}", done.stdout
    assert re.search(r"^Brier +\d\.\d{3} +\d\.\d{3}$", done.stdout, re.MULTILINE)
    assert re.search(r"^  cred-2: (\d\.\d\d -> \d\.\d\d \(\d+\)(; )?)+$", done.stdout, re.MULTILINE)
    assert len(re.findall(r"^  \w+ +-?\d+\.\d\d -> -?\d+\.\d\d$", done.stdout, re.MULTILINE)) == 5
    opened = re.search(r"open incidents \(tips only, updated in the last 200000 h of data\): (\d+); would change "
                       r"severity: (\d+)", done.stdout)
    assert opened and int(opened[1]) > 0 and int(opened[2]) <= int(opened[1])
    assert "never exported per reporter" in done.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    early = run_cli("credibility", "report", str(candidate), "--since", "2022-10-06", "--until", "2022-10-10")
    assert early.returncode == 2 and early.stderr.strip() == (
        "binhyen: cred-3 was fitted on tips up to 2022-10-08 (exclusive): judge it on verdicts it did not see, "
        "--since 2022-10-08 or later")


def test_a_candidate_equal_to_the_live_config_changes_nothing(week: list[dict[str, Any]], tmp_path: Path) -> None:
    from streams.config import DEFAULT_CREDIBILITY_CONFIG

    same = tmp_path / "same.json"
    same.write_text(json.dumps({**json.loads(DEFAULT_CREDIBILITY_CONFIG.read_text(encoding="utf-8")),
                                "version": "cred-2-copy"}), encoding="utf-8")
    done = run_cli("credibility", "report", str(same), "--since", "2022-10-03", "--until", "2022-10-10")
    assert done.returncode == 0, done.stderr
    figures = re.search(r"^ROC-AUC +(\d\.\d{3}) +(\d\.\d{3})$", done.stdout, re.MULTILINE)
    assert figures and figures[1] == figures[2]
    assert re.search(r"would change severity: 0$", done.stdout, re.MULTILINE)
    other = tmp_path / "other-memory.json"
    other.write_text(json.dumps({**json.loads(same.read_text()), "reputation_memory": 5}), encoding="utf-8")
    refused = run_cli("credibility", "report", str(other), "--since", "2022-10-03", "--until", "2022-10-10")
    assert refused.returncode == 2 and "the stored features cannot judge it" in refused.stderr
