"""`binhyen schemas check`: every kept version of a type must be readable by the newest.

Avro schema resolution is exercised for real: records generated from each older writer
schema are encoded and then decoded with the newest schema as the reader.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import fastavro
from fastavro.utils import generate_many

from schemas.codec import SCHEMA_DIR, SchemaVersion, load_versions

SAMPLES_PER_VERSION = 50


def incompatibilities(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """One line per (older version, newest version) pair the newest cannot read."""
    by_type: dict[str, list[SchemaVersion]] = defaultdict(list)
    for version in load_versions(schema_dir):
        by_type[version.event_type].append(version)
    problems = []
    for event_type, versions in sorted(by_type.items()):
        newest = versions[-1]
        for older in versions[:-1]:
            try:
                for record in generate_many(older.parsed, SAMPLES_PER_VERSION):
                    buf = io.BytesIO()
                    fastavro.schemaless_writer(buf, older.parsed, record)
                    buf.seek(0)
                    fastavro.schemaless_reader(buf, older.parsed, newest.parsed)
            except Exception as exc:
                problems.append(
                    f"{event_type}: v{newest.version} cannot read data written with "
                    f"v{older.version}: {exc}"
                )
    return problems
