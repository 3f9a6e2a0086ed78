"""Avro single-object codec: wire format, fingerprints, schema resolution, decode errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from schemas import CODEC, DecodeError
from schemas.codec import Codec, load_versions
from schemas.compat import incompatibilities

TIP = {
    "event_id": "tip-1", "occurred_at_ms": 1_750_895_100_000, "utc_offset_min": 420,
    "commune_code": 25813, "legacy_commune_code": None, "channel": "zalo", "source_ref": None,
    "reporter_pseudonym": "rp_00", "anonymous": False, "text": "Có đánh nhau ở chợ 🙏",
    "location_text": None, "lat": 10.5, "lon": 106.7, "category": "fight",
    "attachments": [{"kind": "image", "sha256": "a" * 64}],
}


def rabin_fingerprint(data: bytes) -> int:
    """The CRC-64-AVRO algorithm exactly as the Avro specification prints it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_wire_format_is_avro_single_object_with_spec_fingerprint() -> None:
    from fastavro.schema import to_parsing_canonical_form

    data = CODEC.encode("tip", TIP)
    schema = CODEC.latest["tip"]
    expected = rabin_fingerprint(to_parsing_canonical_form(schema.parsed).encode()).to_bytes(8, "little")
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == expected


@pytest.mark.parametrize("event_type", sorted(CODEC.latest))
def test_every_type_round_trips(event_type: str) -> None:
    from fastavro.utils import generate_one

    record = generate_one(CODEC.latest[event_type].parsed)
    decoded_type, decoded = CODEC.decode(CODEC.encode(event_type, record))
    assert decoded_type == event_type
    assert decoded == record


def test_tip_round_trip_keeps_unicode_and_floats() -> None:
    event_type, record = CODEC.decode(CODEC.encode("tip", TIP))
    assert event_type == "tip"
    assert record == TIP


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 10-byte header"),
        (b"\x00\x01" + b"\x00" * 20, "missing the C3 01 marker"),
        (b"\xc3\x01" + b"\xff" * 8 + b"body", "unknown schema fingerprint ffffffffffffffff"),
        (b"{\"type\": \"tip\"}", "missing the C3 01 marker"),
    ],
)
def test_decode_errors_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(data)


def test_truncated_and_padded_bodies_are_rejected() -> None:
    data = CODEC.encode("tip", TIP)
    with pytest.raises(DecodeError, match="corrupt tip body"):
        CODEC.decode(data[:-5])
    with pytest.raises(DecodeError, match="3 trailing bytes after the tip body"):
        CODEC.decode(data + b"xyz")


def _copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    target.mkdir()
    for path in Path(CODEC.latest["tip"].path).parent.glob("*.avsc"):
        shutil.copy(path, target)
    return target


def test_old_version_is_decoded_into_the_newest_shape(tmp_path: Path) -> None:
    directory = _copy_schemas(tmp_path)
    v1 = json.loads((directory / "tip.v1.avsc").read_text())
    v2 = dict(v1, fields=v1["fields"] + [{"name": "language", "type": "string", "default": "vi"}])
    (directory / "tip.v2.avsc").write_text(json.dumps(v2))
    old_codec = Codec([v for v in load_versions(directory) if v.version == 1])
    new_codec = Codec(load_versions(directory))
    written_by_v1 = old_codec.encode("tip", TIP)
    event_type, record = new_codec.decode(written_by_v1)
    assert event_type == "tip"
    assert record["language"] == "vi"
    assert record["text"] == TIP["text"]
    assert incompatibilities(directory) == []


def test_schemas_check_fails_on_a_field_added_without_default(tmp_path: Path) -> None:
    directory = _copy_schemas(tmp_path)
    v1 = json.loads((directory / "device_signal.v1.avsc").read_text())
    v2 = dict(v1, fields=v1["fields"] + [{"name": "firmware", "type": "string"}])
    (directory / "device_signal.v2.avsc").write_text(json.dumps(v2))
    problems = incompatibilities(directory)
    assert len(problems) == 1
    assert problems[0].startswith("device_signal: v2 cannot read data written with v1")


def test_schemas_check_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    runner = CliRunner()
    good = runner.invoke(app, ["schemas", "check"])
    assert good.exit_code == 0
    assert "10 schema versions of 8 event types: compatible" in good.output
    directory = _copy_schemas(tmp_path)
    v1 = json.loads((directory / "feedback.v1.avsc").read_text())
    v2 = dict(v1, fields=[f for f in v1["fields"] if f["name"] != "verdict"] + [{"name": "score", "type": "int"}])
    (directory / "feedback.v2.avsc").write_text(json.dumps(v2))
    bad = runner.invoke(app, ["schemas", "check", "--directory", str(directory)])
    assert bad.exit_code == 1
    assert "feedback: v2 cannot read data written with v1" in bad.output


def test_schema_files_must_follow_the_naming_rule(tmp_path: Path) -> None:
    (tmp_path / "Tip.avsc").write_text(json.dumps({"type": "record", "name": "T", "fields": []}))
    with pytest.raises(ValueError, match="TYPE.vN.avsc"):
        load_versions(tmp_path)
