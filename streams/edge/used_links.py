"""Which action links were used: one store shared by every gateway process, kept until they expire.

A link acts once. The nonce it carries must be consumed atomically — two replicas, two
concurrent requests, a gateway restarted in between must not each act on it — so the
store is a SQLite file beside the key store (`.state/used-links.sqlite`, on the volume the
replicas share): an `INSERT` into a primary key either takes the nonce or fails, under
SQLite's own file lock, and the row survives restarts. ClickHouse has no insert-if-absent
(18.16 has no transactions, and a ReplacingMergeTree deduplicates only later), and a
compacted Kafka topic cannot answer "was it there before me"; a file lock alone would need
the same bookkeeping SQLite already does. Rows are deleted once their link has expired: an
expired link is refused by its signature check before the store is asked.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class UsedLinks:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()  # one connection per process, shared by the request threads
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS used (nonce TEXT PRIMARY KEY, expires_s INTEGER NOT NULL)")
        path.chmod(0o600)

    def take(self, nonce: str, expires_s: int, now_s: float) -> bool:
        """True when this call consumed the nonce; False when it was used already (here or elsewhere)."""
        with self.lock:
            self.db.execute("DELETE FROM used WHERE expires_s < ?", (int(now_s),))
            try:
                self.db.execute("INSERT INTO used (nonce, expires_s) VALUES (?, ?)", (nonce, expires_s))
            except sqlite3.IntegrityError:
                return False
            return True

    def give_back(self, nonce: str) -> None:
        """The action could not be published: the link may be pressed again."""
        with self.lock:
            self.db.execute("DELETE FROM used WHERE nonce = ?", (nonce,))

    def close(self) -> None:
        self.db.close()
