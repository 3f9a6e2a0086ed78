"""Avro single-object encoding (``C3 01`` + CRC-64-AVRO fingerprint + body).

A consumer finds the writer schema by fingerprint among every version kept in this folder,
so no registry server is needed; the body is then resolved to the newest version of that
event type, which is the shape the rest of the code works with.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).parent
MAGIC = b"\xc3\x01"
HEADER_LEN = 10
_FILE_NAME = re.compile(r"^(?P<type>[a-z_]+)\.v(?P<version>\d+)\.avsc$")

INPUT_TYPES = ("tip", "device_signal", "model_change", "feedback", "alert_action")
OUTPUT_TYPES = ("incident", "alert", "dead_letter")
EVENT_TYPES = INPUT_TYPES + OUTPUT_TYPES


class DecodeError(ValueError):
    """The bytes are not an event this codec knows; the message says why."""


@dataclass(frozen=True)
class SchemaVersion:
    event_type: str
    version: int
    path: Path
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian, as on the wire


def fingerprint_of(parsed: Any) -> bytes:
    """CRC-64-AVRO of the parsing canonical form, in wire (little-endian) order.

    fastavro's hex string already lists the bytes little-endian first.
    """
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def load_versions(schema_dir: Path = SCHEMA_DIR) -> list[SchemaVersion]:
    """Every ``TYPE.vN.avsc`` in ``schema_dir``, oldest first within a type."""
    versions = []
    for path in sorted(schema_dir.glob("*.avsc")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: schema files must be named TYPE.vN.avsc")
        parsed = fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))
        versions.append(
            SchemaVersion(match["type"], int(match["version"]), path, parsed, fingerprint_of(parsed))
        )
    return sorted(versions, key=lambda v: (v.event_type, v.version))


class Codec:
    """Encodes with the newest version of a type; decodes any kept version by fingerprint."""

    def __init__(self, versions: list[SchemaVersion]) -> None:
        self.by_fingerprint = {v.fingerprint: v for v in versions}
        self.latest: dict[str, SchemaVersion] = {}
        for v in versions:  # sorted oldest first, so the last one wins
            self.latest[v.event_type] = v

    def encode(self, event_type: str, record: dict[str, Any]) -> bytes:
        try:
            schema = self.latest[event_type]
        except KeyError:
            raise ValueError(f"no schema for event type {event_type!r}") from None
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        fastavro.schemaless_writer(buf, schema.parsed, record)
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(event_type, record)`` or raise :class:`DecodeError` with the reason."""
        if not isinstance(data, (bytes, bytearray)) or len(data) < HEADER_LEN:
            raise DecodeError("not Avro single-object encoded: shorter than the 10-byte header")
        if data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoded: missing the C3 01 marker")
        writer = self.by_fingerprint.get(bytes(data[2:HEADER_LEN]))
        if writer is None:
            raise DecodeError(
                f"unknown schema fingerprint {bytes(data[2:HEADER_LEN]).hex()}: "
                "the producer uses a schema not kept in schemas/"
            )
        reader = self.latest[writer.event_type]
        buf = io.BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = fastavro.schemaless_reader(buf, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"corrupt {writer.event_type} body: {type(exc).__name__}: {exc}") from None
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the {writer.event_type} body")
        return writer.event_type, record


CODEC = Codec(load_versions())
