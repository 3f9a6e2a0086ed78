"""Shared fixtures. Integration tests run against a real tansu broker and a real ClickHouse,
started by `binhyen up` on free loopback ports with their own state folder, and stopped by
`binhyen down` (by PID) at the end of the session."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from streams.ops.stack import WorkerProcess, free_port_block

# Fuzz tests assert behaviour, not speed: no per-example deadline (a loaded CI machine
# otherwise fails them with DeadlineExceeded).
hypothesis_settings.register_profile("binhyen", deadline=None)
hypothesis_settings.load_profile("binhyen")

REPO = Path(__file__).resolve().parent.parent
# A copy of ../shared/contracts (checked against it by tests/unit/test_contract_copy.py).
CONTRACTS = REPO / "tests" / "data" / "contracts"
BINHYEN = str(Path(sys.executable).parent / "binhyen")
# The raw event store as the writer reads it (the suite's stacks use the default database).
EVENTS = "binhyen_private.events"


def offline_run() -> Any:
    """An offline run with the shipped credibility weights and a fixed pseudonym key."""
    from processors.credibility import CredibilityConfig
    from processors.offline import OfflineRun
    from processors.pseudonym import Pseudonymiser
    from processors.alerts import AlertConfig
    from processors.meaning import MeaningModel
    from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG

    return OfflineRun.create(Pseudonymiser(b"k" * 32), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                             AlertConfig.load(DEFAULT_ALERT_CONFIG), MeaningModel.load(DEFAULT_MEANING_CONFIG))


def read_as_tip(event: dict[str, Any]) -> bool:
    """Whether the shipped meaning model reads a tip event's text as a report (else: a question,
    thanks, news — recorded, never an incident, never counted as a tip)."""
    return _shipped_meaning().read(event["text"], event.get("location_text"), event.get("category")).is_tip


@functools.cache
def _shipped_meaning() -> Any:
    from processors.meaning import MeaningModel
    from streams.config import DEFAULT_MEANING_CONFIG

    return MeaningModel.load(DEFAULT_MEANING_CONFIG)


# The event-id derivation the security review broke: uuid5 over every field, contact included.
LEGACY_ID_NAMESPACE = uuid.UUID("6f1c3c1e-8a55-4d0e-9d3b-2f4d7a1b0c11")


def legacy_event_id(obj: dict[str, Any]) -> str:
    return str(uuid.uuid5(LEGACY_ID_NAMESPACE, repr(sorted((k, repr(v)) for k, v in obj.items()))))


def unkeyed_hashes(value: str) -> set[str]:
    """Every unkeyed digest an attacker would try for one guessed value, as stored text."""
    data = value.encode()
    digests = {hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()}
    for namespace in (LEGACY_ID_NAMESPACE, uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID):
        digests.add(str(uuid.uuid5(namespace, value)))
    return digests


def contract_lines(name: str) -> list[str]:
    return (CONTRACTS / name).read_text(encoding="utf-8").splitlines()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """BINHYEN_MODULE_ORDER=reverse|shuffle:SEED runs the test modules in another order (each
    module's tests keep theirs): the check that no module depends on another having run first
    on the shared stack and worker."""
    order = os.environ.get("BINHYEN_MODULE_ORDER", "")
    if not order:
        return
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    names = list(modules)
    if order == "reverse":
        names.reverse()
    elif order.startswith("shuffle:"):
        import random

        random.Random(order.removeprefix("shuffle:")).shuffle(names)
    else:
        raise pytest.UsageError(f"BINHYEN_MODULE_ORDER={order!r}: use reverse or shuffle:SEED")
    items[:] = [item for name in names for item in modules[name]]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy; a liveness bound, not a speed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what} (last: {value!r})")
        time.sleep(every)


def caught_up(settings: Any, group: str, topics: tuple[str, ...]) -> bool:
    """Has `group` committed every record of `topics` (so its sinks and deliveries are done)?"""
    from streams.edge.kafka import GroupProgress

    progress = GroupProgress(settings, group, topics)
    try:
        ends, committed = progress.highwaters(), progress.committed()
        return ends is not None and all(committed.get(tp, 0) >= end for tp, end in ends.items())
    finally:
        progress.close()


def settled(settings: Any, group: str, control_topic: str) -> None:
    """Until `group` has processed the inputs, fired what its timer had due (read from
    `control_topic`), and delivered it: a condition, never a quiet spell."""
    from streams.edge.kafka import GroupProgress
    from streams.ops.reprocess import settle
    from streams.topics import ALERTS, INPUT_TOPICS

    wait_for(lambda: caught_up(settings, group, INPUT_TOPICS), 300, f"{group} to read the inputs")
    control = GroupProgress(settings, group, (control_topic,))
    deadline = time.monotonic() + 120

    def in_time() -> None:
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after 120s waiting for {group}'s timer to settle (ticks keep coming: a "
                                 "commune whose state says it is due and whose tick changes nothing?)")

    try:
        settle(control, check=in_time)
    finally:
        control.close()
    wait_for(lambda: caught_up(settings, group, (ALERTS,)), 120, f"{group} to deliver its alerts")


def run_cli(*args: str, input: str | None = None, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BINHYEN, *args], input=input, capture_output=True, text=True, timeout=timeout, check=check,
        env=os.environ.copy(),
    )


@contextmanager
def stack_environment(state_dir: Path, cluster: bool = False) -> Iterator[dict[str, str]]:
    """BINHYEN_* settings for a stack of its own: free loopback ports, its own state folder
    (with `cluster`, four more for ZooKeeper and the second ClickHouse node).

    Whatever a test starts under it, `binhyen down` stops on the way out.
    """
    base = free_port_block(8)
    env = {**({"BINHYEN_CLUSTER_PORT": str(free_port_block(4))} if cluster else {}),
        "BINHYEN_STATE_DIR": str(state_dir),
        "BINHYEN_KAFKA_PORT": str(base),
        "BINHYEN_CLICKHOUSE_PORT": str(base + 1),
        "BINHYEN_CLICKHOUSE_HTTP_PORT": str(base + 2),  # interserver port is base + 3
        "BINHYEN_PROMETHEUS_PORT": str(base + 4),
        "BINHYEN_METRICS_PORT": str(base + 5),  # the stack's worker; a second one sets its own
        "BINHYEN_GATEWAY_PORT": str(base + 6),
        "BINHYEN_GATEWAY_METRICS_PORT": str(base + 7),
        "BINHYEN_WORKER_BATCH_SIZE": "500",
    }
    unset = ("BINHYEN_KAFKA_BOOTSTRAP", "BINHYEN_PSEUDONYM_KEY")
    saved = {name: os.environ.get(name) for name in (*env, *unset)}
    os.environ.update(env)
    for name in unset:
        os.environ.pop(name, None)
    try:
        yield env
    finally:
        stopped = run_cli("down")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert stopped.returncode == 0, stopped.stderr


class WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 that records alert posts; it answers 503 to the first
    `fail_first` posts, and to the next posts whose body holds a marker given to `fail_pages`."""

    def __init__(self, fail_first: int) -> None:
        import http.server
        import threading

        self.fail_first = fail_first
        self.failing_pages: dict[str, tuple[int, str | None]] = {}  # marker -> (posts still to refuse, route)
        self.requests: list[tuple[dict[str, str], bytes, int]] = []  # headers, body, status answered
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if len(receiver.requests) < receiver.fail_first or receiver._refuses(body) else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_pages(self, marker: str, times: int, route: str | None = None) -> None:
        """Refuse the next `times` posts whose body contains `marker` (and are for `route`, if given):
        other pages pass."""
        self.failing_pages[marker] = (times, route)

    def _refuses(self, body: bytes) -> bool:
        text = body.decode("utf-8")
        for marker, (left, route) in self.failing_pages.items():
            if left and marker in text and (route is None or json.loads(text)["route"] == route):
                self.failing_pages[marker] = (left - 1, route)
                return True
        return False

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, status in self.requests if status == 200]


WEBHOOK_SECRET = "test-webhook-secret-of-32-bytes-at-least"


def webhook_env(receiver: WebhookReceiver) -> dict[str, str]:
    """Every alert route of a worker to `receiver`."""
    return {"BINHYEN_WEBHOOK_SECRET": WEBHOOK_SECRET, "BINHYEN_WEBHOOK_URLS":
            f"commune-post={receiver.url},province-duty={receiver.url},command={receiver.url}"}


@contextmanager
def stack_of_its_own(tmp_path: Path) -> Iterator[tuple[Any, WebhookReceiver]]:
    """A fresh local stack (`binhyen up`) and a webhook receiver, stopped on the way out."""
    from streams.config import Settings

    with stack_environment(tmp_path / "state"):
        assert run_cli("up").returncode == 0
        receiver = WebhookReceiver(fail_first=0)
        try:
            yield Settings.from_env(), receiver
        finally:
            receiver.server.shutdown()


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=0)
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver) -> Iterator[dict[str, str]]:
    """The real local stack for the whole session, started by `binhyen up` (the shipped alert
    rules: a P1 escalates 5 minutes after it was raised unacknowledged)."""
    state = tmp_path_factory.mktemp("state")
    with stack_environment(state) as env:
        extra = {"BINHYEN_WEBHOOK_SECRET": WEBHOOK_SECRET,
                 "BINHYEN_WEBHOOK_URLS": f"commune-post={webhook.url},province-duty={webhook.url},"
                                         f"command={webhook.url}",
                 "BINHYEN_UNDELIVERABLE_AFTER_S": "20"}  # a page refused for 20 s is raised on `command`
        os.environ.update(extra)
        try:
            started = run_cli("up")
            assert started.returncode == 0, started.stdout + started.stderr
            yield {**env, **extra}
        finally:
            for name in extra:
                os.environ.pop(name, None)


@contextmanager
def running_worker(log_path: Path, env: dict[str, str] | None = None) -> Iterator[WorkerProcess]:
    """A worker started for a block (the stack's, or a cluster's), stopped after it if still alive."""
    running = WorkerProcess(log_path, env=env)
    running.start()
    try:
        yield running
    finally:
        if running.alive():
            running.stop()


@pytest.fixture(scope="session")
def worker(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with running_worker(tmp_path_factory.mktemp("worker") / "worker.log") as running:
        yield running


@pytest.fixture(scope="session")
def settings(stack: dict[str, str]) -> Any:
    from streams.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def clickhouse(settings: Any) -> Any:
    from sinks.clickhouse import connect

    return connect(settings, settings.clickhouse_database)


def publish_in_background(settings: Any, events: list[dict[str, Any]], chunk: int, pause: float) -> threading.Thread:
    """Publish `events` through the publisher, `chunk` at a time with a pause between: a stream."""
    from streams.edge.kafka import producer
    from streams.edge.publisher import Publisher

    publisher = Publisher(producer(settings), settings.pseudonym_key())

    def run() -> None:
        for start in range(0, len(events), chunk):
            for event in events[start:start + chunk]:
                publisher.publish(event)
            assert publisher.flush() == []
            time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def alert_steps(clickhouse: Any, alert_id: str) -> list[tuple[str, str, str]]:
    """(state, severity, route) of each step of an alert, in time order."""
    return clickhouse.execute("SELECT state, severity, route FROM alerts FINAL WHERE alert_id = %(a)s ORDER BY at_ms, state",
                              {"a": alert_id})


def alert_id_of(clickhouse: Any, event_id: str) -> str | None:
    """The alert of the incident an event joined (None until ClickHouse has it)."""
    rows = clickhouse.execute(
        "SELECT any(alert_id) FROM alerts WHERE incident_id IN "
        "(SELECT incident_id FROM incident_members WHERE event_id = %(e)s) HAVING count() > 0", {"e": event_id})
    return rows[0][0] if rows else None


def jsonl(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
