"""Who can read what in the real local ClickHouse (the security review's findings 2, 3 and 7,
and issue 33's second round): every forbidden read and function is tried as the analyst and
Grafana users and must be refused; nobody but the writer can group officers' verdicts by
reporter; the writer needs its password; the state folder is private."""

from __future__ import annotations

import http.server
import json
import os
import re
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver.errors import ServerException

from sinks.clickhouse import connect, events_table, private_database
from tests.builders import recent, tip, verdict
from tests.conftest import jsonl, run_cli, wait_for

pytestmark = pytest.mark.integration
READERS = ("analyst", "grafana")
# One named reporter's tips and the officers' verdicts on them, in a commune of Tuyên Quang that
# no other test uses (tips "now" move a commune's clock).
COMMUNE, PROVINCE = 700, 8
REPORTER = "+84 915 700 333"
JURISDICTIONS = {"version": "access-pseudonym-test", "users": [
    {"name": "t_acc_xa_ngoc_duong", "jurisdiction": {"commune": COMMUNE}},
    {"name": "t_acc_tinh_tuyen_quang", "jurisdiction": {"province": PROVINCE}}]}
# What an analyst would run to count verdicts per reporter: through the analysts' view, and
# straight from the verdicts table; each joins a tip's id to its reporter.
PER_REPORTER = (
    "SELECT reporter_pseudonym, count() AS verdicts, countIf(verdict = 'false_report') AS false_reports "
    "FROM tip_verdicts ANY INNER JOIN (SELECT event_id, reporter_pseudonym FROM tips FINAL) AS t USING event_id "
    "WHERE verdict != '' GROUP BY reporter_pseudonym",
    "SELECT reporter_pseudonym, count() FROM feedback FINAL ANY INNER JOIN "
    "(SELECT event_id AS tip_event_id, reporter_pseudonym FROM tips FINAL) AS t USING tip_event_id "
    "GROUP BY reporter_pseudonym",
    "SELECT reporter_pseudonym FROM tips",
)


def reader(settings: Any, user: str) -> Any:
    password = settings.analyst_password if user == "analyst" else settings.grafana_password
    return connect(settings, settings.clickhouse_database, user=user, password=password)


def refused(client: Any, sql: str) -> str:
    """The server's reason for refusing `sql` (its message without the stack trace)."""
    with pytest.raises(ServerException) as caught:
        client.execute(sql)
    return str(caught.value).split("Stack trace:")[0]


class CountingEndpoint:
    """A loopback HTTP server that counts the requests it gets (the target of an SSRF attempt)."""

    def __init__(self) -> None:
        self.hits = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                endpoint.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"1\n")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def endpoint() -> Any:
    running = CountingEndpoint()
    yield running
    running.server.shutdown()


@pytest.mark.parametrize("user", READERS)
def test_readers_cannot_read_raw_events_or_anything_private(user: str, settings: Any, stack: Any) -> None:
    client = reader(settings, user)
    private = private_database(settings.clickhouse_database)
    assert f"Access denied to database {private} for user {user}" in refused(
        client, f"SELECT payload FROM {private}.events")
    # nor what each tip's score was made of (its reporter_reputation speaks of its reporter)
    assert f"Access denied to database {private} for user {user}" in refused(
        client, f"SELECT features FROM {private}.tip_scores")
    # the raw event store is not in the analysts' database at all
    assert "Table binhyen.events doesn't exist" in refused(client, "SELECT payload FROM events")
    # nor is there a query log to read other users' queries from
    assert "Table system.query_log doesn't exist" in refused(client, "SELECT query FROM system.query_log")
    # what analysts need is there
    assert client.execute("SELECT count() FROM tips FINAL")[0][0] >= 0
    assert client.execute("SELECT count() FROM communes")[0][0] == 3321


@pytest.mark.parametrize("user", READERS)
def test_readers_cannot_call_table_functions(user: str, settings: Any, stack: Any, endpoint: CountingEndpoint) -> None:
    client = reader(settings, user)
    for sql in (f"SELECT * FROM url('{endpoint.url}', CSV, 'x UInt8')",
                f"SELECT * FROM remote('127.0.0.1:{settings.clickhouse_port}', {private_database('binhyen')}.events)",
                "SELECT * FROM file('config.xml', CSV, 'x String')",
                "SELECT * FROM numbers(3)"):
        assert "Table functions are forbidden in readonly mode" in refused(client, sql), sql
    assert endpoint.hits == 0  # the server never fetched the URL


@pytest.mark.parametrize("user", READERS)
def test_readers_cannot_lift_their_limits(user: str, settings: Any, stack: Any) -> None:
    client = reader(settings, user)
    limit = "60" if user == "analyst" else "30"
    current = "SELECT value FROM system.settings WHERE name = 'max_execution_time'"
    for statement in ("SET max_execution_time = 100000", "SET readonly = 0"):
        assert "Cannot execute SET query in readonly mode" in refused(client, statement)
    # settings sent with a native query are not applied; over HTTP they are refused
    assert client.execute(current, settings={"max_execution_time": 100_000, "readonly": 0}) == [(limit,)]
    password = settings.analyst_password if user == "analyst" else settings.grafana_password
    for name in ("max_execution_time", "readonly"):
        query = urllib.parse.urlencode({"user": user, "password": password, name: "0"})
        request = urllib.request.Request(f"http://127.0.0.1:{settings.clickhouse_http_port}/?{query}",
                                         data=current.encode())
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 - the local server
        assert f"Cannot override setting ({name}) in readonly mode" in caught.value.read().decode()


def test_the_writer_needs_its_password(settings: Any, stack: Any) -> None:
    password_file = settings.writer_password_file
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(password_file.read_text().strip()) == 64
    for password, reason in (("", "Password required for user default"),
                             ("guess", "Wrong password for user default")):
        with pytest.raises(ServerException) as caught:
            connect(settings, settings.clickhouse_database, password=password).execute("SELECT 1")
        assert reason in str(caught.value)
    assert connect(settings, settings.clickhouse_database).execute("SELECT 1") == [(1,)]
    config = (settings.state_dir / "clickhouse" / "config.xml").read_text()
    for secret in (settings.clickhouse_password, settings.analyst_password, settings.grafana_password):
        assert secret not in config  # SHA-256 only


def test_the_state_folder_is_private(settings: Any, stack: Any) -> None:
    state = settings.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    exposed = []
    for folder, names, files in os.walk(state):
        for name in names + files:
            path = Path(folder) / name
            if path.is_symlink():
                continue
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                exposed.append(f"{path.relative_to(state)} {oct(stat.S_IMODE(path.stat().st_mode))}")
    assert exposed == []


@pytest.fixture(scope="module")
def judged(worker: Any, settings: Any, clickhouse: Any) -> dict[str, Any]:
    """Three tips of one named reporter, each with an officer's verdict, in ClickHouse; the writer
    sees they share one pseudonym (what the readers must not be able to group by)."""
    from processors.pseudonym import Pseudonymiser

    tag = uuid.uuid4().hex[:6]
    tips = [f"acc-{tag}-tip-{n}" for n in range(3)]
    verdicts = ("valuable", "false_report", "false_report")
    events = [tip(event_id, recent(10 - n), commune=COMMUNE, channel="hotline", reporter_contact=REPORTER,
                  text=f"Có người lạ lảng vảng quanh trường học, lần {n + 1}") for n, event_id in enumerate(tips)]
    events += [verdict(f"acc-{tag}-verdict-{n}", recent(1), said, tip_event_id=event_id, commune_code=COMMUNE)
               for n, (event_id, said) in enumerate(zip(tips, verdicts))]
    published = run_cli("publish", "-q", "-", input=jsonl(events))
    assert published.returncode == 0, published.stdout + published.stderr
    wait_for(lambda: clickhouse.execute("SELECT count() FROM feedback FINAL WHERE tip_event_id IN %(t)s",
                                        {"t": tuple(tips)})[0][0] == 3, 90, "the three verdicts in ClickHouse")
    wait_for(lambda: clickhouse.execute("SELECT count() FROM tips FINAL WHERE event_id IN %(t)s",
                                        {"t": tuple(tips)})[0][0] == 3, 90, "the three tips in ClickHouse")
    pseudonym = Pseudonymiser(settings.pseudonym_key()).reporter(REPORTER)
    # the writer's private copy links them: one pseudonym, three tips (the control for what follows)
    assert clickhouse.execute(
        f"SELECT visitParamExtractString(payload, 'reporter_pseudonym') AS reporter, count() FROM "
        f"{events_table(settings.clickhouse_database)} FINAL WHERE event_id IN %(t)s GROUP BY reporter",
        {"t": tuple(tips)}) == [(pseudonym, 3)]
    return {"tips": tips, "verdicts": dict(zip(tips, verdicts)), "pseudonym": pseudonym}


def columns_holding(client: Any, value: str) -> list[str]:
    """`table.column` of every string column, in every table and view of the client's database,
    where some row contains `value`."""
    columns: dict[str, list[str]] = {}
    for table, column, kind in client.execute(
            "SELECT table, name, type FROM system.columns WHERE database = currentDatabase()"):
        if "String" in kind and not kind.startswith("Array"):
            columns.setdefault(table, []).append(column)
    found = []
    for table, names in columns.items():
        hits = client.execute(f"SELECT {', '.join(f'countIf(position(toString({c}), %(v)s) > 0)' for c in names)} "
                              f"FROM {table}", {"v": value})[0]
        found += [f"{table}.{column}" for column, hit in zip(names, hits) if hit]
    return found


def assert_no_verdicts_per_reporter(client: Any, judged: dict[str, Any]) -> None:
    """The client reads each of the tips with its verdict, but cannot group them by reporter: no
    column names one, and the reporter's pseudonym is in no row of anything it can read."""
    rows = client.execute("SELECT event_id, verdict FROM tip_verdicts WHERE event_id IN %(t)s",
                          {"t": tuple(judged["tips"])})
    assert dict(rows) == judged["verdicts"]  # what analysts need: each tip's verdict
    for sql in PER_REPORTER:
        reason = refused(client, sql)
        assert re.search(r"(Unknown identifier|Missing columns|There is no column).*reporter_pseudonym", reason), reason
    named = client.execute("SELECT table, name FROM system.columns WHERE database = currentDatabase() AND "
                           "(positionCaseInsensitive(name, 'pseudonym') > 0 OR "
                           "positionCaseInsensitive(name, 'reporter') > 0)")
    assert named == []
    assert columns_holding(client, judged["pseudonym"]) == []
    assert columns_holding(client, judged["tips"][0]) != []  # the scan does find what is there


@pytest.mark.parametrize("user", READERS)
def test_readers_cannot_count_verdicts_per_reporter(user: str, settings: Any, judged: dict[str, Any]) -> None:
    assert_no_verdicts_per_reporter(reader(settings, user), judged)


def test_jurisdictions_cannot_count_verdicts_per_reporter(settings: Any, judged: dict[str, Any],
                                                         tmp_path: Path) -> None:
    config = tmp_path / "access.json"
    config.write_text(json.dumps(JURISDICTIONS))
    applied = run_cli("access", "apply", "--config", str(config))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for user, database in (("t_acc_xa_ngoc_duong", f"{settings.clickhouse_database}_c{COMMUNE}"),
                           ("t_acc_tinh_tuyen_quang", f"{settings.clickhouse_database}_p{PROVINCE}")):
        password = (settings.state_dir / "access" / f"{user}.password").read_text().strip()
        assert_no_verdicts_per_reporter(connect(settings, database, user=user, password=password), judged)
