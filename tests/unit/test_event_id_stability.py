"""Identifiers that must not change between releases or depend on how a record is written: an
assigned event id (a retried line after an upgrade must still be a duplicate), its independence
from key order, a text with a lone surrogate; contact normalisation at the 8-digit edge and for
chat ids with digits; the shortest pseudonym key accepted."""

from __future__ import annotations

import pytest

from processors.pseudonym import Pseudonymiser, normalise_contact

KEYED = Pseudonymiser(b"k" * 32)


def test_an_assigned_event_id_is_fixed_for_a_record_whatever_its_key_order() -> None:
    record = {"b": 1, "a": "Chợ Bến Thành", "c": [1, 2]}
    assert KEYED.event_id("tip", record) == "a4b5867f-1007-bf7f-3133-7a8c5a46f420"
    assert KEYED.event_id("tip", {"c": [1, 2], "a": "Chợ Bến Thành", "b": 1}) == KEYED.event_id("tip", record)
    assert KEYED.event_id("device_signal", record) != KEYED.event_id("tip", record)


def test_a_text_with_a_lone_surrogate_still_gets_its_fixed_id() -> None:
    assert KEYED.event_id("tip", {"text": "lỗi \ud83d mã hoá"}) == "8c5c37f7-2074-ecd3-9ec4-d7f842b3197a"


@pytest.mark.parametrize(("contact", "normalised"), [
    ("1234 5678", "12345678"),  # eight digits: a number
    ("123 4567", "123 4567"),  # seven: kept as written
    ("Zalo:User12345678", "zalo:user12345678"),  # a chat id with a run of digits is not a number
])
def test_contacts_at_the_edges(contact: str, normalised: str) -> None:
    assert normalise_contact(contact) == normalised


def test_a_key_of_sixteen_bytes_is_the_shortest_accepted() -> None:
    assert Pseudonymiser(b"k" * 16).reporter("0912345678").startswith("rp_")
    with pytest.raises(ValueError, match="^the pseudonym key must be at least 16 bytes$"):
        Pseudonymiser(b"k" * 15)
