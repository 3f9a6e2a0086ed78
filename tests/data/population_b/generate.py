"""Population B — an independent tip/verdict generator for binhyen.

Written by a helper session that read only the press reports in
``/work/shared/background/`` and the public event contract in
``/work/shared/contracts/``; it never looked at ``processors/``, ``streams/`` or
``bench/``.  Standard library only.  See README.md next to this file.

    events, truth = generate(seed=3, days=60)

``events`` are contract dicts (``tip`` and ``feedback``) in event-time order;
``truth`` maps every tip ``event_id`` to whether the matter behind it was real
and worth police action.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import unicodedata
import uuid
from dataclasses import dataclass, field

__all__ = ["generate", "generate_with_meta", "CHANNELS", "CATEGORIES", "DEFAULT_COMMUNES"]

TZ = dt.timezone(dt.timedelta(hours=7))
CHANNELS = ("zalo", "facebook", "hotline", "sms", "vneid", "web", "in_person")
CATEGORIES = ("drugs", "gambling", "theft", "fight", "fraud", "hui", "fire", "traffic",
              "missing_person", "lost_property", "other")
URGENT = {"fight", "theft", "fire", "missing_person", "traffic"}

# ---------------------------------------------------------------------------
# Geography: former Bạc Liêu, now part of Cà Mau (province 96) after the 2025
# merger.  Codes and names checked against vietnam-provinces 2025.10.1.  The
# hamlet/khóm names, streets and landmarks below are invented but typical of the
# Mekong delta; coordinates are rough centroids (only used for GPS on app tips).
# ---------------------------------------------------------------------------

DEFAULT_COMMUNES: dict[int, dict] = {
    31825: dict(name="Phường Bạc Liêu", short="phường Bạc Liêu", ward=True, weight=1.6,
                lat=9.285, lon=105.724, landlord=True, hui=False,
                areas=["khóm 1", "khóm 2", "khóm 3", "khóm 5", "khóm 7", "khóm 9"],
                roads=["đường Trần Phú", "đường Hai Bà Trưng", "đường Võ Thị Sáu",
                       "đường Cao Văn Lầu", "đường 23 Tháng 8"]),
    31840: dict(name="Phường Hiệp Thành", short="phường Hiệp Thành", ward=True, weight=0.9,
                lat=9.245, lon=105.780, landlord=True, hui=False,
                areas=["khóm Biển Đông", "khóm Biển Tây", "khóm Giồng Giữa", "khóm Cù Lao"],
                roads=["đường Cao Văn Lầu", "lộ đal ven biển", "đường Biển Đông"]),
    31942: dict(name="Phường Giá Rai", short="phường Giá Rai", ward=True, weight=1.1,
                lat=9.237, lon=105.456, landlord=True, hui=True,
                areas=["khóm 1", "khóm 2", "khóm 4", "khóm 6", "khóm 7"],
                roads=["Quốc lộ 1A", "đường Nguyễn Trung Trực", "đường vào cầu Giá Rai"]),
    31951: dict(name="Phường Láng Tròn", short="phường Láng Tròn", ward=True, weight=0.9,
                lat=9.280, lon=105.405, landlord=True, hui=True,
                areas=["khóm 1", "khóm 3", "khóm 4", "khóm 5", "khóm 6"],
                roads=["Quốc lộ 1A", "lộ Láng Tròn - Phó Sinh", "lộ đal khóm 4"]),
    31972: dict(name="Xã Gành Hào", short="xã Gành Hào", ward=False, weight=0.7,
                lat=9.030, lon=105.420, landlord=False, hui=True,
                areas=["ấp 1", "ấp 2", "ấp 3", "ấp Cây Dương", "ấp Lung Lá"],
                roads=["lộ Gành Hào - Hộ Phòng", "đường ra bến cá", "lộ đal ấp 2"]),
    31867: dict(name="Xã Phước Long", short="xã Phước Long", ward=False, weight=0.8,
                lat=9.430, lon=105.460, landlord=False, hui=False,
                areas=["ấp Long Thành", "ấp Phước Thuận", "ấp Nội Ô", "ấp Bình Thành", "ấp Xóm Lớn"],
                roads=["lộ Phước Long - Vĩnh Mỹ", "lộ đal kinh Ba", "đường vào chợ Phước Long"]),
    31885: dict(name="Xã Phong Hiệp", short="xã Phong Hiệp", ward=False, weight=0.6,
                lat=9.380, lon=105.330, landlord=False, hui=False,
                areas=["ấp Tư", "ấp Năm", "ấp Bình Phú", "ấp Cây Gừa"],
                roads=["lộ đal ấp Tư", "đường qua cổng ANTT", "lộ kinh Xáng"]),
    31900: dict(name="Xã Vĩnh Lợi", short="xã Vĩnh Lợi", ward=False, weight=0.7,
                lat=9.355, lon=105.730, landlord=False, hui=True,
                areas=["ấp Nhà Thờ", "ấp Xẻo Chích", "ấp Trà Ba", "ấp Giồng Bướm"],
                roads=["Quốc lộ 1A đoạn qua xã", "lộ Châu Hưng", "lộ đal Xẻo Chích"]),
}


def _strip_marks(s: str) -> str:
    s = s.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", s) if unicodedata.category(ch) != "Mn")


def _slug(s: str) -> str:
    out = []
    for ch in _strip_marks(s).lower():
        out.append(ch if ch.isalnum() else "-")
    return "-".join(p for p in "".join(out).split("-") if p)


def _commune_info(code: int, rng: random.Random) -> dict:
    if code in DEFAULT_COMMUNES:
        info = dict(DEFAULT_COMMUNES[code])
    else:  # a caller-supplied code we know nothing about: generic hamlets, no GPS
        info = dict(name=f"xã {code}", short="xã", ward=False, weight=1.0, lat=None, lon=None,
                    landlord=rng.random() < 0.5, hui=rng.random() < 0.5,
                    areas=[f"ấp {i}" for i in range(1, 7)],
                    roads=["lộ đal liên ấp", "đường huyện cũ", "quốc lộ"])
    info["code"] = code
    info["slug"] = _slug(info["short"].split(" ", 1)[-1]) if code in DEFAULT_COMMUNES else str(code)
    info["market"] = "chợ " + (info["short"].split(" ", 1)[-1] if code in DEFAULT_COMMUNES else "xã")
    return info


# ---------------------------------------------------------------------------
# Small random helpers
# ---------------------------------------------------------------------------

def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _wchoice(rng: random.Random, items, weights):
    total = sum(weights)
    if total <= 0:
        return rng.choice(list(items))
    x = rng.random() * total
    for it, w in zip(items, weights):
        x -= w
        if x < 0:
            return it
    return list(items)[-1]


def _pick(rng: random.Random, table: dict):
    return _wchoice(rng, list(table.keys()), list(table.values()))


def _hex(rng: random.Random, bits: int = 256) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# hour-of-day profiles (local time)
PROFILES = {
    "night":   [4, 3, 2, 1.5, 1, .6, .5, .5, .5, .5, .6, .6, .6, .6, .6, .7, .8, 1.2, 2, 3, 4, 5, 5.5, 5],
    "evening": [1, .6, .3, .2, .2, .3, .5, .8, 1, 1.5, 2, 2, 2, 3, 3.5, 3.5, 3.5, 4, 5, 6, 6, 5, 3.5, 2],
    "late":    [4, 5, 5, 5, 4, 2.5, 1, .8, .8, .8, .8, .8, 1, 1, .8, .8, .8, 1, 1.5, 2, 2.5, 3, 3, 3.5],
    "day":     [.1, .1, .1, .1, .2, .6, 1.5, 3, 4, 4, 4, 3.5, 2, 2.5, 3.5, 4, 3.5, 3, 2, 1.8, 1.4, 1, .5, .2],
    "fight":   [2.5, 1.5, 1, .5, .3, .3, .3, .4, .5, .6, .8, 1.2, 1.5, 1, 1, 1, 1.5, 2, 3, 4.5, 5.5, 5.5, 4.5, 3.5],
    "awake":   [.3, .2, .15, .15, .3, 1, 2, 3, 3.5, 3.5, 3.5, 3, 2.5, 2.5, 3, 3, 3, 3, 3, 3.5, 3.5, 2.5, 1.5, .7],
}
CAT_PROFILE = {"drugs": "night", "gambling": "evening", "theft": "late", "fight": "fight",
               "fraud": "day", "hui": "day", "fire": "awake", "traffic": "evening",
               "missing_person": "awake", "lost_property": "day", "other": "awake"}


def _time_in_day(rng: random.Random, day0: dt.datetime, profile: str) -> dt.datetime:
    h = _wchoice(rng, range(24), PROFILES[profile])
    return day0 + dt.timedelta(hours=h, seconds=rng.randrange(3600))


# ---------------------------------------------------------------------------
# Reporters
# ---------------------------------------------------------------------------

# kind -> (count per commune at weight 1 and 40 tips/day, channel preferences, style)
KINDS = {
    # reliable neighbours, members of "tổ tự quản" / "liên gia an toàn", bảo vệ dân phố
    "neighbour": dict(n=12, ch={"zalo": 60, "hotline": 14, "in_person": 9, "facebook": 6, "vneid": 6, "sms": 3, "web": 2},
                      marks=.8, teen=.15, detail=(.55, .9), anon=.08, attach=.35, south=.4),
    # members of a "CLB chủ nhà trọ" (landlord club) — wards only
    "landlord": dict(n=7, ch={"zalo": 80, "hotline": 10, "in_person": 6, "vneid": 4},
                     marks=.85, teen=.05, detail=(.65, .95), anon=.03, attach=.45, south=.3),
    # informants of the commune police/officials (công an viên, trưởng ấp, CLB phòng chống tội phạm)
    "informant": dict(n=2, ch={"zalo": 45, "in_person": 30, "hotline": 20, "vneid": 5},
                      marks=.97, teen=.0, detail=(.6, .95), anon=.0, attach=.3, south=.1, formal=True),
    # hụi players in a police-supervised "zalo hụi" group — hụi communes only
    "hui_member": dict(n=8, ch={"zalo": 88, "in_person": 7, "hotline": 5},
                       marks=.6, teen=.2, detail=(.35, .8), anon=.35, attach=.2, south=.6),
    # sincere but anxious residents (often elderly): real-but-minor matters, misperceptions
    "worrier": dict(n=5, ch={"hotline": 40, "zalo": 30, "in_person": 18, "sms": 8, "facebook": 4},
                    marks=.7, teen=.05, detail=(.2, .6), anon=.05, attach=.1, south=.7),
    # pranksters: fake emergencies, tests, jokes
    "prankster": dict(n=1, ch={"sms": 35, "hotline": 30, "facebook": 25, "zalo": 10},
                      marks=.25, teen=.7, detail=(.05, .45), anon=.3, attach=.05, south=.5),
    # grudge reporters: specific, persistent accusations against one neighbour
    "grudge": dict(n=1, ch={"zalo": 30, "vneid": 20, "facebook": 20, "hotline": 20, "web": 10},
                   marks=.8, teen=.1, detail=(.7, .95), anon=.45, attach=.4, south=.5),
    # spammers posting ads / online-casino links in the Zalo and Facebook groups
    "spammer": dict(n=1, ch={"zalo": 65, "facebook": 35},
                    marks=.6, teen=.4, detail=(0, .1), anon=0, attach=.5, south=0),
    # occasional one-time reporters (victims, passers-by) — created on demand
    "one_timer": dict(n=0, ch={"hotline": 34, "zalo": 24, "facebook": 14, "in_person": 10, "vneid": 9, "sms": 5, "web": 4},
                      marks=.6, teen=.3, detail=(.25, .85), anon=.12, attach=.25, south=.5),
}
RELIABLE = ("neighbour", "landlord", "informant")
NEW_CHANNEL_ADOPTION = {"neighbour": .4, "landlord": .3, "informant": .35, "hui_member": .25, "worrier": .45,
                        "prankster": .7, "grudge": .6, "spammer": .5, "one_timer": .6}


@dataclass(eq=False)
class Reporter:
    rid: int
    kind: str
    commune: int
    contact: str
    activity: float
    primary: str
    ch: dict
    marks: float          # probability of typing with diacritics
    teen: float           # probability of teencode abbreviations
    south: bool           # Southern wording (hông, dzậy, ổng, bả)
    detail: float         # how specific the reporter usually is
    anon: float
    attach: float
    nfd: bool             # keyboard emits decomposed Unicode
    formal: bool
    zalo_ref: str
    turncoat: bool = False
    adopts_new: bool = False
    target: str | None = None   # grudge target
    target_area: str | None = None
    tips: int = 0
    cats: dict = field(default_factory=dict)
    pre_rate: float | None = None


# ---------------------------------------------------------------------------
# Vietnamese phrase banks (written for this generator)
# ---------------------------------------------------------------------------

NICK = ["Hai", "Ba", "Tư", "Năm", "Sáu", "Bảy", "Tám", "Chín", "Mười", "Út"]
INIT = list("BCDGHKLMNPQSTVX")
SURN = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Lâm", "Dương", "Châu", "Thạch"]
MIDN = ["Văn", "Thị", "Minh", "Thanh", "Hoàng", "Ngọc", "Quốc"]
COLORS = ["đen", "xám", "đỏ", "xanh", "trắng", "rằn ri"]
VEHICLES = ["Wave Alpha màu xanh", "Sirius đen", "Exciter 150", "Air Blade trắng", "Vision đỏ",
            "Future màu nâu", "xe Dream cũ", "Winner X", "xe đạp điện"]
ROAD_DIRS = ["hướng Quốc lộ 1A", "hướng bến đò", "hướng chợ", "hướng ra kinh xáng", "hướng cầu",
             "về phía ấp bên kia", "hướng thị xã"]


def _person(rng: random.Random) -> str:
    """A person as the press and the neighbours name them: Southern birth-order nickname or initials."""
    female = rng.random() < 0.45
    title = rng.choice(["bà", "chị", "cô"] if female else ["ông", "anh", "chú"])
    if rng.random() < 0.55:
        return f"{title} {rng.choice(NICK)} {rng.choice(INIT)}."
    mid = "Thị" if female and rng.random() < 0.7 else rng.choice([m for m in MIDN if m != "Thị"])
    return f"{title} {rng.choice(SURN)} {mid} {rng.choice(INIT)}."


def _initials(rng: random.Random) -> str:
    return ".".join(rng.choice(INIT) for _ in range(rng.choice([2, 3, 3]))) + "."


def _landmark(rng: random.Random, c: dict) -> str:
    return rng.choice([
        c["market"], f"trường THCS {rng.choice(['Nguyễn Du', 'Lê Lợi', 'Trần Quốc Toản', 'Phan Ngọc Hiển'])}",
        f"cầu {rng.choice(['Xáng', 'Kinh Ba', 'Sắt', 'Ông Bổn', 'Đình'])}", "nhà văn hóa ấp",
        f"cây xăng {_initials(rng)}", f"chùa {rng.choice(['Phước Hưng', 'Long Phước', 'Giác Hoa'])}",
        "bến đò", "trạm y tế", f"ngã ba {rng.choice(['Cây Gừa', 'Chủ Chí', 'Xóm Mới', 'Nhà Việc'])}",
        "khu công nghiệp", "sân bóng mini"])


def _setting(rng: random.Random, c: dict, cat: str) -> tuple[str, bool]:
    """Returns (place phrase, is_boarding_house)."""
    room = rng.randint(1, 14)
    trọ = f"phòng số {room} nhà trọ {_initials(rng)}"
    opts = {
        "drugs": [(trọ, 5 if c["landlord"] else 1), (f"quán karaoke {_initials(rng)}", 2),
                  (f"chòi giữ vuông tôm của {_person(rng)}", 0.5 if c["ward"] else 3),
                  (f"căn nhà bỏ hoang cuối {rng.choice(c['roads'])}", 1.5), (f"bãi đất trống sau {_landmark(rng, c)}", 1)],
        "gambling": [(f"trong vườn dừa nhà {_person(rng)}", 0.5 if c["ward"] else 3), (f"chòi ruộng gần {_landmark(rng, c)}", 0.5 if c["ward"] else 2),
                     (trọ, 3 if c["landlord"] else 0.5), (f"phía sau quán cà phê {_initials(rng)}", 2), (f"nhà {_person(rng)}", 2)],
        "theft": [(f"tiệm tạp hóa {_person(rng)}", 2), (f"nhà trọ {_initials(rng)}", 2 if c["landlord"] else 0.3),
                  (f"vuông tôm của {_person(rng)}", 0.3 if c["ward"] else 2.5), (f"trước {_landmark(rng, c)}", 2), (f"nhà {_person(rng)}", 3)],
        "fight": [(f"quán nhậu {_initials(rng)}", 3), (f"trước cổng {_landmark(rng, c)}", 2), (f"khu vực {c['market']}", 2),
                  (f"đám cưới nhà {_person(rng)}", 1.5), (trọ, 1 if c["landlord"] else 0.2)],
        "fraud": [(f"nhà {_person(rng)}", 3), (f"tiệm vàng {_initials(rng)}", 0.5)],
        "hui": [(f"dãy {rng.randint(1, 12)} {c['market']}", 2), (f"nhà {_person(rng)}", 3)],
        "fire": [(f"nhà {_person(rng)}", 3), (f"dãy trọ {_initials(rng)}", 1 if c["landlord"] else 0.2),
                 (f"bãi cỏ cạnh {_landmark(rng, c)}", 1), (f"chòi vuông tôm của {_person(rng)}", 0.3 if c["ward"] else 1.5)],
        "traffic": [(rng.choice(c["roads"]), 4), (f"đoạn gần {_landmark(rng, c)}", 2)],
        "missing_person": [(f"nhà {_person(rng)}", 3), (f"khu vực {c['market']}", 1)],
        "lost_property": [(f"khu vực {c['market']}", 2), (f"đoạn {rng.choice(c['roads'])}", 2), (f"trước {_landmark(rng, c)}", 2)],
        "other": [(f"nhà {_person(rng)}", 3), (rng.choice(c["roads"]), 2), (trọ, 1.5 if c["landlord"] else 0.2),
                  (f"khu vực {c['market']}", 1)],
    }[cat]
    place = _wchoice(rng, [o[0] for o in opts], [o[1] for o in opts])
    return place, "nhà trọ" in place or "dãy trọ" in place


def _money(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(3, 9)} triệu", f"hơn {rng.randint(1, 9)}0 triệu",
                       f"khoảng {rng.randint(1, 9)} trăm triệu", f"gần {rng.randint(1, 3)} tỷ"])


def _claim(rng: random.Random, c: dict, cat: str, kind: str) -> dict:
    """What a tip is about: core phrases (variants reporters of the same matter share), place, extras.

    kind: "real" (actionable), "minor" (real but no police action), "false" (nothing happened)."""
    place, trọ = _setting(rng, c, cat)
    n = rng.randint(3, 12)
    area = rng.choice(c["areas"])
    extras: list[str] = []
    if kind == "minor":
        cores = {
            "other": [["hàng xóm hát karaoke quá 22 giờ, ồn không ngủ được", "nhà bên mở loa karaoke hát tới khuya"],
                      ["nhóm thanh niên ngồi nhậu ồn ào, la hét", "mấy thanh niên nhậu nói chuyện lớn tiếng tới khuya"],
                      ["bò thả rông ra giữa đường, dễ gây tai nạn", "có mấy con bò đi lạc ra lộ"],
                      ["xe bán hàng dạo mở loa rất lớn từ sáng sớm", "xe bán hàng rong mở loa inh ỏi"]],
            "fight": [["hai vợ chồng nhà kế bên cãi nhau lớn tiếng, đập đồ", "nhà bên cãi nhau to, nghe tiếng đập đồ"],
                      ["hai nhà tranh chấp ranh đất, đang cự cãi", "hai hộ cãi nhau vì cái hàng rào"]],
            "traffic": [["xe tải đậu chắn lối đi cả buổi", "xe tải đậu chắn hẻm, xe khác không qua được"],
                        ["cát đá đổ tràn ra lộ, trơn trượt", "có đống cát đổ ra đường rất nguy hiểm"]],
            "fire": [["có người đốt rơm rạ khói mù mịt", "khói đốt đồng bay vào nhà dân"]],
            "lost_property": [["tôi bị rớt cái ví ở đâu đó, không có giấy tờ quan trọng", "làm rơi cái ví, trong đó ít tiền"]],
        }[cat]
        i = rng.randrange(len(cores))
        core = cores[i]
        road = rng.choice([rng.choice(c["roads"]), f"đoạn gần {_landmark(rng, c)}"])
        own = {("other", 2): road, ("other", 3): road, ("traffic", 0): road, ("traffic", 1): road,
               ("fire", 0): f"ruộng gần {_landmark(rng, c)}", ("lost_property", 0): f"khu vực {c['market']}"}.get((cat, i))
        if own:
            place, trọ = own, False
        return dict(cat=cat, cores=core, place=place, area=area, extras=extras, trọ=trọ, n=n)
    if cat == "drugs":
        core = rng.choice([
            [f"có {n} thanh niên tụ tập sử dụng ma túy", f"nhóm {n} người đang chơi ma túy, mở nhạc xập xình"],
            [f"có nhóm người bay lắc, nhạc mở rất to", f"khoảng {n} thanh niên bay lắc cả đêm"],
            ["có người lạ ra vào liên tục, nghi mua bán ma túy", "nghi có đối tượng bán ma túy lẻ, người ra vào suốt"],
            ["có mùi khét lạ bốc ra, nghi đang dùng ma túy đá", "ngửi thấy mùi lạ, mấy đứa trong đó chơi đá"],
        ])
        extras += [f"nhạc mở rất to từ {rng.choice(['đêm qua', 'chiều tới giờ', 'khuya'])}", "có mấy chiếc xe lạ biển số tỉnh khác đậu trước cửa",
                   "cửa đóng kín, có người đứng canh"]
    elif cat == "gambling":
        core = rng.choice([
            [f"có sới đá gà ăn tiền khoảng {n} người", f"tụ tập đá gà ăn tiền, xe đậu cả dãy"],
            [f"nhóm {n} người đánh bài ăn tiền", f"có {n} người sát phạt đánh bài"],
            ["có tụ điểm xóc đĩa", "có sòng xóc đĩa ăn tiền"],
            ["có người lắc tài xỉu ăn tiền", "tụ tập lắc tài xỉu"],
            ["có người ghi số đề công khai", "bán số đề ngang nhiên mỗi chiều"],
        ])
        extras += [f"xe đậu cả chục chiếc", "có người đứng cảnh giới ngoài lộ", f"chơi từ {rng.choice(['trưa', 'chiều', 'tối'])} tới giờ"]
    elif cat == "theft":
        v = rng.choice(VEHICLES)
        options = [  # (variants, own place or None, weight in a ward, weight in a rural commune)
            ([f"vừa bị trộm xe máy {v}", f"có trộm lấy chiếc {v}"], None, 4, 3),
            (["có trộm bẻ khóa lấy xe máy", "bị bẻ khóa lấy mất xe"], None, 3, 2),
            (["trộm máy bơm nước ở vuông tôm", "bị lấy mất máy bơm ngoài vuông"], f"vuông tôm của {_person(rng)}", 0.3, 3),
            (["có đối tượng giật điện thoại của một chị", "vừa có vụ giật điện thoại"],
             rng.choice([f"đoạn {rng.choice(c['roads'])}", f"trước {c['market']}"]), 3, 1),
            (["nhóm trộm chó đi xe máy, dùng súng bắn điện", "có trộm chó, bắt chó bằng súng điện"], f"nhà {_person(rng)}", 1, 2.5),
            (["trộm bắt gà vịt trong chuồng", "bị bắt trộm cả bầy vịt"], f"chuồng gà nhà {_person(rng)}", 0.3, 2),
        ]
        core, own, _, _ = _wchoice(rng, options, [o[2] if c["ward"] else o[3] for o in options])
        if own:
            place, trọ = own, False
        extras += [f"đối tượng mặc áo khoác {rng.choice(COLORS)}, đội nón bảo hiểm {rng.choice(COLORS)}",
                   f"chạy về {rng.choice(ROAD_DIRS)}", "hai thanh niên chở nhau, xe không biển số", "camera nhà bên có quay được"]
    elif cat == "fight":
        core = rng.choice([
            [f"có {n} thanh niên đánh nhau, có người cầm dao", f"nhóm {n} người đánh nhau, có hung khí"],
            ["nhậu say rồi gây gổ đánh nhau", "mấy người nhậu xỉn quánh nhau"],
            ["hai nhóm thanh niên hỗn chiến, có người bị thương chảy máu", "đánh nhau có người bị chém chảy máu"],
            ["hai nhóm hẹn đánh nhau, mang theo mã tấu", "có nhóm thanh niên mang mã tấu đi tìm đánh người"],
        ])
        extras += [f"{rng.randint(1, 3)} người bị thương", "người dân can không được", "đối tượng còn đứng tại chỗ"]
    elif cat == "fraud":
        m = _money(rng)
        core = rng.choice([
            [f"có người giả danh công an gọi điện bắt chuyển tiền, nhà tôi đã chuyển {m}", f"bị kẻ giả công an gọi lừa chuyển {m}"],
            [f"nhóm cho vay nặng lãi tới tạt sơn, đe dọa nhà {_person(rng)}", "tín dụng đen tới tạt mắm tôm, dọa đánh người"],
            [f"bị lừa mua hàng online mất {m}", f"chuyển khoản mua hàng rồi bị chặn, mất {m}"],
        ])
        extras += ["có giữ lại tin nhắn", "đối tượng nói giọng Bắc", "đã báo ngân hàng khóa tài khoản"]
    elif cat == "hui":
        who = _person(rng)
        core = rng.choice([
            [f"chủ hụi {who} ôm tiền bỏ trốn, hơn {n + 10} hụi viên chưa được trả", f"đầu thảo {who} bỏ trốn, bể hụi"],
            [f"chủ hụi {who} không giao hụi mấy kỳ nay, nghi vỡ hụi", f"{who} giữ tiền hụi mấy kỳ không giao"],
            [f"chủ hụi {who} tuyên bố mất khả năng chi trả, tổng khoảng {_money(rng)}", f"bể hụi nhà {who}, nợ {_money(rng)}"],
        ])
        extras += [f"hụi viên kéo tới nhà đòi tiền", "nhà đóng cửa mấy ngày nay", "có sổ hụi ghi chép đầy đủ"]
    elif cat == "fire":
        core = rng.choice([["đang cháy lớn, khói bốc cao", "có cháy, lửa bốc lên dữ lắm"],
                           ["cháy nhà, trong nhà còn người", "cháy nhà, nghe nói còn người kẹt trong"]])
        extras += ["người dân đang dập lửa", "gió thổi mạnh", "lửa lan sang nhà bên"]
    elif cat == "traffic":
        core = rng.choice([["nhóm thanh niên đua xe, nẹt pô inh ỏi", f"khoảng {n} xe đua nhau lạng lách"],
                           ["tai nạn giao thông, một người bị thương nằm giữa đường", "va chạm xe máy, có người bị thương nặng"]])
        extras += ["tụ tập từ tối tới giờ", "xe không gắn biển số", "người đi đường hoảng sợ"]
    elif cat == "missing_person":
        age = rng.choice([rng.randint(4, 14), rng.randint(70, 88)])
        if age < 20:
            core = [f"cháu {rng.choice(['trai', 'gái'])} {age} tuổi đi chơi từ chiều chưa về", f"con tôi {age} tuổi đi lạc"]
        else:
            core = [f"ông cụ {age} tuổi bị lẫn đi khỏi nhà chưa về", f"ba tôi {age} tuổi đi lạc, bị lẫn"]
        extras += [f"mặc áo {rng.choice(COLORS)}", "lần cuối thấy ở gần chợ", "gia đình đi tìm khắp nơi không thấy"]
    elif cat == "lost_property":
        core = rng.choice([[f"nhặt được cái ví có căn cước tên {rng.choice(SURN)} {rng.choice(MIDN)} {rng.choice(INIT)}.", "lượm được ví có giấy tờ tùy thân"],
                           ["nhặt được túi xách có giấy tờ xe", "ai làm rơi túi có cà vẹt xe"],
                           ["bị mất túi xách có giấy tờ và tiền", "làm rớt túi có giấy tờ quan trọng"]])
        extras += ["đang giữ tại nhà", "muốn gửi lại công an để trả người mất"]
    else:  # other, actionable: a stranger casing houses, etc.
        core = rng.choice([["có người lạ đi xe không biển số rình rập nhà dân", "hai thanh niên lạ chạy qua lại nhìn vào các nhà"],
                           ["có nhóm thanh niên tụ tập mang theo hung khí", "mấy đứa tụ tập có dao, gậy"]])
        extras += ["đã mấy đêm liền", "bà con lo sợ"]
    return dict(cat=cat, cores=core, place=place, area=area, extras=extras, trọ=trọ, n=n)


PRANKS = [
    "có cướp ngân hàng ở {lm}!!! công an tới lẹ", "có người chết trôi dưới kinh gần {lm}",
    "có bom ở {market} mn tránh xa", "alo alo công an ơi test thử coi có ai đọc hông",
    "báo có vụ đánh nhau lớn lắm ở {lm}, mau lên", "có ma ở {lm} nè công an ơi",
    "thằng bạn tui bị bắt cóc rồi 😂😂", "có cháy lớn ở {market}!!!", "có người cầm súng ở {lm}",
]
MISPERCEPTIONS = [
    ("theft", "thấy người lạ đi xe máy chạy qua lại nhiều lần trước nhà, nghi trộm"),
    ("fight", "nghe tiếng la hét bên {area}, tưởng có đánh nhau"),
    ("fire", "thấy khói bên {lm}, sợ có cháy"),
    ("theft", "nghi nhà kế bên chứa đồ ăn trộm, thấy chở đồ về ban đêm"),
    ("other", "có người lạ đứng trước {lm} lâu lắm, nhìn khả nghi"),
    ("drugs", "thấy mấy đứa nhỏ tụ tập ở {lm}, sợ tụi nó chơi ma túy"),
    ("missing_person", "đứa cháu đi học chưa về, gọi không được"),
    ("other", "nghe chó sủa cả đêm, chắc có trộm rình"),
]
OVERREPORTS = [
    ("drugs", "đối tượng {who} ở {area} có biểu hiện nghi sử dụng ma túy, đề nghị theo dõi"),
    ("gambling", "tại {area} có dấu hiệu tụ tập đánh bạc, chưa xác định được địa điểm cụ thể"),
    ("other", "{who} mới về địa phương, không đăng ký tạm trú, có nhiều mối quan hệ phức tạp"),
    ("drugs", "nghi vấn {who} tàng trữ chất cấm tại nhà, cần xác minh thêm"),
    ("theft", "{who} thời gian gần đây có tiền tiêu xài không rõ nguồn gốc, nghi liên quan các vụ trộm"),
]
GRUDGES = [
    ("gambling", "nhà {target} ở {area} tối nào cũng tổ chức đánh bài ăn tiền, đề nghị công an bắt"),
    ("drugs", "{target} ở {area} buôn bán ma túy, người lạ ra vào suốt ngày đêm"),
    ("other", "{target} lấn chiếm đất, chửi bới hàng xóm, đề nghị công an xử lý"),
    ("theft", "{target} chứa chấp đồ ăn trộm trong nhà, thấy chở về ban đêm"),
    ("fraud", "{target} cho vay nặng lãi, ép người ta trả lời cắt cổ"),
    ("hui", "{target} làm chủ hụi chui, sắp ôm tiền bỏ trốn"),
]
RUMOURS = [
    ("missing_person", ["nghe nói có xe bắt cóc trẻ em ở gần {lm}, bà con giữ con cẩn thận",
                        "có xe 7 chỗ lạ bắt cóc con nít ở {lm}, mn coi chừng",
                        "nghe đồn mới mất một đứa nhỏ gần {lm}, bọn bắt cóc mổ nội tạng"]),
    ("fraud", ["có nhóm người giả thu mua phế liệu dùng thuốc mê ở {area}",
               "mấy người lạ đi thu mua ve chai xịt thuốc mê cướp tài sản ở {area}",
               "cẩn thận có kẻ dùng thuốc mê giả làm người thu mua phế liệu"]),
    ("theft", ["nghe nói tối qua bị trộm liên tiếp mấy nhà ở {area}",
               "bà con {area} đồn có băng trộm về, mất mấy chiếc xe",
               "đồn là có nhóm trộm chuyên nghiệp đang rình ở {area}"]),
]
SPAM = [
    "Vay tiền nhanh chỉ cần căn cước, không thẩm định, giải ngân trong ngày, ib em",
    "Tuyển CTV làm việc online tại nhà, lương 500k/ngày, không cần kinh nghiệm",
    "Nhận làm bằng lái, giấy tờ xe nhanh gọn, bao đậu",
    "Nhà cái uy tín nạp rút 1-1, tặng 100k cho thành viên mới, inbox nhận link",
    "Thanh lý lô máy bơm, máy cắt cỏ giá rẻ, ai cần ib",
    "Thuốc tăng cân gia truyền, cam kết hiệu quả sau 1 tuần",
    "Cần tiền gấp cầm cà vẹt xe, không giữ xe, lãi thấp",
    "Bán sim số đẹp phong thủy giá rẻ, giao tận nhà",
]
ADMIN = [
    ("other", "cho hỏi làm căn cước cho con dưới 14 tuổi ở đâu ạ"),
    ("other", "đăng ký tạm trú cho người thuê trọ thì làm sao ạ"),
    ("other", "em muốn hỏi thủ tục cấp lại giấy đăng ký xe bị mất"),
    ("other", "sáng thứ 7 công an xã có làm việc không ạ"),
    ("other", "xin cảm ơn công an đã giúp gia đình tìm lại xe"),
    ("other", "cho hỏi tài khoản định danh điện tử mức 2 đăng ký ở đâu"),
    ("lost_property", "ai nhặt được giấy phép lái xe tên {name} cho xin lại, cảm ơn"),
    ("other", "nhà em mới chuyển về, khai báo lưu trú online được không ạ"),
]
WARNINGS = [
    ("fraud", "CẢNH BÁO: thủ đoạn giả danh nhân viên điện lực gọi điện yêu cầu thanh toán tiền điện, mọi người cẩn thận"),
    ("fraud", "Chia sẻ cho bà con: có đối tượng giả làm shipper giao hàng rồi yêu cầu chuyển khoản phí"),
    ("fraud", "Cảnh báo lừa đảo cài ứng dụng giả mạo để cập nhật định danh, tuyệt đối không bấm link lạ"),
    ("fraud", "Mọi người cẩn thận tin nhắn trúng thưởng xe máy, đều là lừa đảo"),
    ("theft", "Mùa này trộm chó nhiều, bà con nhốt chó kỹ giùm"),
]

OPEN_PLAIN = ["", "", "", "Công an ơi, ", "Alo CA ơi ", "Dạ cho em báo tin, ", "Báo công an: ", "Anh chị công an ơi, ",
              "Mọi người ơi ", "Em báo: ", "Cho tôi báo: "]
OPEN_FORMAL = ["Kính gửi Công an {short}. ", "Báo cáo nhanh: ", "Thông tin ban đầu: ", "Kính báo: "]
CLOSE = ["", "", "", " Đề nghị công an xuống kiểm tra.", " Mong CA xử lý sớm giúp bà con.", " Em xin giấu tên.",
         " Gấp!!", " Cảm ơn ạ.", " Bà con ở đây sợ lắm.", " Tôi có quay được video."]
CLOSE_FORMAL = [" Đề nghị lực lượng kiểm tra, xác minh.", " Tiếp tục theo dõi, báo cáo thêm.", ""]
EMOJI = [" 😡", " 🙏", " ⚠️", " 🚨", " 😢", " !!!"]
HEDGE = ["nghe nói ", "hình như ", "không biết sao mà ", "nghe người ta nói ", "hổng biết có phải không mà "]
TEEN = {"không": "ko", "được": "dc", "gì": "j", "biết": "bit", "rồi": "r", "với": "vs", "mọi người": "mn",
        "anh em": "ae", "công an": "CA", "thanh niên": "tn", "nhà trọ": "nt", "bây giờ": "bh", "quá": "wa"}
SOUTH = {"không": "hông", "vậy": "dzậy", "ông ấy": "ổng", "bà ấy": "bả", "lắm": "dữ lắm", "đánh nhau": "quánh nhau"}


def _replace_words(text: str, table: dict, p: float, rng: random.Random) -> str:
    for k, v in table.items():
        if k in text and rng.random() < p:
            text = text.replace(k, v)
    return text


def _time_phrase(rng: random.Random, when: dt.datetime, at: dt.datetime) -> str:
    gap = (at - when).total_seconds() / 60
    if gap < 20:
        return rng.choice(["vừa xong", "ngay bây giờ", "mới đây", "đang diễn ra"])
    h, m = when.hour, when.minute
    if at.date() != when.date():
        return rng.choice(["từ đêm qua", "tối qua", "hồi khuya"])
    return rng.choice([f"lúc {h}h{m:02d}", f"khoảng {h} giờ", f"khoảng {h}h", "hồi nãy"])


OPERATOR_OPEN = {"hotline": ["Người dân gọi báo: ", "Tiếp nhận tin báo qua điện thoại: ", "Công dân gọi điện báo ",
                             "Trực ban tiếp nhận: "],
                 "in_person": ["Công dân đến trụ sở trình báo: ", "Người dân trực tiếp báo: ", "Tiếp công dân: "]}


def _render(rng: random.Random, r: Reporter, c: dict, claim: dict | None, core: str, when: dt.datetime | None,
            at: dt.datetime, spec: float, hedge: bool = False, raw: bool = False, channel: str | None = None) -> str:
    """Write the tip text as this reporter would (or as the duty officer noted a call or visit)."""
    if channel in OPERATOR_OPEN and rng.random() < 0.7:
        # a phone call or a visit: the officer on duty types a summary, in their own standard style
        parts = [core[0].upper() + core[1:]]
        if claim is not None:
            if rng.random() < 0.4 + 0.6 * spec:
                parts.append(f"địa điểm: {claim['place']}, {claim['area']}")
            if when is not None and rng.random() < 0.3 + 0.6 * spec:
                parts.append(f"thời gian: {when.hour}h{when.minute:02d}")
        return (rng.choice(OPERATOR_OPEN[channel]) + "; ".join(parts) + ".")[:4000]
    if raw:
        text = core
    else:
        parts = []
        if hedge or (spec < 0.25 and rng.random() < 0.5):
            core = rng.choice(HEDGE) + core
        parts.append(core)
        if claim is not None:
            if rng.random() < 0.35 + 0.65 * spec:
                parts.append(("ở " if rng.random() < 0.5 else "tại ") + claim["place"]
                             + (f", {claim['area']}" if rng.random() < spec else ""))
            elif rng.random() < 0.6:
                parts.append("ở " + claim["area"])
            if when is not None and rng.random() < spec * 0.8:
                parts.append(_time_phrase(rng, when, at))
            for ex in claim["extras"]:
                if rng.random() < spec * 0.45:
                    parts.append(ex)
        opener = (rng.choice(OPEN_FORMAL).format(short=c["short"]) if r.formal else rng.choice(OPEN_PLAIN))
        closer = rng.choice(CLOSE_FORMAL) if r.formal else rng.choice(CLOSE)
        if rng.random() < 0.5:  # order: place first sometimes
            if len(parts) > 1 and rng.random() < 0.4:
                parts[0], parts[1] = parts[1], parts[0]
        text = opener + ", ".join(parts)
        text = text[0].upper() + text[1:] if text else text
        if not text.endswith((".", "!", "?")) and rng.random() < 0.6:
            text += "."
        text += closer
        if rng.random() < (0.05 if r.formal else 0.18):
            text += rng.choice(EMOJI)
    if r.south and not r.formal:
        text = _replace_words(text, SOUTH, 0.5, rng)
    if rng.random() < r.teen:
        text = _replace_words(text, TEEN, 0.7, rng)
        text = text.lower()
    if rng.random() > (r.marks * 0.5 if channel == "sms" else r.marks):
        text = _strip_marks(text)
        if rng.random() < 0.5:
            text = text.lower()
    if r.nfd:
        text = unicodedata.normalize("NFD", text)
    return text.strip()[:4000]


VERDICT_NOTES = {
    "valuable": ["Đã bắt quả tang {n} đối tượng", "Đã xác minh đúng sự việc, lập biên bản xử lý", "Thu giữ tang vật",
                 "Đã trao trả tài sản cho chủ sở hữu", "Chuyển cơ quan điều tra thụ lý", "Đã xử lý kịp thời",
                 "Phối hợp bảo vệ dân phố truy bắt được đối tượng"],
    "not_valuable": ["Đến nơi không phát hiện vi phạm", "Sự việc nhỏ, đã nhắc nhở", "Nội dung quảng cáo, không liên quan ANTT",
                     "Hỏi thủ tục hành chính, đã hướng dẫn", "Thông tin cảnh báo chung, không có vụ việc cụ thể",
                     "Đã hòa giải tại chỗ", "Không đủ thông tin để xác minh"],
    "false_report": ["Tin báo sai sự thật", "Xác minh không có sự việc, nghi mâu thuẫn cá nhân",
                     "Tin đồn thất thiệt, đã đính chính trên nhóm", "Báo tin giả, đã mời làm việc"],
    "duplicate": ["Trùng tin báo trước", "Đã tiếp nhận từ nguồn khác"],
}


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

# share of tips by source.  "real" = actionable real matters (truth True); the rest are truth False.
NONVALUABLE_MIX = {"minor": 0.22, "misperception": 0.12, "overreport": 0.06, "prank": 0.08, "grudge": 0.08,
                   "spam": 0.20, "admin": 0.12, "rumour": 0.07, "warning": 0.05}
DEFAULT_VALUABLE = 0.40
REAL_CAT_MIX = {"drugs": .20, "gambling": .20, "theft": .20, "fight": .12, "hui": .06, "fraud": .06, "fire": .03,
                "traffic": .05, "missing_person": .03, "lost_property": .04, "other": .01}
MINOR_CAT_MIX = {"other": .5, "fight": .2, "traffic": .15, "fire": .05, "lost_property": .10}
# mean number of *extra* reporters of one matter (besides the first)
EXTRA_REPORTERS = {"drugs": .5, "gambling": .6, "theft": .9, "fight": 1.6, "hui": 2.2, "fraud": .25, "fire": 2.2,
                   "traffic": 1.3, "missing_person": 1.2, "lost_property": .1, "other": .7}
# chance a reporter of a matter is a one-off (victim, passer-by) rather than a known community member
ONE_TIMER_P = {"drugs": .15, "gambling": .15, "theft": .55, "fight": .35, "hui": .25, "fraud": .75, "fire": .4,
               "traffic": .55, "missing_person": .7, "lost_property": .85, "other": .3}
# who notices a *minor* matter (noise, quarrels, cattle on the road): multiplies NOTICE
MINOR_NOTICE = {"worrier": 5.0, "neighbour": 0.25, "landlord": 0.6, "informant": 0.3, "hui_member": 1.0}
NOTICE = {  # kind -> category -> weight (who notices what)
    "neighbour": {c: 1.0 for c in CATEGORIES} | {"hui": .3},
    "landlord": {c: .5 for c in CATEGORIES} | {"drugs": 1.6, "gambling": 1.2, "theft": 1.0, "fight": .9},
    "informant": {c: .8 for c in CATEGORIES} | {"drugs": 3.0, "gambling": 3.0, "fight": 1.5, "hui": 1.2},
    "hui_member": {c: .25 for c in CATEGORIES} | {"hui": 8.0, "fraud": 1.0},
    "worrier": {c: .3 for c in CATEGORIES},
    "prankster": {c: .03 for c in CATEGORIES},
    "grudge": {c: .08 for c in CATEGORIES},
    "spammer": {c: 0.0 for c in CATEGORIES},
}
RUMOUR_PRONE = {"neighbour": 0.6, "worrier": 3.0, "hui_member": 1.5, "landlord": 0.6, "informant": 0.3}
CAT_ON_CHANNEL = {"hotline": .85, "in_person": .85, "vneid": .95, "web": .8, "zalo": .12, "facebook": .1, "sms": .2}
JUDGE_BASE = {"real": .92, "minor": .68, "misperception": .7, "overreport": .76, "prank": .66, "grudge": .8,
              "rumour": .66, "spam": .15, "admin": .18, "warning": .24, "turncoat": .78}
VERDICT_DELAY_H = {"drugs": (2, 96), "gambling": (1, 72), "hui": (24, 240), "fraud": (12, 200)}
JUDGE_CHANNEL = {"hotline": 1.15, "in_person": 1.2, "vneid": 1.15, "web": 1.0, "zalo": .9, "facebook": .85, "sms": .9}


class _Gen:
    def __init__(self, seed, days, tips_per_day, wrong_verdicts, turncoat_share, valuable_share, new_channel,
                 commune_codes, start):
        if new_channel is not None and new_channel not in CHANNELS:
            raise ValueError(f"new_channel must be one of {', '.join(CHANNELS)}")
        if not 0 <= wrong_verdicts <= 1 or not 0 <= turncoat_share <= 1:
            raise ValueError("wrong_verdicts and turncoat_share must be in [0, 1]")
        if valuable_share is not None and not 0 <= valuable_share <= 1:
            raise ValueError("valuable_share must be in [0, 1]")
        self.rng = random.Random(seed)
        # the stress options draw from their own streams, so the same seed keeps the same base world
        self.rng_adopt = random.Random(f"{seed}/new-channel")
        self.rng_channel = random.Random(f"{seed}/new-channel-use")
        self.rng_turn = random.Random(f"{seed}/turncoat-tips")
        self.seed, self.days, self.T = seed, int(days), float(tips_per_day)
        self.wrong, self.turn_share = wrong_verdicts, turncoat_share
        self.vshare = DEFAULT_VALUABLE if valuable_share is None else valuable_share
        self.new_channel = new_channel
        self.t0 = dt.datetime.fromisoformat(start).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=TZ)
        self.t_end = self.t0 + dt.timedelta(days=self.days)
        self.mid = self.t0 + dt.timedelta(days=self.days // 2)
        codes = list(commune_codes) if commune_codes else list(DEFAULT_COMMUNES)
        self.communes = {code: _commune_info(code, self.rng) for code in codes}
        self.reporters: list[Reporter] = []
        self.by_commune: dict[int, list[Reporter]] = {c: [] for c in codes}
        self.one_timers: dict[int, list[Reporter]] = {c: [] for c in codes}
        self.contacts: set[str] = set()
        self.tips: list[dict] = []      # internal tip records
        self.truth: dict[str, bool] = {}
        self.matters: dict[str, dict] = {}
        self._build_population()

    # -- population -------------------------------------------------------
    def _contact(self) -> str:
        while True:
            c = f"zalo:{self.rng.randrange(10**8, 10**9)}"
            if c not in self.contacts:
                self.contacts.add(c)
                return c

    def _new_reporter(self, kind: str, code: int) -> Reporter:
        rng, spec = self.rng, KINDS[kind]
        c = self.communes[code]
        ch = dict(spec["ch"])
        if self.new_channel:
            ch.pop(self.new_channel, None)   # nobody in the province used it before
        primary = _pick(rng, ch)
        lo, hi = spec["detail"]
        if kind == "landlord":
            zref = f"zalo:clb-chu-nha-tro-{c['slug']}"
        elif kind == "hui_member":
            zref = f"zalo:hui-{c['slug']}-{rng.randint(1, 9):02d}"
        elif kind in ("informant", "one_timer"):
            zref = f"zalo:ca-{c['slug']}"
        else:
            zref = f"zalo:grp-{c['slug']}-{_slug(rng.choice(c['areas']))}"
        r = Reporter(rid=len(self.reporters), kind=kind, commune=code, contact=self._contact(),
                     activity=rng.lognormvariate(0, 0.9), primary=primary, ch=ch,
                     marks=min(1.0, max(0.0, rng.gauss(spec["marks"], 0.12))),
                     teen=min(1.0, max(0.0, rng.gauss(spec["teen"], 0.1))),
                     south=rng.random() < spec["south"], detail=rng.uniform(lo, hi),
                     anon=spec["anon"], attach=spec["attach"], nfd=rng.random() < 0.08,
                     formal=spec.get("formal", False), zalo_ref=zref)
        if kind == "grudge":
            r.target, r.target_area = _person(rng), rng.choice(c["areas"])
        if self.new_channel and self.rng_adopt.random() < NEW_CHANNEL_ADOPTION[kind]:
            r.adopts_new = True
        self.reporters.append(r)
        return r

    def _build_population(self):
        rng = self.rng
        wsum = sum(c["weight"] for c in self.communes.values())
        scale = self.T / 40.0 * len(self.communes) / wsum
        for code, c in self.communes.items():
            for kind, spec in KINDS.items():
                if kind == "one_timer":
                    continue
                if kind == "landlord" and not c["landlord"]:
                    continue
                if kind == "hui_member" and not c["hui"]:
                    continue
                x = spec["n"] * c["weight"] * scale
                n = int(x) + (rng.random() < x - int(x))
                for _ in range(n):
                    self.by_commune[code].append(self._new_reporter(kind, code))
        reliable = [r for r in self.reporters if r.kind in RELIABLE]
        k = int(round(self.turn_share * len(reliable)))
        for r in random.Random(f"{self.seed}/turncoats").sample(reliable, k) if k else []:
            r.turncoat = True

    def _one_timer(self, code: int) -> Reporter:
        pool = self.one_timers[code]
        if pool and self.rng.random() < 0.15:     # the occasional repeat
            return self.rng.choice(pool)
        r = self._new_reporter("one_timer", code)
        pool.append(r)
        return r

    def _of_kind(self, kind: str, code: int | None = None) -> Reporter:
        pool = [r for r in (self.by_commune[code] if code is not None else self.reporters) if r.kind == kind]
        if not pool:
            return self._one_timer(code if code is not None else self._pick_commune())
        return _wchoice(self.rng, pool, [r.activity for r in pool])

    def _pick_commune(self) -> int:
        return _wchoice(self.rng, list(self.communes), [c["weight"] for c in self.communes.values()])

    # -- one tip ------------------------------------------------------------
    def _channel(self, r: Reporter, at: dt.datetime) -> str:
        rng = self.rng
        if self.new_channel and at >= self.mid and r.adopts_new and self.rng_channel.random() < 0.85:
            return self.new_channel
        if rng.random() < 0.8:
            return r.primary
        return _pick(rng, r.ch)

    def _source_ref(self, r: Reporter, channel: str, code: int) -> str | None:
        rng, slug = self.rng, self.communes[code]["slug"]
        if rng.random() < 0.2:
            return None
        return {"zalo": r.zalo_ref,
                "facebook": f"facebook:ca-{slug}",
                "hotline": rng.choice(["hotline:113", f"hotline:ca-{slug}"]),
                "sms": "sms:tong-dai-to-giac",
                "vneid": "vneid:to-giac-toi-pham",
                "web": "web:cong-dich-vu-cong",
                "in_person": f"in_person:tru-so-ca-{slug}"}[channel]

    def _emit(self, r: Reporter, code: int, at: dt.datetime, text: str, cat: str | None, truth: bool, source: str,
              matter: str, spec: float, place: str | None = None, area: str | None = None,
              shared_media: list[str] | None = None, rank: int = 0, channel: str | None = None,
              anon_boost: float = 0.0):
        rng = self.rng
        if at >= self.t_end:
            return
        channel = channel or self._channel(r, at)
        c = self.communes[code]
        eid = _uuid(rng)
        ev = {"type": "tip", "event_id": eid, "occurred_at": at.isoformat(timespec="seconds"), "commune_code": code,
              "channel": channel}
        sref = self._source_ref(r, channel, code)
        if sref:
            ev["source_ref"] = sref
        anonymous = rng.random() < min(0.9, r.anon + anon_boost)
        if anonymous:
            ev["anonymous"] = True
            if rng.random() < 0.5:       # some upstreams still pass the contact; the publisher drops it
                ev["reporter_contact"] = r.contact
        else:
            ev["reporter_contact"] = r.contact
        ev["text"] = text
        if place and rng.random() < {"hotline": .7, "in_person": .75, "vneid": .8, "web": .7}.get(channel, .15) * (0.4 + spec):
            ev["location_text"] = place + (f", {area}" if area else "")
        elif area and channel in ("vneid", "web", "hotline") and rng.random() < 0.4:
            ev["location_text"] = area
        if channel in ("vneid", "web") and c.get("lat") is not None and rng.random() < 0.6:
            ev["lat"] = round(c["lat"] + rng.uniform(-0.03, 0.03), 5)
            ev["lon"] = round(c["lon"] + rng.uniform(-0.03, 0.03), 5)
        if cat is not None and rng.random() < CAT_ON_CHANNEL[channel]:
            ev["category"] = cat if rng.random() > 0.08 else rng.choice(CATEGORIES)
        if rng.random() < r.attach * (0.5 + spec):
            att = []
            if shared_media and rng.random() < 0.5:
                att.append({"kind": "image", "sha256": rng.choice(shared_media)})
            else:
                att.append({"kind": rng.choice(["image", "image", "video", "audio"]), "sha256": _hex(rng)})
            ev["attachments"] = att
        self.tips.append(dict(event=ev, reporter=r, truth=truth, source=source, matter=matter, spec=spec,
                              rank=rank, cat=cat, code=code))
        self.truth[eid] = truth
        r.tips += 1
        if cat:
            r.cats[cat] = r.cats.get(cat, 0) + 1

    # -- timing of reports of one matter --------------------------------------
    def _report_times(self, when: dt.datetime, k: int, cat: str, channels_zalo: list[bool]) -> list[dt.datetime]:
        rng = self.rng
        first = when + dt.timedelta(minutes=rng.lognormvariate(math.log(12 if cat in URGENT else 35), 0.9))
        out = [first]
        for _ in range(k - 1):
            out.append(first + dt.timedelta(minutes=min(600, rng.lognormvariate(math.log(40), 1.1))))
        res = []
        for t, z in zip(out, channels_zalo):
            # Zalo groups: only urgent matters outside office hours; others wait till morning
            if z and cat not in URGENT and (t.hour >= 22 or t.hour < 6) and rng.random() < 0.6:
                base = t if t.hour < 6 else t + dt.timedelta(days=1)
                t = base.replace(hour=6, minute=0, second=0) + dt.timedelta(minutes=rng.randrange(150))
            res.append(t)
        return sorted(res)

    # -- matters --------------------------------------------------------------
    def _witnesses(self, code: int, cat: str, k: int, at: dt.datetime, trọ: bool, minor: bool) -> list[Reporter]:
        rng, chosen = self.rng, []
        pool = [r for r in self.by_commune[code] if NOTICE[r.kind][cat] > 0]
        for _ in range(k):
            if rng.random() < ONE_TIMER_P[cat] or not pool:
                chosen.append(self._one_timer(code))
                continue
            ws = []
            for r in pool:
                w = r.activity * NOTICE[r.kind][cat] * (MINOR_NOTICE.get(r.kind, 1.0) if minor else 1.0)
                if r.kind == "landlord":
                    w *= 3.0 if trọ else 0.4
                if r.turncoat and at >= self.mid:
                    w *= 0.15
                if r in chosen:
                    w = 0.0
                ws.append(w)
            if sum(ws) <= 0:
                chosen.append(self._one_timer(code))
            else:
                chosen.append(_wchoice(rng, pool, ws))
        return chosen

    def _matter(self, code: int, day0: dt.datetime, cat: str, kind: str):
        rng, c = self.rng, self.communes[code]
        claim = _claim(rng, c, cat, kind)
        when = _time_in_day(rng, day0, CAT_PROFILE[cat])
        k = 1 + _poisson(rng, EXTRA_REPORTERS[cat] * (0.6 if kind == "minor" else 1.0))
        who = self._witnesses(code, cat, k, when, claim["trọ"], kind == "minor")
        chans = [self._channel(r, when) for r in who]
        times = self._report_times(when, k, cat, [ch == "zalo" for ch in chans])
        mid = f"m{len(self.matters)}"
        media = [_hex(rng) for _ in range(rng.randint(1, 2))]
        self.matters[mid] = dict(kind=kind, cat=cat, code=code, when=when, n=claim["n"])
        truth = kind == "real"
        for rank, (r, ch, at) in enumerate(zip(who, chans, times)):
            spec = min(1.0, max(0.0, r.detail + rng.gauss(0, 0.15)))
            core = rng.choice(claim["cores"])
            text = _render(rng, r, c, claim, core, when, at, spec, channel=ch)
            self._emit(r, code, at, text, cat, truth, kind, mid, spec, claim["place"], claim["area"], media, rank,
                       channel=ch, anon_boost=0.25 if cat in ("drugs", "hui") else 0.0)

    def _single(self, r: Reporter, code: int, at: dt.datetime, source: str, cat: str | None, core: str,
                truth: bool = False, claim: dict | None = None, raw: bool = False, hedge: bool = False,
                when: dt.datetime | None = None, channel: str | None = None):
        mid = f"m{len(self.matters)}"
        self.matters[mid] = dict(kind=source, cat=cat, code=code, when=at, n=0)
        spec = min(1.0, max(0.0, r.detail + self.rng.gauss(0, 0.15)))
        channel = channel or self._channel(r, at)
        text = _render(self.rng, r, self.communes[code], claim, core, when, at, spec, hedge=hedge, raw=raw,
                       channel=channel)
        self._emit(r, code, at, text, cat, truth, source, mid, spec,
                   claim["place"] if claim else None, claim["area"] if claim else None, channel=channel)
        return mid

    def _fill(self, s: str, code: int, **kw) -> str:
        rng, c = self.rng, self.communes[code]
        return s.format(lm=_landmark(rng, c), market=c["market"], area=rng.choice(c["areas"]),
                        who=_person(rng), name=f"{rng.choice(SURN)} {rng.choice(MIDN)} {rng.choice(INIT)}.", **kw)

    def _episode(self, fn, *args):
        """Run one episode (a matter, a spam burst, a rumour wave...) on its own random stream.

        The main stream spends exactly one draw per episode, so a change inside one episode (another
        reporter chosen because of a turncoat, a new channel) does not reshuffle the rest of the world:
        with the same seed, the stress options perturb the base world instead of replacing it."""
        main = self.rng
        self.rng = random.Random(main.getrandbits(64))
        try:
            fn(*args)
        finally:
            self.rng = main

    def _day(self, d: int):
        rng = self.rng
        day0 = self.t0 + dt.timedelta(days=d)
        mult = rng.gammavariate(8, 1 / 8) * (1.12 if day0.weekday() >= 5 else 1.0) / 1.034
        wsum = sum(c["weight"] for c in self.communes.values())
        T = self.T * mult
        v_tips = T * self.vshare
        nv = T * (1 - self.vshare)
        # actionable real matters and minor real matters, per commune and category
        for code, c in self.communes.items():
            share = c["weight"] / wsum
            mix = dict(REAL_CAT_MIX)
            mix["hui"] *= 2.5 if c["hui"] else 0.3        # hụi trouble where hụi groups are
            if c["ward"]:
                mix["drugs"] *= 1.3                       # boarding houses in the wards
            else:
                mix["gambling"] *= 1.3                    # cockfights in the orchards
                mix["theft"] *= 1.1                       # pumps at the shrimp ponds
            norm = sum(mix.values())
            for cat, p in mix.items():
                lam = v_tips * share * (p / norm) / (1 + EXTRA_REPORTERS[cat])
                for _ in range(_poisson(rng, lam)):
                    self._episode(self._matter, code, day0, cat, "real")
            for cat, p in MINOR_CAT_MIX.items():
                lam = nv * NONVALUABLE_MIX["minor"] * share * p / (1 + 0.6 * EXTRA_REPORTERS[cat])
                for _ in range(_poisson(rng, lam)):
                    self._episode(self._matter, code, day0, cat, "minor")
        # non-events and non-tips
        for src, size, fn in (("misperception", 1.0, self._ep_misperception), ("overreport", 1.0, self._ep_overreport),
                              ("prank", 1.0, self._ep_prank), ("grudge", 1.0, self._ep_grudge),
                              ("spam", 1.6, self._ep_spam), ("admin", 1.0, self._ep_admin),
                              ("warning", 2.0, self._ep_warning), ("rumour", 4.5, self._ep_rumour)):
            for _ in range(_poisson(rng, nv * NONVALUABLE_MIX[src] / size)):
                self._episode(fn, day0)
        # turncoats after the middle: their tips are now mostly false (own stream: the base world stays put)
        if day0 >= self.mid and self.turn_share > 0:
            main, self.rng = self.rng, self.rng_turn
            try:
                self._turncoat_day(day0)
            finally:
                self.rng = main

    def _ep_misperception(self, day0):
        rng = self.rng
        kind = _pick(rng, {"worrier": .45, "one_timer": .35, "neighbour": .06, "landlord": .04, "hui_member": .1})
        code = self._pick_commune()
        r = self._one_timer(code) if kind == "one_timer" else self._of_kind(kind, code)
        cat, core = rng.choice(MISPERCEPTIONS)
        self._single(r, r.commune, _time_in_day(rng, day0, "awake"), "misperception", cat, self._fill(core, r.commune))

    def _ep_overreport(self, day0):
        rng = self.rng
        r = self._of_kind("informant")
        cat, core = rng.choice(OVERREPORTS)
        self._single(r, r.commune, _time_in_day(rng, day0, "day"), "overreport", cat, self._fill(core, r.commune))

    def _ep_prank(self, day0):
        rng = self.rng
        r = self._of_kind("prankster") if rng.random() < 0.75 else self._one_timer(self._pick_commune())
        core = self._fill(rng.choice(PRANKS), r.commune)
        cat = rng.choice([None, None, "other", "fight", "fire", "theft"])
        self._single(r, r.commune, _time_in_day(rng, day0, "fight"), "prank", cat, core, raw=rng.random() < 0.5)

    def _ep_grudge(self, day0):
        rng = self.rng
        r = self._of_kind("grudge")
        if r.target is None:      # fell back to a one-timer: give them a target for this once
            r.target, r.target_area = _person(rng), rng.choice(self.communes[r.commune]["areas"])
        cat, core = rng.choice(GRUDGES[:2] if rng.random() < 0.5 else GRUDGES)
        text = core.format(target=r.target, area=r.target_area)
        self._single(r, r.commune, _time_in_day(rng, day0, "awake"), "grudge", cat, text)

    def _ep_spam(self, day0):
        """One ad, cross-posted to one to a few groups within minutes (identical text)."""
        rng = self.rng
        r = self._of_kind("spammer")
        at = _time_in_day(rng, day0, "awake")
        text = rng.choice(SPAM) + rng.choice(["", "", " 🔥", " !!!", " ☎️ ib"])
        n = 1 + _poisson(rng, 0.6)
        codes = [r.commune] + [self._pick_commune() for _ in range(n - 1)]
        mid = f"m{len(self.matters)}"
        self.matters[mid] = dict(kind="spam", cat=None, code=r.commune, when=at, n=0)
        for i, code in enumerate(codes):
            t = at + dt.timedelta(minutes=rng.randrange(0, 30) * i)
            ch = self._channel(r, t)
            ev_text = _render(rng, r, self.communes[code], None, text, None, t, 0.0, raw=True, channel=ch)
            self._emit(r, code, t, ev_text, rng.choice([None, None, None, "other", "fraud"]), False, "spam", mid,
                       0.0, rank=i, channel=ch)

    def _ep_admin(self, day0):
        rng = self.rng
        kind = _pick(rng, {"one_timer": .6, "neighbour": .1, "worrier": .2, "landlord": .1})
        code = self._pick_commune()
        r = self._one_timer(code) if kind == "one_timer" else self._of_kind(kind, code)
        cat, core = rng.choice(ADMIN)
        self._single(r, r.commune, _time_in_day(rng, day0, "day"), "admin", None if rng.random() < .6 else cat,
                     self._fill(core, r.commune), raw=True)

    def _ep_warning(self, day0):
        """A generic scam warning forwarded by a few sincere people across the province (copy-paste)."""
        rng = self.rng
        cat, text = rng.choice(WARNINGS)
        at = _time_in_day(rng, day0, "day")
        n = 1 + _poisson(rng, 1.0)
        mid = f"m{len(self.matters)}"
        self.matters[mid] = dict(kind="warning", cat=cat, code=None, when=at, n=0)
        for i in range(n):
            kind = _pick(rng, {"neighbour": .15, "worrier": .5, "hui_member": .35})
            r = self._of_kind(kind)
            t = at + dt.timedelta(minutes=rng.lognormvariate(math.log(60), 1.0))
            ch = self._channel(r, t)
            text_r = _render(rng, r, self.communes[r.commune], None, text, None, t, 0, raw=True, channel=ch)
            self._emit(r, r.commune, t, text_r, cat, False, "warning", mid, 0.2, rank=i, channel=ch)

    def _ep_rumour(self, day0):
        """A rumour wave: several sincere people, same commune, similar words — nothing happened."""
        rng = self.rng
        code = self._pick_commune()
        c = self.communes[code]
        cat, variants = rng.choice(RUMOURS)
        filled = [self._fill(v, code) for v in variants]
        n = 2 + _poisson(rng, 2.5)
        at = _time_in_day(rng, day0, "awake")
        mid = f"m{len(self.matters)}"
        self.matters[mid] = dict(kind="rumour", cat=cat, code=code, when=at, n=0)
        pool = [r for r in self.by_commune[code] if r.kind in RUMOUR_PRONE]
        for i in range(n):
            r = (_wchoice(rng, pool, [x.activity * RUMOUR_PRONE[x.kind] for x in pool])
                 if pool and rng.random() < 0.6 else self._one_timer(code))
            t = at + dt.timedelta(minutes=rng.lognormvariate(math.log(90), 0.9))
            ch = self._channel(r, t)
            text = _render(rng, r, c, None, rng.choice(filled), None, t, r.detail, raw=rng.random() < 0.4, channel=ch)
            self._emit(r, code, t, text, cat, False, "rumour", mid, r.detail * 0.5, rank=i, channel=ch)

    def _turncoat_day(self, day0):
        rng = self.rng
        half = max(1, self.days // 2)
        for r in self.reporters:
            if not r.turncoat:
                continue
            if r.pre_rate is None:   # as active as before, at least a tip a month
                r.pre_rate = max(r.tips / half, 0.03)
            for _ in range(_poisson(rng, r.pre_rate * 0.9)):
                cats = r.cats or {"drugs": 1, "gambling": 1, "theft": 1}
                cat = _pick(rng, cats)
                claim = _claim(rng, self.communes[r.commune], cat, "real")   # worded like a real matter
                when = _time_in_day(rng, day0, CAT_PROFILE[cat])
                at = when + dt.timedelta(minutes=rng.lognormvariate(math.log(30), 0.8))
                self._single(r, r.commune, at, "turncoat", cat, rng.choice(claim["cores"]), claim=claim, when=when)

    # -- verdicts ---------------------------------------------------------------
    def _office(self, t: dt.datetime, urgent: bool) -> dt.datetime:
        rng = self.rng
        if urgent and rng.random() < 0.45:        # the night duty officer closes it at once
            return t
        for _ in range(10):
            wd, h = t.weekday(), t.hour + t.minute / 60
            if wd == 6 or (wd == 5 and h >= 11.5):
                t = (t + dt.timedelta(days=7 - wd)).replace(hour=7, minute=30) + dt.timedelta(minutes=rng.randrange(120))
                continue
            if h < 7:
                t = t.replace(hour=7, minute=15) + dt.timedelta(minutes=rng.randrange(120))
            elif 11.5 <= h < 13.5:
                t = t.replace(hour=13, minute=30) + dt.timedelta(minutes=rng.randrange(60))
            elif h >= 17:
                t = (t + dt.timedelta(days=1)).replace(hour=7, minute=15) + dt.timedelta(minutes=rng.randrange(150))
                continue
            return t
        return t

    def _verdicts(self) -> list[dict]:
        rng = self.rng
        post = {code: dict(diligence=rng.uniform(0.7, 1.25), strict=rng.uniform(0.02, 0.12)) for code in self.communes}
        by_matter: dict[str, list[dict]] = {}
        for t in self.tips:
            by_matter.setdefault(t["matter"], []).append(t)
        out = []
        for mid, tips in by_matter.items():
            tips.sort(key=lambda x: x["event"]["occurred_at"])
            m = self.matters[mid]
            src = tips[0]["source"]
            code0 = tips[0]["code"]
            # one outcome per matter (the officers' conclusion), shared by all its tips
            if src == "real":
                miss = post[code0]["strict"] * {"drugs": 1.6, "gambling": 1.6, "theft": 1.2}.get(m["cat"], 0.6)
                outcome = "not_valuable" if rng.random() < miss else "valuable"
            else:
                if rng.random() < (0.04 if src == "grudge" else 0.015):
                    outcome = "valuable"
                elif src in ("prank",):
                    outcome = "false_report" if rng.random() < 0.8 else "not_valuable"
                elif src in ("grudge", "turncoat"):
                    outcome = "false_report" if rng.random() < 0.6 else "not_valuable"
                elif src == "rumour":
                    outcome = "false_report" if rng.random() < 0.55 else "not_valuable"
                elif src in ("misperception", "overreport"):
                    outcome = "not_valuable" if rng.random() < 0.9 else "false_report"
                else:
                    outcome = "not_valuable"
            for i, t in enumerate(tips):
                ev = t["event"]
                p = JUDGE_BASE[src] * (1.0 if i == 0 else 0.45)
                p *= JUDGE_CHANNEL[ev["channel"]] * (0.8 if ev["channel"] == self.new_channel else 1.0)
                p *= (0.75 + 0.5 * t["spec"]) * post[t["code"]]["diligence"]
                if rng.random() >= min(0.95, p):
                    continue
                verdict = outcome
                if i > 0 and rng.random() < 0.45:
                    verdict = "duplicate"
                cat = t["cat"] or "other"
                tt = dt.datetime.fromisoformat(ev["occurred_at"])
                if (src == "real" or src == "minor") and cat in VERDICT_DELAY_H:
                    hours = rng.uniform(*VERDICT_DELAY_H[cat])     # surveillance, raids, hụi books take days
                elif src == "real" or src == "minor":
                    hours = rng.lognormvariate(math.log(4), 0.9)
                else:
                    hours = rng.lognormvariate(math.log(20), 1.0)
                at = self._office(tt + dt.timedelta(hours=hours), cat in URGENT and src in ("real", "minor", "prank"))
                if at <= tt:
                    at = tt + dt.timedelta(minutes=30)
                out.append(dict(tip=t, verdict=verdict, at=at, code=t["code"], matter=m))
        out = [v for v in out if v["at"] < self.t_end]     # not judged yet when the period ends
        # officers' plain mistakes on top: flip exactly that fraction of the verdicts (not the "duplicate" ones)
        flippable = [v for v in out if v["verdict"] != "duplicate"]
        k = int(round(self.wrong * len(flippable)))
        frng = random.Random(f"{self.seed}/wrong-verdicts")
        for v in frng.sample(flippable, k) if k else []:
            v["flipped"] = True
            if v["verdict"] == "valuable":
                v["verdict"] = "not_valuable" if frng.random() < 0.7 else "false_report"
            else:
                v["verdict"] = "valuable"
        events = []
        nrng = random.Random(f"{self.seed}/verdict-ids")
        for v in out:
            ev = {"type": "feedback", "event_id": _uuid(nrng), "occurred_at": v["at"].isoformat(timespec="seconds"),
                  "commune_code": v["code"], "tip_event_id": v["tip"]["event"]["event_id"], "verdict": v["verdict"]}
            if nrng.random() < 0.6:
                notes = VERDICT_NOTES[v["verdict"]]
                ev["note"] = notes[int(nrng.random() * len(notes))].format(n=max(2, v["matter"].get("n") or 2))
            v["event"] = ev
            events.append(v)
        return events

    def run(self):
        for d in range(self.days):
            self._day(d)
        verdicts = self._verdicts()
        rows = [(t["event"]["occurred_at"], 0, t["event"]) for t in self.tips]
        rows += [(v["event"]["occurred_at"], 1, v["event"]) for v in verdicts]
        rows.sort(key=lambda x: (dt.datetime.fromisoformat(x[0]), x[1], x[2]["event_id"]))
        events = [r[2] for r in rows]
        meta = {
            "tips": {t["event"]["event_id"]: dict(reporter=t["reporter"].rid, reporter_kind=t["reporter"].kind,
                                                  turncoat=t["reporter"].turncoat, source=t["source"],
                                                  matter=t["matter"], rank=t["rank"], specificity=round(t["spec"], 3))
                     for t in self.tips},
            "verdicts": {v["event"]["event_id"]: dict(tip=v["tip"]["event"]["event_id"], flipped=v.get("flipped", False))
                         for v in verdicts},
            "reporters": {r.rid: dict(kind=r.kind, commune=r.commune, turncoat=r.turncoat, adopts_new=r.adopts_new,
                                      tips=r.tips) for r in self.reporters if r.tips},
        }
        return events, dict(self.truth), meta


def generate_with_meta(seed: int, days: int = 60, tips_per_day: float = 40, *, wrong_verdicts: float = 0.0,
                       turncoat_share: float = 0.0, valuable_share: float | None = None,
                       new_channel: str | None = None, commune_codes: list[int] | None = None,
                       start: str = "2025-03-01") -> tuple[list[dict], dict[str, bool], dict]:
    """Like :func:`generate`, plus hidden per-tip facts (reporter kind, source, turncoat, flipped verdicts)."""
    return _Gen(seed, days, tips_per_day, wrong_verdicts, turncoat_share, valuable_share, new_channel,
                commune_codes, start).run()


def generate(seed: int, days: int = 60, tips_per_day: float = 40, *, wrong_verdicts: float = 0.0,
             turncoat_share: float = 0.0, valuable_share: float | None = None, new_channel: str | None = None,
             commune_codes: list[int] | None = None, start: str = "2025-03-01") -> tuple[list[dict], dict[str, bool]]:
    """Generate tips and officers' verdicts for one province.

    Returns ``(events, truth)``: contract dicts (``tip`` and ``feedback``) sorted by ``occurred_at``, and
    tip ``event_id`` -> whether the matter behind the tip was real and worth police action.
    """
    events, truth, _ = generate_with_meta(seed, days, tips_per_day, wrong_verdicts=wrong_verdicts,
                                          turncoat_share=turncoat_share, valuable_share=valuable_share,
                                          new_channel=new_channel, commune_codes=commune_codes, start=start)
    return events, truth


def summarize(events: list[dict], truth: dict[str, bool], meta: dict | None = None) -> dict:
    tips = [e for e in events if e["type"] == "tip"]
    fb = [e for e in events if e["type"] == "feedback"]
    judged = {e["tip_event_id"] for e in fb}
    contacts = {e.get("reporter_contact") for e in tips if e.get("reporter_contact") and not e.get("anonymous")}
    chans: dict[str, int] = {}
    for e in tips:
        chans[e["channel"]] = chans.get(e["channel"], 0) + 1
    verdicts: dict[str, int] = {}
    for e in fb:
        verdicts[e["verdict"]] = verdicts.get(e["verdict"], 0) + 1
    out = {"tips": len(tips), "verdicts": len(fb), "tips_judged_share": round(len(judged) / max(1, len(tips)), 3),
           "valuable_share": round(sum(truth.values()) / max(1, len(truth)), 3),
           "reporters_named": len(contacts), "anonymous_tips": sum(1 for e in tips if e.get("anonymous")),
           "channels": dict(sorted(chans.items(), key=lambda x: -x[1])), "verdict_counts": verdicts}
    if meta:
        nd = [e for e in fb if e["verdict"] != "duplicate"]
        agree = sum(1 for e in nd if (e["verdict"] == "valuable") == truth[e["tip_event_id"]])
        out["verdict_agreement_with_truth"] = round(agree / max(1, len(nd)), 3)
        out["flipped_verdicts"] = sum(1 for v in meta["verdicts"].values() if v["flipped"])
        kinds: dict[str, list[int]] = {}
        for eid, m in meta["tips"].items():
            k = kinds.setdefault(m["reporter_kind"], [0, 0])
            k[0] += 1
            k[1] += truth[eid]
        out["by_reporter_kind"] = {k: {"tips": v[0], "valuable": round(v[1] / v[0], 2)} for k, v in sorted(kinds.items())}
        out["reporters_by_kind"] = {}
        for r in meta["reporters"].values():
            out["reporters_by_kind"][r["kind"]] = out["reporters_by_kind"].get(r["kind"], 0) + 1
        out["turncoats_with_tips"] = sum(1 for r in meta["reporters"].values() if r["turncoat"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Population B: independent tip/verdict generator for binhyen")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--tips-per-day", type=float, default=40)
    ap.add_argument("--wrong-verdicts", type=float, default=0.0)
    ap.add_argument("--turncoat-share", type=float, default=0.0)
    ap.add_argument("--valuable-share", type=float, default=None)
    ap.add_argument("--new-channel", choices=CHANNELS, default=None)
    ap.add_argument("--communes", type=str, default=None, help="comma-separated 2025 commune codes of one province")
    ap.add_argument("--start", default="2025-03-01")
    ap.add_argument("--out", required=True, help="JSONL file of contract events")
    ap.add_argument("--truth", required=True, help="JSON file: tip event_id -> truly valuable")
    ap.add_argument("--meta", default=None, help="optional JSON file with hidden per-tip facts (for diagnosis only)")
    ap.add_argument("--summary", action="store_true", help="print counts to stderr")
    a = ap.parse_args(argv)
    codes = [int(x) for x in a.communes.split(",")] if a.communes else None
    events, truth, meta = generate_with_meta(a.seed, a.days, a.tips_per_day, wrong_verdicts=a.wrong_verdicts,
                                             turncoat_share=a.turncoat_share, valuable_share=a.valuable_share,
                                             new_channel=a.new_channel, commune_codes=codes, start=a.start)
    with open(a.out, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    with open(a.truth, "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False, indent=0)
    if a.meta:
        with open(a.meta, "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
    if a.summary:
        import sys
        print(json.dumps(summarize(events, truth, meta), ensure_ascii=False, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
