"""Contacts typed inside free text never leave the edge: the corpus (tests/data/contacts_in_text.jsonl)
says what must be replaced and what must stay as written; the review's evasions and the evidence
it saw destroyed are replayed; tokens carry a check the worker verifies; identifiers hold no contact."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.alerts import alert_id_for
from processors.incidents import incident_id_for
from processors.pseudonym import Pseudonymiser, check_key_of, EdgeCheck
from processors.redaction import TOKEN_FORMAT, Redactor, contains_contact, find, identifier_holds_contact
from processors.validation import InvalidEvent, check_rules, parse_contract
from streams.sim.simulator import SimConfig, simulate
from tests.conftest import REPO

KEY = Pseudonymiser(b"k" * 32)
CHECK = KEY.check()
CORPUS = [json.loads(line) for line in (REPO / "tests/data/contacts_in_text.jsonl").read_text(encoding="utf-8").splitlines()]
redact = Redactor(KEY.text_token, CHECK).redact


@pytest.mark.parametrize("case", CORPUS, ids=[c["text"][:30] for c in CORPUS])
def test_the_corpus_replaces_contacts_and_keeps_evidence(case: dict[str, Any]) -> None:
    redacted = redact(case["text"])
    for contact in case["replaced"]:
        assert contact not in redacted
    for evidence in case["kept"]:
        assert evidence in redacted
    if case["replaced"]:
        assert TOKEN_FORMAT.search(redacted)
        assert all(CHECK.token_ok(token.group(0)) for token in TOKEN_FORMAT.finditer(redacted))
    else:
        assert redacted == case["text"]
    assert not contains_contact(redacted) and not contains_contact(redacted, CHECK)
    assert contains_contact(case["text"]) == bool(case["replaced"])


def test_one_number_however_written_gets_one_token_and_another_number_another() -> None:
    tokens: dict[str, set[str]] = {}
    for case in CORPUS:
        if "number" in case:
            tokens.setdefault(case["number"], set()).update(m.group(0) for m in TOKEN_FORMAT.finditer(redact(case["text"])))
    assert all(len(found) == 1 for found in tokens.values()), tokens
    assert len({next(iter(found)) for found in tokens.values()}) == len(tokens)  # different numbers differ
    other_key = Redactor(Pseudonymiser(b"x" * 32).text_token).redact
    assert other_key("0912345678") != redact("0912345678")  # keyed: nobody can test a guess without the key
    assert redact("0912345678") == redact("+84 912 345 678") == redact("0 9 1 2 3 4 5 6 7 8") == redact("zalo.me/0912345678")


# The review's probes: each way of writing a contact it saw leak, with the contact's value.
EVASIONS = [
    ("gọi em 0 9 1 2 3 4 5 6 7 8 nhé", "SĐT", "0912345678"),
    ("số em 0\u200b9\u200c1\u200d2\u20603\ufeff45678", "SĐT", "0912345678"),
    ("sđt 0912\u00a0345\u202f678", "SĐT", "0912345678"),
    ("liên hệ ０９１２３４５６７８", "SĐT", "0912345678"),
    ("zalo 𝟎𝟗𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "SĐT", "0912345678"),
    ("số ٠٩١٢٣٤٥٦٧٨ nhé", "SĐT", "0912345678"),
    ("📞 0\ufe0f\u20e39\ufe0f\u20e31\ufe0f\u20e32\ufe0f\u20e33\ufe0f\u20e34\ufe0f\u20e35\ufe0f\u20e36\ufe0f\u20e37\ufe0f\u20e38\ufe0f\u20e3",
     "SĐT", "0912345678"),
    ("số 0912/345/678, 0912,345,678 và 0912_345_678", "SĐT", "0912345678"),
    ("gọi 0912-\n345-678 ạ", "SĐT", "0912345678"),
    ("số em o9l2 345 67B", None, None),  # B is no digit: not a number, left alone
    ("số em O9l2 345 678", "SĐT", "0912345678"),
    ("số cũ 0168 234 5719", "SĐT", "0382345719"),  # the 2018 renumbering: 0168 -> 038, one subscriber
    ("số cũ 0123.456.7890", "SĐT", "0834567890"),
    ("căn cước 001 234 567 890", "CCCD", "001234567890"),
    ("mail nguyenvana @ gmail .com", "EMAIL", "nguyenvana@gmail.com"),
    ("mail nguyenvana(at)gmail(dot)com", "EMAIL", "nguyenvana@gmail.com"),
    ("mail nguyenvana [at] gmail [dot] com", "EMAIL", "nguyenvana@gmail.com"),
    ("mail nguyenvana a còng gmail chấm com", "EMAIL", "nguyenvana@gmail.com"),
    ("zalo @nguyenvana", "LINK", "zalo:nguyenvana"),
    ("tiktok @nguyenvana", "LINK", "tiktok:nguyenvana"),
    ("zalo id 4823105967218340156", "LINK", "zalo:4823105967218340156"),
    ("gọi em theo số không chín một hai, ba bốn năm, sáu bảy tám", "SĐT", "0912345678"),
]


@pytest.mark.parametrize(("text", "kind", "value"), EVASIONS, ids=[e[0][:24] for e in EVASIONS])
def test_contacts_written_to_dodge_a_scanner_are_found_and_replaced_as_written(text: str, kind: str | None,
                                                                            value: str | None) -> None:
    found = [(f.kind, f.value) for f in find(text)]
    if kind is None:
        assert found == [] and redact(text) == text
        return
    assert found and set(found) == {(kind, value)}
    redacted = redact(text)
    assert not any(char.isdigit() for char in TOKEN_FORMAT.sub("", redacted)) or kind == "EMAIL"
    assert set(m.group(0) for m in TOKEN_FORMAT.finditer(redacted)) == {KEY.text_token(kind, value)}
    assert not contains_contact(redacted, CHECK)


EVIDENCE = [
    "chuyển khoản 350000000 cho đối tượng", "Camera ghi lúc 07.08.2025 21.30", "mã vận đơn 845120367",
    "mã giao dịch 418273650912", "két sắt số serial 0912345678AB", "mã số thuế 0312345678", "MST: 0901128734",
    "mã đơn hàng 0961527384", "xe biển 59-X1 234.56", "mất 150.000.000 đồng", "Km 12+300 QL1A",
    "tọa độ 9.2851, 105.7244", "gọi 113, tổng đài 1900 1234 hoặc 1800 1567", "STK 0071004567812 Vietcombank",
]


@pytest.mark.parametrize("text", EVIDENCE)
def test_evidence_that_looks_like_a_number_is_kept(text: str) -> None:
    assert redact(text) == text and not contains_contact(text)


PIECES = list("0123456789 .-/,_()+@:oOlI\n") + ["\u200b", "\u00a0", "٣", "０", "số ", "sđt ", "CCCD ", "MST ", "zalo ",
                                               "không ", "chín ", "a còng ", "chấm ", "gmail", "com", "đồng", "x"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_what_the_edge_redacted_the_worker_never_refuses(text: str) -> None:
    redacted = redact(text)
    assert not contains_contact(redacted, CHECK), (text, redacted)
    assert redact(redacted) == redacted


def test_the_publisher_stores_tokens_and_the_worker_refuses_raw_contacts() -> None:
    tip = {"type": "tip", "event_id": "t-1", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 18352,
           "channel": "zalo", "text": "gọi lại số 0912.345.678", "location_text": "gần nhà 024 3825 1234",
           "source_ref": "zalo:0987654321"}
    event_type, record, _ = parse_contract(tip, KEY)
    stored = json.dumps(record, ensure_ascii=False)
    for digits in ("0912", "345.678", "3825", "0987654321"):
        assert digits not in stored
    assert record["text"] == "gọi lại số " + redact("0912345678")
    check_rules(event_type, record, CHECK)
    raw = dict(record, text="gọi lại số 0912.345.678")  # published to Kafka past the edge
    with pytest.raises(InvalidEvent) as caught:
        check_rules(event_type, raw)
    assert str(caught.value) == ("text: holds a phone number, ID number, e-mail address or profile link; publish "
                                 "through `binhyen publish` or the gateway, which replace them with keyed tokens")


def test_tokens_carry_a_check_the_worker_verifies_without_the_pseudonym_key() -> None:
    token = KEY.text_token("SĐT", "0912345678")
    assert TOKEN_FORMAT.fullmatch(token) and len(token) == len("[SĐT:]") + 16
    assert EdgeCheck(check_key_of(b"k" * 32)) == CHECK and CHECK.token_ok(token)
    assert not Pseudonymiser(b"x" * 32).check().token_ok(token)
    forged = "[SĐT:0936214587abcdef]"  # a producer past the edge hides a number in a token's shape
    tampered = token[:-2] + ("0" if token[-2] != "0" else "1") + "]"
    for bad in (forged, tampered, "[LINK:" + token[5:]):
        assert not CHECK.token_ok(bad)
        assert contains_contact(f"gọi {bad}", CHECK)
        assert not contains_contact(f"gọi {bad}")  # without the check a token-shaped string is a token, as before
    assert not contains_contact(f"gọi {token}", CHECK)
    assert contains_contact("[SĐT:0936214587]")  # the old, shorter shape is no token: its digits are a number
    # the edge replaces a forged token in what it is sent, so its output always passes the worker
    redacted = redact(f"gọi {forged} nhé")
    assert forged not in redacted and not contains_contact(redacted, CHECK)


@pytest.mark.parametrize("value", [
    "sms-0912000777-2025", "+84912000777", "hl.0912.000.777", "cccd-001203004567", "by-nguyenvana@gmail.com",
    "tip-０９１２０００７７７", "old-01682345719",
])
def test_an_identifier_holding_a_contact_is_found(value: str) -> None:
    assert identifier_holds_contact(value)


def test_the_ids_binhyen_and_its_simulator_make_hold_no_contact() -> None:
    made = [str(uuid.uuid4()) for _ in range(20_000)] + [uuid.uuid4().hex for _ in range(2_000)]
    made += [incident_id_for(f"e-{n}") for n in range(5_000)]
    made += [alert_id_for(18352, incident_id_for(f"e-{n}")) for n in range(5_000)]
    made += [f"link-{uuid.uuid4().hex[:24]}" for _ in range(5_000)]
    made += ["hl-2025-000123", "t-1", "alarm_bell-31867-001", "ca-xa-phuoc-long-01", "zalo-datdo-ketnoi"]
    simulated = simulate(SimConfig(96, days=1, seed=7, scale=0.3))
    for event in simulated.events:
        made += [event[name] for name in ("event_id", "device_id", "model_id", "tip_event_id", "alert_id", "by",
                                          "replicated_from") if isinstance(event.get(name), str)]
    assert [value for value in made if identifier_holds_contact(value)] == []
