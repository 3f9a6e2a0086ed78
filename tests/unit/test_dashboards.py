"""Dashboards as code: the committed JSON is what the code generates, and every panel points at
a provisioned datasource."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml

from streams.config import INFRA_DIR

GRAFANA = INFRA_DIR / "grafana"


def load_dashboards() -> ModuleType:
    spec = importlib.util.spec_from_file_location("binhyen_dashboards", GRAFANA / "dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs resolves a class's module through sys.modules
    spec.loader.exec_module(module)
    return module


def test_committed_json_matches_the_code() -> None:
    module = load_dashboards()
    assert module.main(["--check"]) == 0
    committed = {path.stem for path in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == set(module.rendered())


def test_drift_is_detected(tmp_path: Path) -> None:
    module = load_dashboards()
    module.OUT_DIR = tmp_path
    assert module.main([]) == 0
    changed = tmp_path / "oncall.json"
    changed.write_text(changed.read_text().replace("Unacknowledged P1 alerts", "Something else"))
    assert module.main(["--check"]) == 1


def test_every_panel_uses_a_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "binhyen.yaml").read_text())
    uids = {source["uid"]: source["type"] for source in provisioned["datasources"]}
    for path in (GRAFANA / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        assert board["panels"], path
        for panel in board["panels"]:
            assert uids.get(panel["datasource"]["uid"]) == panel["datasource"]["type"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"], (path.name, panel["title"])
                assert target.get("expr") or target.get("rawSql"), (path.name, panel["title"])
