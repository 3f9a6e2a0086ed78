"""`binhyen credibility fit --input`, `report --input` and `process --credibility`: a province
tries a fit on an exported history without a stack, by the same code path as the stack's fit
(the offline run's tip scores and verdicts are what the workers store in `tip_scores`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from processors.credibility import CredibilityConfig
from processors.credibility_fit import fit, quality, rescored
from streams.cli import app
from streams.sim.simulator import VN, SimConfig, simulate
from tests.conftest import offline_run, run_cli

SHIPPED_VERSION = "cred-2"
START = datetime(2025, 3, 1, tzinfo=VN)
DAY_MS = 86_400_000
CUT_MS = int(START.timestamp() * 1000) + 7 * DAY_MS  # 2025-03-08


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten simulated days of Khánh Hòa as an export: tips, verdicts, presses (no heartbeats)."""
    events = [e for e in simulate(SimConfig(56, days=10, seed=4, start=START)).events if e.get("signal") != "heartbeat"]
    path = tmp_path_factory.mktemp("export") / "month.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scored(history: Path):  # type: ignore[no-untyped-def]
    """The offline run the commands make, in process."""
    run = offline_run()
    for _ in run.process(history.read_text(encoding="utf-8").splitlines()):
        pass
    return run


def test_fit_on_an_exported_history_is_the_fit_on_its_judged_tips(history: Path, scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cand.json"
    result = CliRunner().invoke(app, ["credibility", "fit", "--input", str(history), "--since", "2025-03-01",
                                      "--until", "2025-03-08", "--out", str(out)])
    assert result.exit_code == 0, result.output
    samples = scored.judged(until_ms=CUT_MS)
    assert len(samples) >= 200
    expected = fit(samples, _shipped(), "cred-3", about={"since": "2025-03-01", "until": "2025-03-08"})
    written = CredibilityConfig.load(out)
    assert (written.version, written.weights, written.calibration_intercept) == (
        "cred-3", expected.weights, expected.calibration_intercept)
    assert written.fit == expected.fit
    assert (f"fitted cred-3 from {SHIPPED_VERSION} on {len(samples)} verdicts ({sum(r for _, r in samples)} valuable) "
            f"on tips of 2025-03-01 .. 2025-03-07 in {expected.fit['steps']} steps") in result.output
    assert (f"on the latest {expected.fit['held_back']} verdicts, held back from the fit: "
            f"{expected.fit['held_back_log_loss_before']:.4f} -> {expected.fit['held_back_log_loss_after']:.4f}"
            ) in result.output
    assert f"--since 2025-03-08 --until … --input {history}" in result.output
    whole = tmp_path / "whole.json"
    everything = CliRunner().invoke(app, ["credibility", "fit", "-i", str(history), "--out", str(whole)])
    assert everything.exit_code == 0, everything.output
    assert CredibilityConfig.load(whole).fit["verdicts"] == len(scored.judged())  # no period: the whole export
    assert "on tips of 2025-03-01 .. 2025-03-10" in everything.output


def _shipped() -> CredibilityConfig:
    from streams.config import DEFAULT_CREDIBILITY_CONFIG

    return CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)


def test_report_on_an_exported_history_judges_later_days_and_refuses_a_worse_candidate(
        history: Path, scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = _shipped()
    held_out = scored.judged(since_ms=CUT_MS)
    worse = replace(shipped, version="cred-worse",
                    weights={**shipped.weights, "specificity": -shipped.weights["specificity"]}, fit=None)
    same = replace(shipped, version="cred-same", fit=None)
    for config in (worse, same):
        (tmp_path / f"{config.version}.json").write_text(json.dumps(config.__dict__), encoding="utf-8")
    args = ["credibility", "report", "--input", str(history), "--since", "2025-03-08", "--until", "2025-03-11"]
    refused = run_cli(*args[:2], str(tmp_path / "cred-worse.json"), *args[2:])
    ours, theirs = quality(rescored(held_out, shipped)), quality(rescored(held_out, worse))
    assert theirs.log_loss > ours.log_loss
    assert refused.returncode == 2
    assert refused.stderr == (f"binhyen: cred-worse predicts the held-out verdicts worse than {SHIPPED_VERSION} "
                              f"(log-loss {theirs.log_loss:.4f} > {ours.log_loss:.4f}): do not promote it; --force to "
                              "judge it anyway\n")
    assert f"held-out verdicts: {len(held_out)} tips of 2025-03-08 .. 2025-03-10" in refused.stdout
    assert f"{'ROC-AUC':<22}{ours.auc:>12.3f}{theirs.auc:>12.3f}" in refused.stdout
    assert f"{'log-loss':<22}{ours.log_loss:>12.4f}{theirs.log_loss:>12.4f}" in refused.stdout
    forced = CliRunner().invoke(app, [*args[:2], str(tmp_path / "cred-worse.json"), *args[2:], "--force"])
    assert forced.exit_code == 0, forced.output
    equal = CliRunner().invoke(app, [*args[:2], str(tmp_path / "cred-same.json"), *args[2:]])
    assert equal.exit_code == 0, equal.output  # as good is not worse
    channels = {tip.channel for tip_id, tip in scored.scored.items() if tip.at_ms >= CUT_MS and tip_id in scored.verdicts}
    assert "verdicts by channel in the period (valuable / judged): " in equal.output
    assert all(f"{channel} " in equal.output for channel in channels)


def test_process_scores_with_a_candidate_config(history: Path, tmp_path: Path) -> None:
    shipped = _shipped()
    candidate = replace(shipped, version="cred-7", weights={**shipped.weights, "specificity": 3.0}, fit=None)
    (tmp_path / "cred-7.json").write_text(json.dumps(candidate.__dict__), encoding="utf-8")
    outputs = {}
    for name, extra in (("live", []), ("candidate", ["--credibility", str(tmp_path / "cred-7.json")])):
        result = CliRunner().invoke(app, ["process", "-i", str(history), "-o", str(tmp_path / f"{name}.jsonl"), *extra])
        assert result.exit_code == 0, result.output
        outputs[name] = {line["incident_id"]: line for line in map(json.loads, (tmp_path / f"{name}.jsonl").open())
                         if line["kind"] == "incident"}
    assert outputs["live"].keys() == outputs["candidate"].keys()  # the weights change scores, not incidents
    assert {i["scorer_version"] for i in outputs["candidate"].values()} == {"cred-7"}
    assert {i["scorer_version"] for i in outputs["live"].values()} == {SHIPPED_VERSION}
    moved = [i for i in outputs["live"] if outputs["live"][i]["credibility"] != outputs["candidate"][i]["credibility"]]
    assert len(moved) >= len(outputs["live"]) // 4
    missing = run_cli("process", "-i", str(history), "-o", str(tmp_path / "x.jsonl"), "--credibility",
                      str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert missing.stderr == f"binhyen: cannot read the candidate {tmp_path / 'nope.json'}: No such file or directory\n"


def test_fit_refusals_are_one_line(tmp_path: Path) -> None:
    no_verdicts = tmp_path / "tips.jsonl"
    tips = [e for e in simulate(SimConfig(56, days=1, seed=4, start=START)).events if e["type"] == "tip"]
    no_verdicts.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in tips), encoding="utf-8")
    nothing = run_cli("credibility", "fit", "-i", str(no_verdicts), "--out", str(tmp_path / "c.json"))
    assert (nothing.returncode, nothing.stderr) == (
        2, "binhyen: the history has no tip with a verdict: nothing to fit on\n")
    half = run_cli("credibility", "fit", "-i", str(no_verdicts), "--since", "2025-03-01", "--out", str(tmp_path / "c.json"))
    assert (half.returncode, half.stderr) == (2, "binhyen: give both --since and --until (YYYY-MM-DD), or neither\n")
    stackless = run_cli("credibility", "fit", "--out", str(tmp_path / "c.json"))
    assert (stackless.returncode, stackless.stderr) == (
        2, "binhyen: give both --since and --until (YYYY-MM-DD)\n")
    assert not (tmp_path / "c.json").exists()
