"""BINHYEN_* settings for a bench's stack of its own: free loopback ports, a fresh state folder."""

from __future__ import annotations

import os
import tempfile


def use_own_stack(prefix: str, **extra: str) -> str:
    """Point this process (and the commands it runs) at a new stack; returns its state folder."""
    from streams.ops.stack import free_port_block

    base = free_port_block(8)
    state = tempfile.mkdtemp(prefix=prefix)
    os.environ.update(BINHYEN_STATE_DIR=state, BINHYEN_KAFKA_PORT=str(base), BINHYEN_CLICKHOUSE_PORT=str(base + 1),
                      BINHYEN_CLICKHOUSE_HTTP_PORT=str(base + 2), BINHYEN_PROMETHEUS_PORT=str(base + 4),
                      BINHYEN_METRICS_PORT=str(base + 5), BINHYEN_GATEWAY_PORT=str(base + 6),
                      BINHYEN_GATEWAY_METRICS_PORT=str(base + 7), **extra)
    os.environ.pop("BINHYEN_KAFKA_BOOTSTRAP", None)
    return state
