"""The province simulator: deterministic, realistic in its mix, and valid under the contract."""

from __future__ import annotations

import json
import statistics
import unicodedata
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from processors.geography import communes_of_province
from streams.cli import app
from streams.sim.texts import add_noise, strip_diacritics
from streams.sim.simulator import VN, SimConfig, Simulation, simulate, vietnam_time
from tests.conftest import offline_run

CA_MAU = 96


@pytest.fixture(scope="module")
def two_days() -> Simulation:
    return simulate(SimConfig(CA_MAU, days=2, seed=11))


@pytest.mark.parametrize("at_s", [0, 1, 61_199, 61_200, 61_201, 1_714_694_399, 1_714_694_400, 1_735_664_399,
                                  1_735_664_400, 1_772_323_199, 4_102_444_800])
def test_event_times_are_vietnamese_iso_times(at_s: int) -> None:
    """The fast stamp equals datetime's, across local midnights, a new year and a leap day."""
    assert vietnam_time(at_s) == datetime.fromtimestamp(at_s, VN).isoformat()


def test_same_seed_same_events_and_truth() -> None:
    first = simulate(SimConfig(CA_MAU, days=1, seed=5, scale=0.3))
    second = simulate(SimConfig(CA_MAU, days=1, seed=5, scale=0.3))
    other = simulate(SimConfig(CA_MAU, days=1, seed=6, scale=0.3))
    assert first.events == second.events and first.truth == second.truth
    assert first.events != other.events


def test_every_simulated_event_passes_the_contract(two_days: Simulation) -> None:
    lines = [json.dumps(event, ensure_ascii=False) for event in two_days.events]
    statuses = Counter(out["status"] for out in offline_run().process(lines) if out["kind"] == "event")
    assert statuses == Counter({"accepted": len(lines)})


def test_events_are_in_event_time_order_and_in_the_province(two_days: Simulation) -> None:
    times = [event["occurred_at"] for event in two_days.events]
    assert times == sorted(times)
    communes = {c.code for c in communes_of_province(CA_MAU)}
    used = {event["commune_code"] for event in two_days.events if "commune_code" in event}
    assert used <= communes
    assert len(used) == len(communes)  # every commune has devices and models


def test_mix_of_event_types(two_days: Simulation) -> None:
    counts = Counter(event["type"] for event in two_days.events)
    total = sum(counts.values())
    assert counts["device_signal"] / total > 0.9  # device signals dominate volume
    tips_per_day = counts["tip"] / 2
    assert 60 <= tips_per_day <= 250  # "thousands of tips a month" for a province
    assert counts["feedback"] > 0.6 * counts["tip"]
    assert counts["model_change"] >= len(communes_of_province(CA_MAU))
    assert counts["alert_action"] > 0
    signals = Counter(event["signal"] for event in two_days.events if event["type"] == "device_signal")
    assert signals.most_common(1)[0][0] == "heartbeat"
    assert {"panic_pressed", "gate_opened", "gate_closed", "motion"} <= set(signals)


def test_reporters_per_real_incident_and_channels(two_days: Simulation) -> None:
    truth = {row["event_id"]: row for row in two_days.truth}
    reports: dict[str, list[dict]] = defaultdict(list)
    for event in two_days.events:
        if event["type"] == "tip" and truth[event["event_id"]]["real"]:
            reports[truth[event["event_id"]]["incident"]].append(event)
    sizes = [len(tips) for tips in reports.values()]
    assert len(sizes) >= 30
    assert 1.8 <= statistics.mean(sizes) <= 3.5
    assert max(sizes) >= 5 and min(sizes) == 1
    multi_channel = [tips for tips in reports.values() if len({t["channel"] for t in tips}) >= 2]
    assert len(multi_channel) >= 10
    assert all(len({t["commune_code"] for t in tips}) == 1 for tips in reports.values())


def test_valuable_ratio_is_about_half(two_days: Simulation) -> None:
    verdicts = Counter(event["verdict"] for event in two_days.events if event["type"] == "feedback")
    ratio = verdicts["valuable"] / sum(verdicts.values())
    assert 0.42 <= ratio <= 0.65  # press reports: 350 of 648 tips proved valuable
    assert verdicts["false_report"] > 0 and verdicts["duplicate"] > 0


def test_noise_kinds_and_chain_rumours(two_days: Simulation) -> None:
    truth = {row["event_id"]: row for row in two_days.truth}
    kinds = Counter(truth[e["event_id"]]["kind"] for e in two_days.events if e["type"] == "tip")
    assert {"incident", "vague", "false_report", "chain"} <= set(kinds)
    chains: dict[str, set[int]] = defaultdict(set)
    for event in two_days.events:
        row = truth.get(event["event_id"])
        if row and row["kind"] == "chain":
            chains[row["incident"].rsplit("-", 1)[0]].add(event["commune_code"])
    assert any(len(communes) >= 3 for communes in chains.values())
    texts = [e["text"] for e in two_days.events if e["type"] == "tip"]
    assert any(text == strip_diacritics(text) and "a" in text for text in texts)  # no diacritics at all
    assert any(" ko " in f" {t} " or " k " in f" {t} " or " đc " in f" {t} " or " CA " in f" {t} " for t in texts)


def test_every_tip_and_device_signal_has_ground_truth(two_days: Simulation) -> None:
    truth = {row["event_id"] for row in two_days.truth}
    needed = {e["event_id"] for e in two_days.events if e["type"] in ("tip", "device_signal")}
    assert needed <= truth
    real_bells = [row for row in two_days.truth if row["type"] == "device_signal" and row["real"]]
    assert real_bells, "some real incidents must coincide with a panic bell"


def test_noise_helpers() -> None:
    import random

    assert strip_diacritics("Phòng số 3 nhà trọ Đất Đỏ") == "Phong so 3 nha tro Dat Do"
    rng = random.Random(1)
    noisy = [add_noise("Công an xã không được đến, có người đánh nhau", rng, "sloppy") for _ in range(50)]
    assert len(set(noisy)) > 30
    assert any("CA" in text or "ko" in text or "đc" in text or "dc" in text for text in noisy)
    assert all(unicodedata.normalize("NFC", text) == text for text in noisy)  # what a phone sends


def test_simulate_cli_writes_events_and_truth(tmp_path: Path) -> None:
    output = tmp_path / "ca-mau.jsonl"
    result = CliRunner().invoke(app, ["simulate", "--province", "Cà Mau", "--days", "1", "--seed", "2",
                                      "--scale", "0.2", "--output", str(output)])
    assert result.exit_code == 0, result.output
    events = output.read_text(encoding="utf-8").splitlines()
    truth = (tmp_path / "ca-mau.truth.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(events) > 1000 and len(truth) > 1000
    assert f"{len(events)} events (" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--province", "Atlantis", "--output", "x.jsonl"], "unknown province 'Atlantis'"),
        (["--province", "96"], "give exactly one of --output FILE or --publish"),
        (["--province", "96", "--output", "x", "--start", "Sept 1"], "--start 'Sept 1' is not a date"),
    ],
)
def test_simulate_cli_errors(args: list[str], message: str) -> None:
    import subprocess
    import sys

    binhyen = Path(sys.executable).parent / "binhyen"
    result = subprocess.run([binhyen, "simulate", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
