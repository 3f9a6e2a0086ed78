"""Who can read what in the real local ClickHouse (the security review's findings 2, 3 and 7):
every forbidden read and function is tried as the analyst and Grafana users and must be
refused; the writer needs its password; the state folder is private."""

from __future__ import annotations

import http.server
import os
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver.errors import ServerException

from sinks.clickhouse import connect, private_database

pytestmark = pytest.mark.integration
READERS = ("analyst", "grafana")


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
