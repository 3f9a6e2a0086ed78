"""Announced bell tests (processors/bell_tests.py): what a message can hold back is one press of
the bell it names, inside a window of at most 30 minutes — nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.bell_tests import announced_window, covers

OFFSET = 420  # Vietnam


def ms(local: str) -> int:
    return int(datetime.fromisoformat(f"2025-11-12T{local}+07:00").timestamp() * 1000)


def window(text: str, said: str = "08:50:00") -> dict[str, Any] | None:
    return announced_window(text, ms(said), OFFSET)


def press(local: str, site: str = "Siêu thị Minh Anh") -> dict[str, Any]:
    return {"occurred_at_ms": ms(local), "site_name": site}


ANNOUNCED = "Dạ siêu thị Minh Anh xin phép CA xã bấm thử chuông báo động lúc 9h00 đến 9h15 sáng nay ạ"


def test_a_window_from_and_to_or_around_one_time() -> None:
    test = window(ANNOUNCED)
    assert test is not None and (test["from_ms"], test["to_ms"]) == (ms("09:00:00"), ms("09:15:00"))
    one = window("Trạm y tế xã báo: 14h10 bấm thử chuông để kiểm tra sau khi thay pin", "14:00:00")
    assert one is not None and (one["from_ms"], one["to_ms"]) == (ms("14:05:00"), ms("14:25:00"))
    afternoon = window("bam thu chuong luc 2 gio chieu nay nha", "10:00:00")
    assert afternoon is not None and afternoon["from_ms"] == ms("13:55:00")


def test_no_cue_no_time_a_long_window_or_a_far_one_is_no_test() -> None:
    assert window("Siêu thị Minh Anh mở cửa lúc 9h00 đến 9h15") is None  # no test
    assert window("siêu thị Minh Anh xin bấm thử chuông nha") is None  # no time
    assert window("siêu thị Minh Anh bấm thử chuông từ 9h00 đến 10h00") is None  # an hour: too long
    assert window("siêu thị Minh Anh bấm thử chuông lúc 7h00 đến 7h15", said="09:00:00") is not None  # tomorrow
    assert window("bấm thử chuông lúc 7h00 đến 7h15", said="09:00:00")["from_ms"] == ms("07:00:00") + 86_400_000


def test_only_a_press_of_the_named_site_inside_the_window_is_covered() -> None:
    test = window(ANNOUNCED)
    assert covers(test, press("09:02:00"))
    assert covers(test, press("09:15:00")) and not covers(test, press("09:15:01"))
    assert not covers(test, press("08:59:59"))
    assert not covers(test, press("09:02:00", "Siêu thị Hoàng Long"))  # another shop's bell rings for real
    assert not covers(test, press("09:02:00", "Ngân hàng Agribank"))
    assert not covers(test, press("09:02:00", ""))


def test_the_announced_press_pages_nobody_and_a_second_one_is_a_real_alarm() -> None:
    from processors.alerts import AlertConfig
    from processors.credibility import CredibilityConfig
    from processors.meaning import MeaningModel
    from processors.pipeline import EventProcessor, ProcessorState
    from processors.pseudonym import Pseudonymiser
    from processors.validation import parse_contract
    from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG
    from tests import builders

    processor = EventProcessor(ProcessorState(), CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                               AlertConfig.load(DEFAULT_ALERT_CONFIG), meaning=MeaningModel.load(DEFAULT_MEANING_CONFIG))

    def handle(event: dict[str, Any]) -> list[dict[str, Any]]:
        return processor.handle(*parse_contract(event, Pseudonymiser(b"k" * 32))[:2]).alerts

    def bell(event_id: str, hh: int, mm: int) -> dict[str, Any]:
        return builders.device_signal(event_id, builders.at(hh, mm, day=12, month=11), 18352, "bell-minh-anh",
                                      "panic_pressed", "alarm_bell", site_name="Siêu thị Minh Anh")

    assert handle(builders.tip("t1", builders.at(8, 50, day=12, month=11), ANNOUNCED, 18352)) == []
    assert handle(bell("d1", 9, 2)) == []  # the test: on the board, paged to nobody
    assert [(a["state"], a["severity"], a["rule"]) for a in handle(bell("d2", 9, 4))] == [
        ("raised", "P1", "panic_bell")]  # pressed again: a real alarm, whatever the message said
