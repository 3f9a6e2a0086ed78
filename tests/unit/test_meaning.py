"""The meaning model: category, urgency and not-a-tip from the text, with its evidence.

The sentences here are the maintainers' own (none is from tests/data/oncall); the last test
reads the independent on-call corpus and holds the issue's targets on it.
"""

from __future__ import annotations

import json
import time

import pytest

from bench.meaning import corpus, quality
from processors.meaning import MAX_EVIDENCE, MeaningModel
from processors.text import fold
from streams.config import DEFAULT_MEANING_CONFIG

MODEL = MeaningModel.load(DEFAULT_MEANING_CONFIG)

# (text, category, urgent) — each is also read without diacritics.
TIPS = [
    ("Hai thằng chạy xe áp sát giật túi xách của chị bán trái cây rồi chạy về hướng cầu", "theft", True),
    ("Có thằng đang leo rào vô nhà ông Bảy, nhà đi vắng hết", "theft", True),
    ("xe máy của tui để trước nhà bị dắt mất hồi khuya, hôm qua mới biết", "theft", False),
    ("thằng chồng say xỉn cầm rựa rượt chém vợ chạy ra đường", "fight", True),
    ("Thanh niên xóm trên hay tụ tập nhậu rồi gây gổ với người đi đường", "fight", False),
    ("Khói bốc lên nghi ngút ở kho phân bón cuối ấp", "fire", True),
    ("Quán ăn để bình gas sát bếp than, không có bình chữa cháy, đề nghị kiểm tra", "fire", False),
    ("Xe tải tông xe máy ở ngã ba, người chạy xe máy nằm bất động, xe tải bỏ chạy", "traffic", True),
    ("Tối nào cũng có nhóm thanh niên đua xe lạng lách trên đường ven sông", "traffic", False),
    ("Bé trai 6 tuổi đi lạc ở hội chợ, mặc áo vàng, ai thấy báo giúp", "missing_person", True),
    ("Bà ngoại em 82 tuổi bị lẫn, đi ra khỏi nhà chưa về", "missing_person", True),
    ("Em gái em 20 tuổi mất liên lạc 3 ngày nay, nhờ mọi người tìm giúp", "missing_person", False),
    ("Thằng nhỏ đi tắm sông với bạn bị nước cuốn, mọi người ra giúp", "other", True),
    ("Có người đứng trên cầu định nhảy xuống sông tự tử", "other", True),
    ("Thấy người giống đối tượng truy nã đang ngồi quán nước bến xe", "other", True),
    ("Nhà bên hát karaoke tới 12h đêm, ồn không ngủ được", "other", False),
    ("Nhà trọ bên cạnh có mùi lạ, tối nào cũng nhạc xập xình, người ra vô toàn thanh niên", "drugs", False),
    ("Sòng bạc xóc đĩa đang hoạt động trong vườn nhà ông Ba", "gambling", False),
    ("Có người gọi điện giả danh công an bắt mẹ em chuyển tiền vào tài khoản lạ", "fraud", False),
    ("Chủ hụi dây 5 triệu ôm tiền bỏ trốn, hụi viên kéo tới nhà đòi", "hui", False),
    ("Em đánh rơi cái ví màu nâu có giấy tờ xe, ai lượm được cho em xin lại", "lost_property", False),
    ("Nhà tui sổng chuồng con heo nái, ai thấy báo giùm", "lost_property", False),
]

# Teencode and dialect, as typed.
SLANG = [
    ("ae oi co trom dg cay cua nha ba nam, ra le", "theft", True),  # đg = đang, lẹ = quickly
    ("hqua nha e bi trom mat con xe dap dien", "theft", False),  # hqua = hôm qua
    ("e bít chỗ bán ke cho tụi nhỏ, mn ko ai dám nói", "drugs", False),
    ("Tìm nỏ chộ thằng cu 5 tuổi nhà em đâu, ai chộ thì báo giúp", "missing_person", True),  # Nghệ Tĩnh
    ("Răng mà tối mô cũng có bọn thanh niên đua xe ngoài đê", "traffic", False),  # Nghệ Tĩnh
    ("Hụi bà Năm bể rồi, hụi viên kéo tới nhà mà bả trốn mất", "hui", False),  # Southern
    ("Bể họ rồi, chủ họ ôm hết tiền của chị em chợ", "hui", False),  # Northern họ = hụi
    ("🔥🔥 chay kho lua ap 4", "fire", True),
]

NOT_TIPS = [
    "Cho em hỏi làm lại căn cước bị mất thì lên công an xã hay lên huyện ạ",
    "cho e hoi lam cccd cho con thi mang nhung gi a",
    "Cảm ơn anh em công an đã tới kịp thời hôm qua",
    "Nhặt được giấy phép lái xe tên Trần Văn Bình, ai biết người này nhắn giúp",
    "ai đánh rơi ví ở cổng chợ thì lên công an xã nhận nha",
    "Bé Bống tìm thấy rồi nha mọi người, cháu đang ở với bà ngoại",
    "Tin tức: Hà Nội bắt đường dây đánh bạc qua mạng https://example.vn/tin/abc",
    "Chia sẻ: tai nạn thảm khốc ở Gia Lai làm 5 người chết",
    "Chào cả nhà, chúc mọi người cuối tuần vui vẻ",
    "Bán đất nền sổ hồng riêng, giá rẻ, inbox em",
    "Trạm y tế báo 14h hôm nay bấm thử chuông báo động, mọi người không phải lo",
    "Góc cảnh giác: thủ đoạn lừa đảo cài app giả mạo, bà con lưu ý",
    "dạ",
    "👍👍",
]


def read(text: str, **kwargs: str | None) -> tuple[str | None, bool, bool]:
    meaning = MODEL.read(text, **kwargs)
    return meaning.category, meaning.urgent, meaning.is_tip


@pytest.mark.parametrize("text, category, urgent", TIPS)
def test_category_and_urgency_with_and_without_diacritics(text: str, category: str, urgent: bool) -> None:
    assert read(text) == (category, urgent, True)
    assert read(fold(text)) == (category, urgent, True)


@pytest.mark.parametrize("text, category, urgent", SLANG)
def test_teencode_and_dialect(text: str, category: str, urgent: bool) -> None:
    assert read(text) == (category, urgent, True)


@pytest.mark.parametrize("text", NOT_TIPS)
def test_traffic_that_is_not_a_tip(text: str) -> None:
    meaning = MODEL.read(text)
    assert (meaning.is_tip, meaning.category, meaning.urgent) == (False, None, False)
    assert MODEL.read(fold(text)).is_tip is False


@pytest.mark.parametrize("now, settled", [
    ("Cháy tủ điện nhà em, lửa lớn", "Cháy tủ điện nhà em tối qua, đã dập xong, chỉ báo để biết"),
    ("Có vụ đánh nhau ở quán nhậu đầu hẻm, có dao", "Có vụ đánh nhau ở quán nhậu đầu hẻm hôm bữa, đã hòa giải xong"),
    ("Vừa bị giật dây chuyền ở chợ", "Tuần trước bị giật dây chuyền ở chợ, giờ mới báo"),
    ("Đụng xe ở cầu, một người bị thương chảy máu", "Đụng xe ở cầu, không ai bị thương, hai bên tự thỏa thuận"),
    ("Bé gái 4 tuổi lạc mẹ ở chợ", "Bé gái 4 tuổi lạc mẹ ở chợ đã tìm thấy rồi"),
])
def test_past_and_settled_cues_cancel_urgency(now: str, settled: str) -> None:
    assert MODEL.read(now).urgent is True
    assert MODEL.read(settled).urgent is False
    assert MODEL.read(fold(settled)).urgent is False


@pytest.mark.parametrize("text", [
    "Đang có tụi nó tụ tập hút chích ngay bây giờ ở chòi giữ vịt",
    "Đá gà ăn tiền đang diễn ra ngoài bãi, cả trăm người, ae ra lẹ",
    "Gấp: có người gọi giả danh ngân hàng đòi mã OTP, mn cảnh giác",
    "Chủ hụi vừa bỏ trốn ngay bây giờ, hụi viên đang kéo tới",
])
def test_drugs_gambling_fraud_and_hui_are_never_urgent(text: str) -> None:
    meaning = MODEL.read(text)
    assert meaning.is_tip and meaning.category in {"drugs", "gambling", "fraud", "hui"}
    assert meaning.urgent is False


def test_a_weapon_makes_an_addict_a_fight() -> None:
    assert read("con nghiện ở ấp 4 đang ngáo đá cầm dao chém lung tung") == ("fight", True, True)


def test_typed_marks_must_fit_the_phrase() -> None:
    """Folded, chạy 'run' and cháy 'burn' are one word; typed with marks they are not."""
    assert MODEL.read("Có mấy người lạ chạy tới chạy lui trong xóm").category == "other"
    assert MODEL.read("Cháy tới nơi rồi").category == "fire"
    assert MODEL.read("Thằng trộm chạy mất rồi").category == "theft"
    assert MODEL.read("Hoà giải xong rồi").urgent is False  # the tone on either vowel


def test_the_senders_category_is_kept_unless_the_text_clearly_says_another_urgent_kind() -> None:
    assert read("Có người bị đâm ở đầu cầu ấp 3, nằm trên đường", hint="other") == ("fight", True, True)
    assert read("Có chuyện ở ấp 3, xuống giúp", hint="theft") == ("theft", False, True)
    assert read("Nghe nói có người bán hàng cấm trong xóm", hint="drugs") == ("drugs", False, True)
    assert read("Bị lừa chuyển khoản 20 triệu", hint="traffic") == ("traffic", False, True)
    # the text still decides urgency and whether it is a tip at all
    assert read("tối qua chập điện cháy cái quạt, đã dập xong", hint="fire") == ("fire", False, True)
    assert read("ấp 3", hint="other") == ("other", False, True)
    assert read("Cảm ơn công an xã đã hỗ trợ gia đình em hôm trước", hint="other") == (None, False, False)
    assert read("Có người chém nhau ở chợ", hint="not-a-category") == ("fight", True, True)


def test_evidence_is_the_phrases_that_decided_most_decisive_first() -> None:
    assert MODEL.read("Có người bị đâm chảy máu nhiều trước cổng chợ").evidence == ("bi dam", "chay mau")
    # not urgent: what cancelled it comes first, then the kind
    assert MODEL.read("Cháy tủ điện tối qua, đã dập xong").evidence == ("da dap", "dap xong", "toi qua", "chay")
    assert MODEL.read("Cho em hỏi thủ tục đăng ký tạm trú").evidence == ("cho em hoi", "thu tuc", "dang ky tam tru")
    assert MODEL.read("ok").evidence == ("ok",)
    assert MODEL.read("👍").evidence == ()  # a short message in which nothing is recognised is chat
    long = MODEL.read("Cháy nhà, lửa lớn, khói đen, có người kẹt trong nhà kêu cứu, gọi 114 chưa, cháy lan qua nhà bên")
    assert len(long.evidence) == MAX_EVIDENCE


def test_the_location_text_is_read_but_no_phrase_spans_the_two() -> None:
    assert read("Báo gấp", location_text="cháy nhà ở hẻm 3") == ("fire", True, True)
    assert MODEL.read("ông Ba bị đánh", location_text="rơi xuống ruộng").category == "fight"


def test_a_4000_character_message_is_read_quickly_with_at_most_five_phrases() -> None:
    text = " ".join(t for t, _, _ in TIPS * 20)[:4000]
    timings = []
    for _ in range(5):  # the fastest of a few: a loaded machine stalls single reads
        began = time.perf_counter()
        meaning = MODEL.read(text)
        timings.append(time.perf_counter() - began)
    assert min(timings) < 0.05  # ~7 ms on the 2-core development machine
    assert meaning.is_tip and len(meaning.evidence) <= MAX_EVIDENCE


def test_reading_time_is_linear_in_the_text() -> None:
    """8x the text takes about 8x the time (quadratic would be 64x); min of repeats against noise."""
    unit = " ".join(t for t, _, _ in TIPS) + " "
    short = (unit * 10)[:500]
    long = (unit * 80)[:4000]

    def cost(text: str) -> float:
        timings = []
        for _ in range(7):
            began = time.perf_counter()
            for _ in range(10):
                MODEL.read(text)
            timings.append(time.perf_counter() - began)
        return min(timings)

    assert cost(long) / cost(short) < 20


def test_the_model_file_is_checked() -> None:
    raw = json.loads(DEFAULT_MEANING_CONFIG.read_text(encoding="utf-8"))
    assert raw["version"] == MODEL.version == "meaning-2" and raw["doc"]
    repeated = DEFAULT_MEANING_CONFIG.read_text(encoding="utf-8").replace(
        '"categories": {', '"categories": {"fire": {"cháy": 1}, ', 1)
    with pytest.raises(ValueError, match="twice"):
        MeaningModel.parse(repeated)
    with pytest.raises(ValueError, match="unknown category"):
        MeaningModel.parse(json.dumps({**raw, "categories": {"arson": {"đốt": 1}}}))
    with pytest.raises(ValueError, match="not a number"):
        MeaningModel.parse(json.dumps({**raw, "urgency": {"đang": "1"}}))
    with pytest.raises(KeyError):
        MeaningModel.parse(json.dumps({k: v for k, v in raw.items() if k != "version"}))


def test_the_corpus_the_lexicon_was_built_on_meets_the_issue_targets() -> None:
    """tests/data/oncall/messages.jsonl, both halves read while building the model: a consistency
    check that a change keeps what it was built to read, not a measure of quality."""
    figures = quality(corpus("dev"), MODEL)
    assert figures["macro_f1"] >= 0.95
    assert figures["not_tip"]["recall"] >= 0.95 and figures["urgent"]["recall"] >= 0.95


@pytest.mark.xfail(strict=True, reason="issue 34's targets are not met on a corpus the model never saw: fresh "
                                       "macro-F1 0.890, not-a-tip recall 0.711 (README, Meaning)")
def test_the_fresh_corpus_meets_the_issue_targets() -> None:
    """tests/data/oncall/messages_fresh.jsonl: written by another session after the model, never
    read to tune it (its README) — the fair figure."""
    figures = quality(corpus("fresh"), MODEL)
    assert figures["macro_f1"] >= 0.90
    assert figures["not_tip"]["recall"] >= 0.90


def test_the_fresh_figures_do_not_fall_below_the_first_measurement() -> None:
    """A change to the model must not make the fresh corpus worse than meaning-1 was measured on
    it, before any change made after it was written: macro-F1 0.884, urgent recall 0.882
    (60 of 68), not-a-tip recall 0.711 (64 of 90)."""
    figures = quality(corpus("fresh"), MODEL)
    assert round(figures["macro_f1"], 3) >= 0.884
    assert round(figures["urgent"]["recall"], 3) >= 0.882
    assert round(figures["not_tip"]["recall"], 3) >= 0.711


def test_the_third_corpus_figures_do_not_fall_below_their_first_measurement() -> None:
    """tests/data/oncall/messages_third.jsonl (339 messages, a third session, never read to tune
    the model) as meaning-2 first read it on 2026-12-08: macro-F1 0.874, urgent recall 0.776
    (59 of 76), not-a-tip recall 0.656 (61 of 93). The floor a change may not go below; its
    targets are issue 34's, as on the fresh corpus."""
    figures = quality(corpus("third"), MODEL)
    assert round(figures["macro_f1"], 3) >= 0.874
    assert round(figures["urgent"]["recall"], 3) >= 0.776
    assert round(figures["not_tip"]["recall"], 3) >= 0.656
