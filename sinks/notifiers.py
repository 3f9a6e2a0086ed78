"""Alert delivery: a log sink and a webhook sink, both with the sink interface (add/flush).

The webhook posts each alert event as JSON with an HMAC-SHA256 signature header and an
idempotency key (alert id, state, time), so a receiver can drop the repeats that
at-least-once delivery brings. `flush()` sends in order and stops at the first failure,
keeping the rest; the caller retries with backoff, so a failing endpoint delays alerts but
never loses one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("binhyen.alerts")
TIMEOUT_S = 5.0


class DeliveryError(RuntimeError):
    """An endpoint did not take an alert; the alert stays queued."""


def idempotency_key(alert: dict[str, Any]) -> str:
    return f"{alert['alert_id']}:{alert['state']}:{alert['at_ms']}"


class LogNotifier:
    """One structured log line per alert event (no reporter data is ever in an alert)."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []

    def add(self, alert: dict[str, Any]) -> None:
        self.pending.append(alert)

    def flush(self) -> int:
        for alert in self.pending:
            log.warning("ALERT %s %s %s commune=%s rule=%s route=%s delivery=%s: %s", alert["severity"],
                        alert["state"], alert["alert_id"], alert["commune_code"], alert["rule"], alert["route"],
                        alert["delivery"], alert["summary"])
        sent, self.pending = len(self.pending), []
        return sent


class WebhookNotifier:
    """POST each alert to the URL of its route (digest deliveries go to the digest route)."""

    def __init__(self, urls: dict[str, str], secret: bytes, digest_route: str) -> None:
        self.urls = urls
        self.secret = secret
        self.digest_route = digest_route
        self.pending: list[dict[str, Any]] = []

    def add(self, alert: dict[str, Any]) -> None:
        self.pending.append(alert)

    def flush(self) -> int:
        sent = 0
        while self.pending:
            self._post(self.pending[0])
            self.pending.pop(0)
            sent += 1
        return sent

    def _post(self, alert: dict[str, Any]) -> None:
        route = self.digest_route if alert["delivery"] == "digest" else alert["route"]
        url = self.urls.get(route)
        if url is None:
            return  # no endpoint for this route: the log sink has it
        body = json.dumps(alert, ensure_ascii=False, sort_keys=True).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Binhyen-Signature": "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest(),
            "Idempotency-Key": idempotency_key(alert),
        })
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - configured URL
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"{url} answered {response.status}")
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"{url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"{url} unreachable: {getattr(exc, 'reason', exc)}") from None


def parse_routes(spec: str) -> dict[str, str]:
    """'commune-post=http://…,province-duty=http://…' -> {route: url}."""
    routes = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not ROUTE=http(s)://URL")
        routes[name.strip()] = url.strip()
    return routes
