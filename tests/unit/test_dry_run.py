"""`binhyen publish --dry-run`: an integrator checks a file against the contract; nothing is sent
(no broker is running here: a producer would fail), and what is printed is what would be sent."""

from __future__ import annotations

import json
import os
import subprocess

from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract, parse_json_line
from streams.edge.publisher import Publisher
from tests.conftest import BINHYEN, CONTRACTS

KEY = "dry-run-test-key-of-32-bytes-xxx"


def dry_run(text: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BINHYEN_PSEUDONYM_KEY": KEY, "BINHYEN_KAFKA_BOOTSTRAP": "127.0.0.1:9"}  # nothing listens
    return subprocess.run([BINHYEN, "publish", "--dry-run", "-"], input=text, capture_output=True, text=True,
                          timeout=60, env=env)


def test_every_line_says_what_would_be_sent_or_why_not() -> None:
    examples = (CONTRACTS / "examples.jsonl").read_text(encoding="utf-8").splitlines()
    invalid = (CONTRACTS / "invalid.jsonl").read_text(encoding="utf-8").splitlines()
    lines = examples + [""] + invalid
    result = dry_run("\n".join(lines) + "\n")
    assert result.returncode == 1  # some lines are rejected
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["line"] for p in printed] == [n for n, line in enumerate(lines, start=1) if line.strip()]
    assert [p["status"] for p in printed] == ["would_publish"] * len(examples) + ["rejected"] * len(invalid)
    assert result.stderr.strip() == (f"would publish {len(examples)}, rejected {len(invalid)} "
                                     "(dry run: nothing was sent)")
    publisher = Publisher(None, KEY.encode())
    for shown, line in zip(printed, examples):
        encoded = publisher.encode(parse_json_line(line))
        assert (shown["topic"], shown["key"]) == (encoded.topic, encoded.key.decode())
        event_type, record, _ = parse_contract(parse_json_line(line), Pseudonymiser(KEY.encode()))
        # the wire record, field names as in schemas/ (optional fields the line left out are null)
        assert {k: v for k, v in shown["event"].items() if v is not None} == {
            k: v for k, v in record.items() if v is not None}
    assert all(p["reason"] for p in printed[len(examples):])


def test_contacts_are_pseudonymised_and_redacted_as_a_publish_would() -> None:
    tip = {"type": "tip", "event_id": "dry-1", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 18352,
           "channel": "hotline", "reporter_contact": "+84 912 000 111", "text": "gọi lại em 0912.345.678 nhé"}
    result = dry_run(json.dumps(tip, ensure_ascii=False) + "\n")
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)["event"]
    assert "912" not in result.stdout and "reporter_contact" not in event
    assert event["reporter_pseudonym"] == Pseudonymiser(KEY.encode()).reporter("0912000111")
    assert event["text"] == "gọi lại em " + Pseudonymiser(KEY.encode()).text_token("SĐT", "0912345678") + " nhé"


def test_without_dry_run_an_absent_broker_is_exit_2_and_one_line() -> None:
    """The exit codes: 0 all published, 1 lines rejected, 2 nothing could be sent."""
    example = (CONTRACTS / "examples.jsonl").read_text(encoding="utf-8").splitlines()[0]
    env = {**os.environ, "BINHYEN_PSEUDONYM_KEY": KEY, "BINHYEN_KAFKA_BOOTSTRAP": "127.0.0.1:9"}  # nothing listens
    result = subprocess.run([BINHYEN, "publish", "-"], input=example + "\n", capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == ("binhyen: Kafka at 127.0.0.1:9 is not reachable (KafkaTimeoutError); start it "
                                     "with `binhyen up` or set BINHYEN_KAFKA_BOOTSTRAP")


def test_hostile_values_are_rejected_lines_and_the_run_goes_on() -> None:
    """The review stopped `publish --dry-run` with a traceback with these two lines."""
    model = {"type": "model_change", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 31867,
             "model_id": "zalo-phuoc-long", "model_kind": "zalo_group", "change": "launched"}
    tip = json.dumps({"type": "tip", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 31867,
                      "channel": "hotline", "text": "có trộm"})
    lines = [json.dumps({**model, "members_delta": 99999999999}), tip[:-1] + ', "lat": ' + "9" * 400 + ', "lon": 105}',
             json.dumps(model)]
    result = dry_run("\n".join(lines) + "\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["status"] for p in printed] == ["rejected", "rejected", "would_publish"]
    assert result.stderr.strip() == "would publish 1, rejected 2 (dry run: nothing was sent)"
