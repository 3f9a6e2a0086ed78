"""What a webhook page carries and where it goes, against a loopback endpoint: the digest route
for digest deliveries, action links only on pages that can still be acted on, the exact signed
body and headers, which failures count as redirects, a bounded wait for a silent endpoint, the
count a flush reports; the log notifier's line; and the route list parsed from the settings."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

import sinks.notifiers
from sinks.notifiers import DeliveryError, LogNotifier, WebhookNotifier, parse_routes, signature

SECRET = b"s" * 32
NOW_S = 1_750_895_160.7
ALERT = {"alert_id": "al-25813-0a1b", "state": "raised", "at_ms": 1_750_895_100_000, "severity": "P1",
         "route": "commune-post", "delivery": "now", "commune_code": 25813, "rule": "panic_bell",
         "summary": "Chuông báo động được bấm — Phường Sài Gòn", "incident_id": "inc-0a1b", "by": None}


class Endpoint:
    """POST /<route> answers `status[route]` (200 by default); records (path, headers, body)."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        self.requests: list[tuple[str, Message, bytes]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests.append((self.path, self.headers, body))
                status = endpoint.status.get(self.path.strip("/"), 200)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, route: str) -> str:
        return f"{self.base}/{route}"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    running = Endpoint()
    yield running
    running.server.shutdown()
    running.server.server_close()


def notifier(endpoint: Endpoint, route: str = "commune-post", **kwargs: Any) -> WebhookNotifier:
    return WebhookNotifier(route, endpoint.url(route), SECRET, clock=lambda: NOW_S, **kwargs)


def test_a_route_posts_to_its_own_endpoint_and_names_itself(endpoint: Endpoint) -> None:
    sink = notifier(endpoint, "province-duty")
    sink.add({**ALERT, "severity": "P2", "route": "province-duty"})
    assert (sink.name, sink.flush()) == ("webhook:province-duty", 1)
    assert [path for path, _, _ in endpoint.requests] == ["/province-duty"]


def test_giving_up_empties_the_queue_and_returns_what_was_pending(endpoint: Endpoint) -> None:
    endpoint.status["commune-post"] = 503
    sink = notifier(endpoint)
    sink.add(ALERT)
    with pytest.raises(DeliveryError):
        sink.flush()
    assert sink.give_up() == [ALERT] and sink.pending == 0 and sink.flush() == 0


def test_flush_reports_how_many_pages_went_out(endpoint: Endpoint) -> None:
    sink = notifier(endpoint)
    for n in range(3):
        sink.add({**ALERT, "at_ms": ALERT["at_ms"] + n})
    assert sink.flush() == 3
    assert sink.pending == 0 and len(endpoint.requests) == 3


def test_the_body_is_the_alert_as_sorted_utf8_json_and_the_headers_name_it(endpoint: Endpoint) -> None:
    sink = notifier(endpoint)
    sink.add(ALERT)
    sink.flush()
    _, headers, body = endpoint.requests[0]
    assert body == json.dumps(ALERT, ensure_ascii=False, sort_keys=True).encode("utf-8")
    assert "Chuông báo động".encode("utf-8") in body  # Vietnamese as UTF-8, not \u escapes
    assert list(json.loads(body)) == sorted(ALERT)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Idempotency-Key"] == "al-25813-0a1b:raised:1750895100000"
    assert headers["X-Binhyen-Timestamp"] == "1750895160"
    assert headers["X-Binhyen-Signature"] == signature(SECRET, "1750895160", body)


def test_action_links_go_on_open_pages_only(endpoint: Endpoint) -> None:
    asked: list[dict[str, Any]] = []

    def actions(alert: dict[str, Any]) -> list[dict[str, str]]:
        asked.append(alert)
        return [{"who": "ca-truc-ban", "ack": "https://x/ack", "resolve": "https://x/resolve"}]

    sink = notifier(endpoint, actions=actions)
    sink.add(ALERT)
    sink.add({**ALERT, "state": "resolved"})
    sink.flush()
    raised, resolved = (json.loads(body) for _, _, body in endpoint.requests)
    assert raised == {**ALERT, "actions": [{"who": "ca-truc-ban", "ack": "https://x/ack",
                                            "resolve": "https://x/resolve"}]}
    assert resolved == {**ALERT, "state": "resolved"}  # nothing left to ack or resolve
    assert asked == [ALERT]


@pytest.mark.parametrize(("status", "says"), [
    (300, "webhook:commune-post answered 300 (a redirect; binhyen does not follow them)"),
    (399, "webhook:commune-post answered 399 (a redirect; binhyen does not follow them)"),
    (400, "webhook:commune-post answered 400"),
    (299, None),  # a 2xx, however odd, is a delivery
])
def test_which_answers_are_called_redirects(endpoint: Endpoint, status: int, says: str | None) -> None:
    endpoint.status["commune-post"] = status
    sink = notifier(endpoint)
    sink.add(ALERT)
    if says is None:
        assert sink.flush() == 1 and sink.pending == 0
        return
    with pytest.raises(DeliveryError) as caught:
        sink.flush()
    assert str(caught.value) == says
    assert sink.alerts == [ALERT]


def test_an_endpoint_that_never_answers_fails_the_flush_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks.notifiers, "TIMEOUT_S", 0.3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the connection is taken by the kernel and never answered
    sink = WebhookNotifier("commune-post", f"http://127.0.0.1:{silent.getsockname()[1]}/hook", SECRET,
                           clock=lambda: NOW_S)
    sink.add(ALERT)
    outcome: list[BaseException | int] = []

    def flush() -> None:
        try:
            outcome.append(sink.flush())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=flush, daemon=True)
    worker.start()
    worker.join(5)
    hung = worker.is_alive()
    silent.close()  # lets a flush stuck without a timeout end
    assert not hung, "the flush waited on a silent endpoint without a timeout"
    assert len(outcome) == 1 and isinstance(outcome[0], DeliveryError)
    assert str(outcome[0]) == "webhook:commune-post unreachable: TimeoutError"
    assert sink.pending == 1


def test_a_short_secret_is_refused_saying_why() -> None:
    with pytest.raises(ValueError) as caught:
        WebhookNotifier("commune-post", "http://127.0.0.1:9/", b"x" * 31)
    assert str(caught.value) == ("the webhook secret must be at least 32 bytes (an empty or short one lets "
                                 "anybody forge pages)")


def test_the_log_notifier_writes_one_line_per_alert_and_empties_its_queue(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogNotifier()
    sink.add(ALERT)
    sink.add({**ALERT, "state": "acked", "severity": "P2", "delivery": "digest", "route": "province-duty"})
    with caplog.at_level(logging.WARNING, logger="binhyen.alerts"):
        assert sink.flush() == 2
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("binhyen.alerts", logging.WARNING, "ALERT P1 raised al-25813-0a1b commune=25813 rule=panic_bell "
         "route=commune-post delivery=now: Chuông báo động được bấm — Phường Sài Gòn"),
        ("binhyen.alerts", logging.WARNING, "ALERT P2 acked al-25813-0a1b commune=25813 rule=panic_bell "
         "route=province-duty delivery=digest: Chuông báo động được bấm — Phường Sài Gòn"),
    ]
    assert sink.pending == 0 and sink.flush() == 0


def test_routes_are_parsed_from_a_comma_separated_list() -> None:
    assert parse_routes(" commune-post=http://127.0.0.1:9/a?t=x=y , province-duty=https://h.example/b ,") == {
        "commune-post": "http://127.0.0.1:9/a?t=x=y", "province-duty": "https://h.example/b"}
    assert parse_routes("") == {}


@pytest.mark.parametrize("item", ["=http://127.0.0.1:9/a", "commune-post", "commune-post=ftp://h/a",
                                  "commune-post=127.0.0.1:9/a"])
def test_a_route_without_a_name_or_an_http_url_is_refused(item: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_routes(f"province-duty=http://127.0.0.1:9/b,{item}")
    assert str(caught.value) == f"{item!r} is not ROUTE=http(s)://URL"
