"""The on-call alert rules and the Prometheus config, checked by Prometheus's own promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from streams.config import INFRA_DIR

RULES = INFRA_DIR / "prometheus" / "rules"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str, cwd: Path = RULES) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing: `make setup` installs Debian's prometheus package")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_rules_are_valid() -> None:
    checked = promtool("check", "rules", "binhyen.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_rules_fire_when_and_only_when_they_should() -> None:
    tested = promtool("test", "rules", "binhyen.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_rule_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((RULES / "binhyen.rules.yml").read_text())
    tests = yaml.safe_load((RULES / "binhyen.rules.test.yml").read_text())
    named = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert named == tested


def test_local_prometheus_config_is_valid(tmp_path: Path) -> None:
    template = (INFRA_DIR / "prometheus" / "prometheus.yml.template").read_text(encoding="utf-8")
    (tmp_path / "targets").mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(template.format(rules_dir=RULES, targets_dir=tmp_path / "targets"), encoding="utf-8")
    checked = promtool("check", "config", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
