"""The webhook notifier against a real HTTP endpoint on loopback: signed pages with a time,
no redirects followed, no URL in any error, no start with a weak secret."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sinks.notifiers import DeliveryError, WebhookNotifier, signature
from streams.config import ConfigError, Settings

SECRET = b"s" * 32
ALERT = {"alert_id": "a-1", "state": "raised", "at_ms": 1_750_895_100_000, "severity": "P1", "route": "commune-post",
         "delivery": "now", "commune_code": 25813, "rule": "panic_bell", "summary": "Chuông báo động"}


class Endpoint:
    """Answers POST /hook with `status` (and a Location to /landing); records every request."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                status = endpoint.status if self.path.startswith("/hook") else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/landing")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _record  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=route-secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    running = Endpoint(getattr(request, "param", 200))
    yield running
    running.server.shutdown()


def notifier(url: str) -> WebhookNotifier:
    return WebhookNotifier("commune-post", url, SECRET, clock=lambda: 1_750_895_160.7)


def test_a_page_is_signed_over_its_time_and_body(endpoint: Endpoint) -> None:
    sink = notifier(endpoint.url)
    sink.add(ALERT)
    assert sink.flush() == 1
    method, _, headers, body = endpoint.requests[0]
    assert method == "POST"
    assert headers["X-Binhyen-Timestamp"] == "1750895160"
    expected = hmac.new(SECRET, b"1750895160." + body, hashlib.sha256).hexdigest()
    assert headers["X-Binhyen-Signature"] == "sha256=" + expected == signature(SECRET, "1750895160", body)
    # the same body sent at another time carries another signature: an old page cannot be re-dated
    assert signature(SECRET, "1750895999", body) != headers["X-Binhyen-Signature"]


@pytest.mark.parametrize("endpoint", [301, 302, 303, 307, 308], indirect=True)
def test_a_redirect_is_a_failed_delivery_and_the_alert_stays_queued(endpoint: Endpoint) -> None:
    sink = notifier(endpoint.url)
    sink.add(ALERT)
    with pytest.raises(DeliveryError) as caught:
        sink.flush()
    assert str(caught.value) == (f"webhook:commune-post answered {endpoint.status} "
                                 "(a redirect; binhyen does not follow them)")
    assert sink.alerts == [ALERT] and sink.pending == 1
    assert [(method, path.split("?")[0]) for method, path, _, _ in endpoint.requests] == [("POST", "/hook")]


@pytest.mark.parametrize("endpoint", [503], indirect=True)
def test_errors_name_the_route_never_the_url(endpoint: Endpoint) -> None:
    failing = notifier(endpoint.url)
    failing.add(ALERT)
    with pytest.raises(DeliveryError) as answered:
        failing.flush()
    endpoint.server.shutdown()
    endpoint.server.server_close()
    gone = notifier(endpoint.url)
    gone.add(ALERT)
    with pytest.raises(DeliveryError) as unreachable:
        gone.flush()
    assert str(answered.value) == "webhook:commune-post answered 503"
    assert str(unreachable.value) == "webhook:commune-post unreachable: ConnectionRefusedError"
    for message in (str(answered.value), str(unreachable.value)):
        assert "token" not in message and "127.0.0.1" not in message


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 31])
def test_a_weak_secret_is_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        WebhookNotifier("commune-post", "http://127.0.0.1:9/hook", secret)


@pytest.mark.parametrize(("secret", "says"), [("", "is empty"), ("short", "is shorter than 32 bytes")])
def test_settings_refuse_webhook_routes_without_a_strong_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str, says: str
) -> None:
    monkeypatch.setenv("BINHYEN_WEBHOOK_URLS", "commune-post=http://127.0.0.1:9/hook")
    monkeypatch.setenv("BINHYEN_WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value) == (f"BINHYEN_WEBHOOK_SECRET {says}; webhooks need it to sign pages "
                                 "(e.g. `openssl rand -hex 32`)")
