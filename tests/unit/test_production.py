"""The production reference (infra/production) cannot run here; these checks keep it consistent
with the code and the local stack the suite runs."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from streams.config import INFRA_DIR, REPO_ROOT
from tests.unit.test_prometheus_rules import PROMTOOL

PRODUCTION = INFRA_DIR / "production"
COMPOSE = yaml.safe_load((PRODUCTION / "compose.yaml").read_text(encoding="utf-8"))


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "streams").glob("*.py"):
        names |= set(re.findall(r'"(BINHYEN_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_every_worker_setting_in_compose_is_one_the_code_reads() -> None:
    worker_env = COMPOSE["services"]["worker"]["environment"]
    assert set(worker_env) <= settings_read_by_the_code()
    assert worker_env["BINHYEN_PRODUCER_MAX_BATCH_BYTES"] != "1"  # the local broker's workaround only
    assert worker_env["BINHYEN_METRICS_HOST"] == "0.0.0.0"


def test_one_worker_until_rebalances_are_proven_safe() -> None:
    assert COMPOSE["services"]["worker"]["deploy"]["replicas"] == 1


def test_kafka_never_auto_creates_topics() -> None:
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_mounted_rules_dashboards_and_provisioning_are_the_tested_ones() -> None:
    mounts = [volume.split(":")[0] for service in COMPOSE["services"].values() for volume in service.get("volumes", [])
              if volume.startswith(".")]
    for source in mounts:
        assert (PRODUCTION / source).exists(), source
    assert "../prometheus/rules" in mounts and "../grafana/dashboards" in mounts and "../grafana/provisioning" in mounts


def test_production_prometheus_scrapes_the_workers_metrics_port() -> None:
    checked = subprocess.run([PROMTOOL, "check", "config", "prometheus/prometheus.yml"], cwd=PRODUCTION,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((PRODUCTION / "prometheus" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["job_name"] == "binhyen-worker"  # the job the on-call rules select
    assert str(job["dns_sd_configs"][0]["port"]) == COMPOSE["services"]["worker"]["environment"]["BINHYEN_METRICS_PORT"]


def test_the_image_holds_every_package() -> None:
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    dockerfile = (PRODUCTION / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile


def test_clickhouse_roles_match_the_local_ones() -> None:
    users = (PRODUCTION / "clickhouse" / "users.xml").read_text()
    local = (INFRA_DIR / "clickhouse" / "config.xml.template").read_text()
    for role, readonly in (("analyst", 1), ("grafana", 2)):
        assert re.search(rf"<{role}><readonly>{readonly}</readonly>", users), role
        assert f"<readonly>{readonly}</readonly>" in local
