"""`binhyen process` and exact dedup, offline: no broker, no database."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from processors.dedup import DAY_MS, ExactDedup
from streams.cli import app
from tests.conftest import CONTRACTS, contract_lines, offline_run


def run_offline(lines: list[str]) -> list[dict]:
    return [line for line in offline_run().process(lines) if line["kind"] == "event"]


def test_contract_examples_give_12_accepted_and_1_duplicate() -> None:
    out = run_offline(contract_lines("examples.jsonl"))
    assert [line["status"] for line in out].count("accepted") == 12
    duplicates = [line for line in out if line["status"] == "duplicate"]
    assert len(duplicates) == 1
    assert {k: duplicates[0][k] for k in ("event_id", "status", "reason")} == {
        "event_id": "tip-0001", "status": "duplicate", "reason": "event_id tip-0001 already seen at line 4"}
    # the repeat points at the incident the first copy opened
    assert duplicates[0]["incident_id"] == out[3]["incident_id"]
    assert [line["event_id"] for line in out][:4] == ["mc-0001", "mc-0002", "mc-0003", "tip-0001"]


def test_invalid_lines_are_all_rejected_with_line_numbers_and_nothing_stops() -> None:
    lines = contract_lines("invalid.jsonl") + contract_lines("examples.jsonl")[:1]
    out = run_offline(lines)
    assert [line["status"] for line in out] == ["rejected"] * 11 + ["accepted"]
    assert [line["line"] for line in out[:11]] == list(range(1, 12))
    assert all(line["reason"] for line in out[:11])
    assert out[8] == {"kind": "event", "event_id": None, "type": None, "status": "rejected", "line": 9,
                      "reason": "expected a JSON object per line, got a list"}


def test_blank_lines_are_skipped_but_line_numbers_stay_true() -> None:
    lines = ["", "   ", '{"type": "tip"}']
    out = run_offline(lines)
    assert len(out) == 1 and out[0]["line"] == 3


def test_exact_dedup_forgets_ids_beyond_the_retention_window() -> None:
    dedup = ExactDedup(retention_ms=DAY_MS)
    assert dedup.first_seen("a", 0)
    assert not dedup.first_seen("a", 1000)
    for i in range(5000):  # time moves on two days
        dedup.first_seen(f"e{i}", 2 * DAY_MS + i)
    assert "a" not in dedup.seen
    assert len(dedup.seen) <= 5000
    assert dedup.first_seen("a", 2 * DAY_MS + 6000)  # a retry after the window counts as new


def test_exact_dedup_memory_is_bounded_by_the_window() -> None:
    dedup = ExactDedup(retention_ms=1000)
    for i in range(100_000):
        dedup.first_seen(f"e{i}", i)  # one event per millisecond
    assert len(dedup.seen) <= 2 * 1024 + 1001


def test_process_cli_writes_the_contract_output(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["process", "--input", str(CONTRACTS / "examples.jsonl"), "--output", str(output)])
    assert result.exit_code == 0, result.output
    lines = (CONTRACTS / "examples.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["event_id"] for line in lines]
    assert (len(lines), len(set(ids))) == (13, 12)  # tip-0001 is sent twice
    first = output.read_text(encoding="utf-8")
    records = [json.loads(line) for line in first.splitlines()]
    # What the examples describe: two reporters about one boarding house; a bell pressed twice
    # within seconds; a forced gate; two unrelated single tips.
    assert sorted(r["event_ids"] for r in records if r["kind"] == "incident") == [
        ["dev-0001", "dev-0002"], ["dev-0003"], ["tip-0001", "tip-0002"], ["tip-0003"], ["tip-0004"]]
    # The second reporter makes the boarding-house report P1; nobody acks any P1 (aa-0001 names an
    # alert that does not exist), so each goes up the chain — the province desk after the commune
    # post's 5 minutes, the command after the desk's 10 — and is paged there again after 15, 30,
    # 60, 120, then every 240 minutes: an unanswered page never closes itself. The officer's
    # verdict on tip-0001 (dated 09:00, read after September's events) raises nothing again. The
    # motorbike theft that "vừa" happened (20:31) pages the post at once, as unverified (P2).
    alerts: dict[str, list[tuple[str, str, str, str]]] = {}
    at_command: dict[str, list[datetime]] = {}
    for r in records:
        if r["kind"] == "alert":
            alerts.setdefault(r["alert_id"], []).append((r["state"], r["severity"], r["rule"], r["at"][:16]))
            if r["route"] == "command":
                at_command.setdefault(r["alert_id"], []).append(datetime.fromisoformat(r["at"]))
    assert [steps[:4] for steps in alerts.values()] == [
        [("raised", "P2", "credible_incident", "2025-06-26T06:35"), ("escalated", "P1", "credible_incident",
                                                                     "2025-06-26T06:38"),
         ("escalated", "P1", "credible_incident", "2025-06-26T06:43"),
         ("escalated", "P1", "credible_incident", "2025-06-26T06:53")],
        [("raised", "P2", "urgent_report", "2025-09-03T20:31"), ("escalated", "P2", "urgent_report",
                                                                 "2025-09-03T20:46"),
         ("escalated", "P2", "urgent_report", "2025-09-03T21:16"), ("escalated", "P2", "urgent_report",
                                                                    "2025-09-03T21:46")],
        [("raised", "P1", "panic_bell", "2025-09-03T21:02"), ("escalated", "P1", "panic_bell", "2025-09-03T21:07"),
         ("escalated", "P1", "panic_bell", "2025-09-03T21:17"), ("escalated", "P1", "panic_bell", "2025-09-03T21:32")],
        [("raised", "P1", "gate_forced", "2025-09-03T22:10"), ("escalated", "P1", "gate_forced", "2025-09-03T22:15"),
         ("escalated", "P1", "gate_forced", "2025-09-03T22:25"),
         ("escalated", "P1", "gate_forced", "2025-09-03T22:40")]]
    for alert_id, steps in alerts.items():
        assert [state for state, *_ in steps].count("raised") == 1 and "resolved" not in [s for s, *_ in steps]
        at = at_command[alert_id]
        gaps = [int((b - a).total_seconds() // 60) for a, b in zip(at, at[1:])]
        base = {"P1": 15, "P2": 30}[steps[-1][1]]  # then twice as long each time, at most 240 minutes …
        doubling = [base * 2 ** n for n in range(5) if base * 2 ** n < 240]
        assert gaps[:len(doubling)] == doubling, (alert_id, gaps)
        # … and every 240 minutes after; months with no event in between are one page (no tick ran)
        assert all(gap % 240 == 0 for gap in gaps[len(doubling):]), (alert_id, gaps)
    boarding_house = next(iter(alerts))
    assert [r["route"] for r in records if r.get("alert_id") == boarding_house][:5] == [
        "commune-post", "commune-post", "province-duty", "command", "command"]
    total = sum(len(steps) for steps in alerts.values())
    assert f"13 events: 12 accepted, 1 duplicate, 0 rejected; 5 incidents, {total} alert events" in result.output
    again = tmp_path / "again.jsonl"
    real_time = time.time
    with pytest.MonkeyPatch.context() as later:  # run again as if 400 days later: no wall clock in the output
        later.setattr(time, "time", lambda: real_time() + 400 * 86_400)
        later.setattr(time, "time_ns", lambda: int((real_time() + 400 * 86_400) * 1e9))
        rerun = CliRunner().invoke(app, ["process", "--input", str(CONTRACTS / "examples.jsonl"), "--output", str(again)])
    assert rerun.exit_code == 0, rerun.output
    assert again.read_text(encoding="utf-8") == first  # same input, same output
    kinds = [json.loads(line)["kind"] for line in first.splitlines()]
    assert kinds.count("event") == 13 and kinds.count("alert") == total
    assert kinds[-5:] == ["incident"] * 5 and "incident" not in kinds[:-5]


def test_process_cli_exit_code_and_summary_for_rejections(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["process", "-i", str(CONTRACTS / "invalid.jsonl"), "-o", str(output)])
    assert result.exit_code == 1
    assert "11 events: 0 accepted, 0 duplicate, 11 rejected; 0 incidents, 0 alert events" in result.output
    assert len(output.read_text().splitlines()) == 11


def test_process_cli_missing_input_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    binhyen = Path(sys.executable).parent / "binhyen"
    result = subprocess.run([binhyen, "process", "-i", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"binhyen: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory"
