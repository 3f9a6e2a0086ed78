"""clickhouse_driver's `Client.execute` over a chdb session (ClickHouse 26.x in process, no
server), for tests that run our ClickHouse code against a current release: inserts go as
JSONEachRow, other statements return their rows, chdb's errors come back as ServerException."""

from __future__ import annotations

import json
import re
from typing import Any

from clickhouse_driver.errors import ServerException

INSERT = re.compile(r"INSERT INTO ([\w.]+) \(([\w, ]+)\) VALUES$")


class ChdbClient:
    def __init__(self, db: Any) -> None:
        self.db = db

    def execute(self, query: str, rows: list[tuple[Any, ...]] | None = None, types_check: bool = False) -> Any:
        try:
            if rows is not None:
                table = INSERT.match(query)
                assert table, query
                columns = [name.strip() for name in table.group(2).split(",")]
                lines = "\n".join(json.dumps(dict(zip(columns, row))) for row in rows)
                self.db.query(f"INSERT INTO {table.group(1)} FORMAT JSONEachRow\n{lines}")
                return len(rows)
            result = self.db.query(query, "JSONCompact").bytes()
        except Exception as exc:  # chdb raises its own RuntimeError subclasses
            raise ServerException(str(exc), code=60) from None
        return [tuple(row) for row in json.loads(result)["data"]] if result else []
