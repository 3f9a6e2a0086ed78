"""`POST /v1/events` under load, on a stack of its own (loopback only, a fixed duration per case).

    .venv/bin/python bench/gateway.py [--seconds 15] [--clients 4]

Starts the local stack on free loopback ports (with its gateway), makes a key, and for each
case — one event per request, then batches of 500 — keeps `--clients` threads posting for
`--seconds`, then reports events/s and the p50/p99 of the request latency. As a baseline in
the same process: the publisher alone (validate, pseudonymise, encode, produce with acks=all,
wait) on the same events, no HTTP. The stack is stopped at the end (by its pid files).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VN = timezone(timedelta(hours=7))


def event(n: int) -> dict:
    from processors.geography import communes_of_province

    communes = communes_of_province(96)
    return {"type": "device_signal", "event_id": f"bench-{uuid.uuid4().hex}",
            "commune_code": communes[n % len(communes)].code,
            "occurred_at": datetime.now(VN).replace(microsecond=0).isoformat(), "device_id": f"bell-{n % 500}",
            "device_kind": "alarm_bell", "signal": "heartbeat", "site_kind": "bank"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_case(url: str, token: str, batch: int, seconds: float, clients: int) -> tuple[float, list[float]]:
    import httpx

    latencies: list[float] = []
    sent = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}",
                                                              "Content-Type": "application/x-ndjson"}) as http:
            n = 0
            while time.monotonic() < deadline:
                body = "".join(json.dumps(event(n + i)) + "\n" for i in range(batch)).encode()
                began = time.monotonic()
                answer = http.post("/v1/events", content=body)
                took = time.monotonic() - began
                if answer.status_code == 429:
                    time.sleep(float(answer.headers["Retry-After"]))
                    continue
                assert answer.status_code == 200 and answer.json()["published"] == batch, answer.text[:300]
                with lock:
                    latencies.append(took)
                    sent[0] += batch
                n += batch

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0] / (time.monotonic() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    from bench.own_stack import use_own_stack

    use_own_stack("binhyen-gateway-bench-", BINHYEN_GATEWAY_RATE="100000", BINHYEN_GATEWAY_BURST="100000")
    from streams.config import Settings
    from streams.edge.api_keys import KeyStore
    from streams.edge.kafka import producer
    from streams.edge.publisher import Publisher
    from streams.ops import stack

    settings = Settings.from_env()
    started = stack.bring_up(settings, lambda line: None)
    try:
        token = KeyStore(settings.gateway_keys_file).create("bench", ["*"], [], staff=["*"])
        publisher = Publisher(producer(settings), settings.pseudonym_key(), settings.time_bounds)
        lines = [(i + 1, event(i)) for i in range(5_000)]
        began = time.monotonic()
        for start in range(0, len(lines), 500):
            outcomes = publisher.publish_and_confirm(lines[start:start + 500], lambda *_: None)
            assert all(o.status == "published" for o in outcomes)
        baseline = len(lines) / (time.monotonic() - began)
        print(f"baseline: the publisher alone, batches of 500 acknowledged: {baseline:,.0f} events/s")
        for batch in (1, 500):
            rate, latencies = run_case(settings.gateway_url, token, batch, args.seconds, args.clients)
            print(f"POST /v1/events, {batch} event(s) a request, {args.clients} clients, {args.seconds:g} s: "
                  f"{rate:,.0f} events/s ({rate / baseline:.2f} of the baseline), {len(latencies):,} requests, "
                  f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    finally:
        for part in reversed(started):
            stack.stop(part)


if __name__ == "__main__":
    main()
