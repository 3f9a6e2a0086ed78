"""The one contract every sink honours, and the one way the worker retries them.

A sink queues items with `add`, writes everything queued with `flush`, and keeps what it
could not write: `flush` raises `SinkError` and leaves `pending` as it was, so the caller's
retry sends exactly the same items again (deterministic batches; the ClickHouse tables and
the webhook receivers drop repeats). Like quixstreams' `BaseSink`: the checkpoint adds a
batch's outputs, then flushes until each sink took them, and only then commits offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

MAX_BACKOFF_S = 10.0


class SinkError(RuntimeError):
    """A sink could not write its pending items; they stay queued. The message names the sink,
    never a secret (a URL with a token, a password)."""


class Sink(Protocol):
    name: str

    def add(self, item: Any) -> None: ...

    def flush(self) -> int:
        """Write every pending item; returns how many. Raises SinkError, keeping them, on failure."""
        ...

    @property
    def pending(self) -> int:
        """Items queued and not yet written."""
        ...


async def flush_until_done(sink: Sink, on_failure: Callable[[Sink, SinkError, float], None],
                           on_success: Callable[[Sink, int, float], None],
                           give_up_after_s: float | None = None) -> SinkError | None:
    """Flush `sink` (in a thread: the drivers block) until it took everything, with capped
    backoff between failures; it never drops an item — a worker stopped meanwhile has not
    committed the batch, which is then read again. With `give_up_after_s`, a failure that long
    after the first try ends the retries: the error is returned, the items stay pending, and the
    caller decides (the delivery of pages gives them up and raises them elsewhere)."""
    loop = asyncio.get_running_loop()
    backoff, first = 0.5, time.monotonic()
    while sink.pending:
        started = time.monotonic()
        try:
            written = await loop.run_in_executor(None, sink.flush)
        except SinkError as exc:
            if give_up_after_s is not None and time.monotonic() - first >= give_up_after_s:
                return exc
            on_failure(sink, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        on_success(sink, written, time.monotonic() - started)
    return None
