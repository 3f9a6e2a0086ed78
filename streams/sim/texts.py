"""Vietnamese material for the province simulator: tip templates per category, places,
and the noise real messages carry (no diacritics, teencode, typos, emoji, word order).

Figures and wording follow the press reports in ../shared/background/ (Zalo tip groups,
landlord clubs, hụi groups, panic bells at banks and gold shops, smart gates).
"""

from __future__ import annotations

import random
import unicodedata

HAMLETS = [
    "khu phố 1", "khu phố 2", "khu phố 3", "khu phố 4", "khu phố 5", "ấp 1", "ấp 2", "ấp 3",
    "ấp Cây Cám", "ấp Nội Ô", "ấp Mỹ Phước", "ấp Tân Lập", "tổ 7", "tổ 12", "xóm Bến Đò", "ấp Long Hòa",
]
STREETS = ["Nguyễn Trãi", "Trần Hưng Đạo", "Lê Lợi", "Hai Bà Trưng", "Quốc lộ 1A", "Tỉnh lộ 8", "Lý Thường Kiệt"]
SHOP_NAMES = ["Kim Phát", "Minh Châu", "Bảo Ngọc", "Hồng Phúc", "Thanh Tâm", "Ngọc Hân", "Phước Lộc"]
PEOPLE = ["bà M.", "ông T.", "anh H.", "chị L.", "bà Tư", "ông Sáu", "anh N.T.T."]
VEHICLES = ["xe máy Wave màu đen", "xe SH trắng", "xe Exciter xanh", "xe tải nhỏ", "xe 7 chỗ màu trắng"]

# Places per category: (place phrase, site kind for a panic bell there or None)
PLACES: dict[str, list[tuple[str, str | None]]] = {
    "drugs": [("phòng số {room} nhà trọ {person}", None), ("quán karaoke {shop}", None),
              ("bãi đất trống gần {street}", None), ("căn nhà cuối hẻm {room} {street}", None)],
    "gambling": [("nhà {person}", None), ("bãi đất trống sau chợ", None), ("vườn dừa nhà {person}", None),
                 ("quán cà phê {shop}", "cafe")],
    "theft": [("tiệm tạp hóa {person}", "shop"), ("tiệm vàng {shop}", "gold_shop"), ("chợ {street}", "market"),
              ("nhà trọ {person}", None), ("phòng giao dịch ngân hàng trên đường {street}", "bank")],
    "fight": [("quán nhậu {shop}", None), ("trước cổng trường THCS {street}", "school"),
              ("ngã tư {street}", None), ("quán cà phê {shop}", "cafe")],
    "fraud": [("nhóm Zalo mua bán {street}", None), ("điểm bán sim trên {street}", "shop"), ("trang Facebook bán hàng", None)],
    "hui": [("dãy trọ số {room}", None), ("tổ hụi của {person}", None), ("nhà chủ hụi {person}", None)],
    "fire": [("kho hàng trên đường {street}", None), ("nhà dân gần {street}", "residential"), ("chợ {street}", "market")],
    "traffic": [("ngã ba {street}", None), ("cầu {shop}", None), ("đoạn {street} gần chợ", None)],
    "missing_person": [("gần {street}", None), ("trường tiểu học {street}", "school")],
    "lost_property": [("chợ {street}", "market"), ("trạm xe buýt {street}", None)],
}

TEMPLATES: dict[str, list[str]] = {
    "drugs": [
        "{place} {hamlet} có {n} thanh niên tụ tập sử dụng ma túy, mở nhạc rất to từ {when}",
        "Báo công an: {place}, {hamlet} đang có nhóm {n} người chơi ma túy bay lắc",
        "{hamlet} {place} nghi có mua bán ma túy, người lạ ra vào liên tục {when}",
        "Có {n} đối tượng đang dùng ma túy ở {place} {hamlet}, nhờ CA xã kiểm tra giúp",
    ],
    "gambling": [
        "Có sòng bạc đá gà ở {place} {hamlet}, khoảng {n} người, xe đậu đầy ngoài đường",
        "{place} {hamlet} đang tổ chức đánh bài ăn tiền {when}, có khoảng {n} người",
        "Báo tin: {n} người tụ tập đá gà ăn tiền tại {place}, {hamlet}",
    ],
    "theft": [
        "Vừa có trộm {vehicle} ở {place} {hamlet}, đối tượng chạy về hướng {street}",
        "{place} {hamlet} bị trộm đột nhập lấy tài sản {when}, đối tượng đi {vehicle}",
        "Có {n} thanh niên đi {vehicle} giật đồ ở {place} {hamlet} rồi chạy về phía {street}",
        "Mất trộm ở {place}, {hamlet}: đối tượng bẻ khóa cửa lấy tiền và điện thoại {when}",
    ],
    "fight": [
        "Đang có đánh nhau ở {place} {hamlet}, khoảng {n} người, có cầm hung khí",
        "{place} {hamlet} có nhóm {n} thanh niên cầm dao đánh nhau, đề nghị công an đến gấp",
        "Gây rối trật tự tại {place}, {hamlet}: {n} đối tượng say xỉn đánh nhau {when}",
    ],
    "fraud": [
        "Có người giả danh công an gọi điện lừa chuyển tiền, đã lừa {n} người ở {hamlet}",
        "{place} {hamlet} có đối tượng lừa đảo bán hàng online, {n} người bị mất tiền",
        "Cảnh báo lừa đảo qua {place}: đối tượng nhắn tin trúng thưởng, {n} hộ ở {hamlet} đã chuyển tiền",
    ],
    "hui": [
        "Chủ hụi {place} đã ôm tiền bỏ trốn, hơn {n} hụi viên ở {hamlet} chưa được trả tiền",
        "{place} {hamlet}: chủ hụi bể hụi, {n} người góp hụi mất tiền, đề nghị CA xử lý",
        "Hụi viên {hamlet} báo chủ hụi {place} không trả tiền hụi, khoảng {n} người bị ảnh hưởng",
    ],
    "fire": [
        "Cháy lớn tại {place} {hamlet}, khói bốc cao, cần chữa cháy gấp",
        "Đang cháy {place}, {hamlet}, có {n} hộ dân xung quanh đang di dời",
    ],
    "traffic": [
        "Tai nạn giao thông ở {place} {hamlet}, {n} người bị thương, xe {vehicle} bỏ chạy",
        "Va chạm giữa {vehicle} và xe tải tại {place}, {hamlet}, ùn tắc kéo dài",
    ],
    "missing_person": [
        "Cháu bé {n} tuổi ở {hamlet} đi lạc từ {when}, mặc áo trắng, ai thấy báo giúp",
        "Tìm người: ông cụ {n} tuổi ở {place} đi khỏi nhà {when} chưa về",
    ],
    "lost_property": [
        "Nhặt được ví có giấy tờ tại {place} {hamlet}, ai mất liên hệ công an xã",
        "Mất điện thoại ở {place} {hamlet} {when}, ai nhặt được xin gửi lại",
    ],
}
WHEN = ["từ đêm qua", "lúc 2 giờ sáng", "tối nay", "chiều nay", "khoảng 10 phút trước", "sáng sớm nay", "từ tối qua"]

VAGUE = [
    "Khu này dạo này mất trộm nhiều quá, công an để ý giúp",
    "Nghe nói có người lạ hay lảng vảng gần đây",
    "Tối nào cũng ồn ào, không biết có chuyện gì",
    "Hình như có ai đó đánh bạc ở đâu đây",
    "Có chuyện gì đó ở đầu hẻm, mọi người cẩn thận",
]
PRANKS = [
    "Có cướp ngân hàng!!! chạy đi mọi người",
    "alo alo có ma ở nghĩa địa {hamlet} haha",
    "Báo công an: nhà hàng xóm nuôi chó sủa to quá",
    "test test tin nhắn thử",
]
CHAIN_RUMOURS = [
    "Cảnh báo: có nhóm bắt cóc trẻ em đi xe 7 chỗ màu trắng đang hoạt động ở các xã, chia sẻ ngay cho mọi người",
    "Khẩn: có người giả nhân viên điện lực vào nhà cắt điện để trộm cắp, mọi người chia sẻ giúp",
    "Thông báo: đêm nay có nhóm cướp đi xe máy không biển số, các hộ đóng cửa sớm, share gấp",
]
SPAM = [
    "Vay tiền nhanh lãi suất thấp liên hệ ngay",
    "Nhận làm CTV online thu nhập 500k/ngày",
    "Bán sim số đẹp giá rẻ inbox",
]

# Teencode and abbreviations seen in Zalo groups: (pattern, replacement)
ABBREVIATIONS = [
    ("không", "ko"), ("không", "k"), ("được", "đc"), ("khu phố", "kp"), ("công an", "CA"),
    ("Công an", "CA"), ("thanh niên", "tn"), ("người", "ng"), ("mọi người", "mn"), ("đối tượng", "đt"),
    ("xe máy", "xm"), ("với", "vs"), ("nhà trọ", "nt"), ("biết", "bít"),
]
EMOJI = ["🙏", "😡", "⚠️", "‼️", "😱", "🚨", "👮", "!!!", "..."]


def strip_diacritics(text: str) -> str:
    """'Phòng số 3 nhà trọ' -> 'Phong so 3 nha tro' (how many people type on old phones)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def add_noise(text: str, rng: random.Random, style: str) -> str:
    """Make a clean sentence look like a real message; `style` is the reporter's habit."""
    if style in ("teen", "sloppy"):
        for pattern, replacement in rng.sample(ABBREVIATIONS, k=min(6, len(ABBREVIATIONS))):
            if pattern in text and rng.random() < 0.7:
                text = text.replace(pattern, replacement)
    if rng.random() < 0.25:  # reorder clauses
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if len(parts) > 1:
            rng.shuffle(parts)
            text = ", ".join(parts)
    if style == "sloppy" or rng.random() < 0.2:
        text = _typos(text, rng, count=rng.randint(1, 3))
    if style in ("no_diacritics", "sloppy") or rng.random() < 0.1:
        text = strip_diacritics(text)
    if rng.random() < 0.35:
        text = text.lower()
    if rng.random() < 0.3:
        text = f"{text} {rng.choice(EMOJI)}"
    if rng.random() < 0.1:  # some phones and keyboards send decomposed Unicode
        text = unicodedata.normalize("NFD", text)
    return text


def _typos(text: str, rng: random.Random, count: int) -> str:
    chars = list(text)
    for _ in range(count):
        if len(chars) < 4:
            break
        i = rng.randrange(1, len(chars) - 1)
        if not chars[i].isalpha():
            continue
        if rng.random() < 0.5:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            del chars[i]
    return "".join(chars)
