"""`binhyen up --cluster` refuses, in one line and before starting anything, what it cannot do:
a state folder whose ClickHouse ran alone, and a machine without ZooKeeper."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import ConfigError, Settings
from streams.ops import stack
from tests.conftest import BINHYEN


def environment(state: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("BINHYEN_")}
    return {**env, "BINHYEN_STATE_DIR": str(state)}


def test_a_state_folder_whose_clickhouse_ran_alone_cannot_become_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "clickhouse" / "data" / "metadata").mkdir(parents=True)
    done = subprocess.run([BINHYEN, "up", "--cluster"], capture_output=True, text=True, timeout=60,
                          env=environment(tmp_path))
    assert done.returncode == 2  # the CLI's code for a configuration it refuses
    assert done.stderr.strip().splitlines() == [
        f"binhyen: {tmp_path} holds a single ClickHouse already: `binhyen down`, then use another BINHYEN_STATE_DIR "
        "(or remove this one) for the cluster"]
    assert not list(tmp_path.glob("*.pid")) and not (tmp_path / "cluster").exists()  # nothing started or recorded


def test_without_zookeeper_the_cluster_says_what_to_install_before_starting_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "ZOOKEEPER_JAR", tmp_path / "absent" / "zookeeper.jar")
    monkeypatch.setenv("BINHYEN_STATE_DIR", str(tmp_path / "state"))
    settings = replace(Settings.from_env(), clickhouse_cluster=stack.LOCAL_CLUSTER)
    lines: list[str] = []
    with pytest.raises(ConfigError, match=r"^the local cluster needs ZooKeeper \(.*absent/zookeeper.jar\): "
                                          r"apt-get install zookeeper \(or `make setup`\)$"):
        stack.bring_up(settings, lines.append)
    assert lines == [] and not (tmp_path / "state").exists()
