"""A small client of the gateway's `POST /v1/events` (the demo publishes through it), stdlib only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from streams.config import ConfigError

NDJSON = "application/x-ndjson"


class GatewayClient:
    """`publish(event)` and `flush()` as the publisher has them (events go in batches of `batch`)."""

    def __init__(self, url: str, token: str, timeout: float = 60.0, max_waits: int = 20, batch: int = 500) -> None:
        self.url, self.token, self.timeout, self.max_waits = url.rstrip("/"), token, timeout, max_waits
        self.batch = batch
        self.buffer: list[str] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.buffer.append(json.dumps(event, ensure_ascii=False))
        if len(self.buffer) >= self.batch:
            self.flush()

    def flush(self) -> list[tuple[int, str]]:
        """Post what is buffered; ConfigError if the gateway did not publish all of it."""
        if self.buffer:
            lines, self.buffer = self.buffer, []
            self.publish_batch(lines)
        return []

    def post(self, lines: list[str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one batch of NDJSON lines; waits out 429s as told."""
        body = "".join(line.rstrip("\n") + "\n" for line in lines).encode("utf-8")
        for _ in range(self.max_waits):
            request = urllib.request.Request(f"{self.url}/v1/events", data=body, method="POST", headers={
                "Content-Type": NDJSON, "Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - our gateway
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 429:
                    time.sleep(float(exc.headers.get("Retry-After") or 1))
                    continue
                return exc.code, json.loads(exc.read() or b"{}")
            except OSError as exc:
                raise ConfigError(f"the gateway at {self.url} is unreachable ({type(exc).__name__}); "
                                  "is it running? `binhyen status`") from None
        raise ConfigError(f"the gateway kept answering 429 (rate limit) {self.max_waits} times; try later")

    def publish_batch(self, lines: list[str]) -> dict[str, Any]:
        """Post a batch that must be published whole; ConfigError naming the first line that was not."""
        status, answer = self.post(lines)
        if status != 200 or answer.get("rejected") or answer.get("failed"):
            first = next((line for line in answer.get("lines", []) if line["status"] != "published"), None)
            reason = first["reason"] if first else answer.get("error", f"HTTP {status}")
            raise ConfigError(f"the gateway did not publish the batch: {reason}")
        return answer
