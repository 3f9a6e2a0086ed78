"""Vietnam's 2025 two-tier geography (34 provinces, 3,321 communes) and legacy codes.

The 2025 list comes from `vietnam-provinces`; pre-2025 ward codes are mapped to it with
the conversion tables of `vietnamadminunits` (old province/district/ward -> new ward),
joined to `vietnam-provinces` by province code and ward name because the two packages
disagree on a few codes. Where an old ward was split, the package's default successor is used.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from vietnam_provinces import Province, Ward


@dataclass(frozen=True)
class Commune:
    code: int
    name: str
    province_code: int
    province_name: str


# Old and new tone-mark placement ("Hoà"/"Hòa", "Thuỷ"/"Thủy"): the two packages use both.
_TONE_PAIRS = {"oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa", "oè": "òe", "oé": "óe", "oẻ": "ỏe",
               "oẽ": "õe", "oẹ": "ọe", "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy"}


def name_key(name: str) -> str:
    """How the two packages' names of one commune agree, diacritics kept: eight pairs of communes
    of one province differ by them alone (Văn Lang / Văn Lăng, Tân Thành / Tân Thạnh); only the
    tone-mark placement, apostrophes, dashes and spaces are evened out."""
    key = re.sub(r"\s+", " ", re.sub(r"\s*[-\u2013\u2014]\s*", " - ", re.sub(
        r"[\u2018\u2019\u02bc`\u00b4']", "", unicodedata.normalize("NFC", name).lower()))).strip()
    for old, new in _TONE_PAIRS.items():
        key = key.replace(old, new)
    return key


def _fold(name: str) -> str:
    """Lower-case, diacritics and separators removed: 'Phường Láng Tròn' -> 'phuonglangtron'."""
    decomposed = unicodedata.normalize("NFD", name.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if ch.isalnum() and ch.isascii())


@cache
def communes() -> dict[int, Commune]:
    provinces = {int(p.code): p.name for p in Province.iter_all()}
    return {
        int(w.code): Commune(int(w.code), w.name, int(w.province_code), provinces[int(w.province_code)])
        for w in Ward.iter_all()
    }


@cache
def commune_kinds() -> dict[int, str]:
    """Commune code -> its kind as written in Vietnamese: xã, phường or đặc khu."""
    names = {"XA": "xã", "PHUONG": "phường", "DAC_KHU": "đặc khu"}
    return {int(w.code): names.get(w.division_type.name, w.division_type.name.lower()) for w in Ward.iter_all()}


def commune(code: int) -> Commune | None:
    return communes().get(code)


@cache
def provinces() -> dict[int, str]:
    return {int(p.code): p.name for p in Province.iter_all()}


def find_province(name_or_code: str) -> int | None:
    """Province code from a code ('96'), a name ('Cà Mau') or a folded name ('ca mau')."""
    if name_or_code.strip().isdigit():
        code = int(name_or_code)
        return code if code in provinces() else None
    wanted = _fold(name_or_code)
    for code, name in provinces().items():
        folded = _fold(name)
        if wanted in (folded, folded.removeprefix("tinh"), folded.removeprefix("thanhpho")):
            return code
    return None


def communes_of_province(province_code: int) -> list[Commune]:
    return sorted((c for c in communes().values() if c.province_code == province_code), key=lambda c: c.code)


def admin_units_data() -> Path:
    """`vietnamadminunits`' data folder (its SQLite dataset and conversion tables), located without
    importing the package: its import parses 4 MB of JSON we do not need."""
    spec = find_spec("vietnamadminunits")
    assert spec is not None and spec.submodule_search_locations, "vietnamadminunits is not installed"
    return Path(spec.submodule_search_locations[0]) / "data"


@cache
def legacy_to_2025() -> dict[int, int]:
    """Pre-2025 ward code -> 2025 commune code (10,035 of 10,040 old wards)."""
    data = admin_units_data()
    tables = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    by_name = {(c.province_code, name_key(c.name)): c.code for c in communes().values()}

    old_to_new_key: dict[str, tuple[str, str]] = {}
    for new_province, wards in tables["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, old_keys in wards.items():
            for old_key in old_keys:
                old_to_new_key[old_key] = (new_province, new_ward)
    for new_province, splits in tables["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, successors in splits.items():
            default = next((s["newWardKey"] for s in successors if s["isDefaultNewWard"]), None)
            if default and old_key not in old_to_new_key:
                old_to_new_key[old_key] = (new_province, default)

    db = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True)
    try:
        new_code = {
            (province_key, ward_key): by_name.get((int(province_code), name_key(ward)))
            for province_key, ward_key, province_code, ward in db.execute(
                "SELECT provinceKey, wardKey, provinceCode, ward FROM admin_units"
            )
        }
        legacy_rows = db.execute(
            "SELECT provinceKey, districtKey, wardKey, wardCode FROM admin_units_legacy"
        ).fetchall()
    finally:
        db.close()
    mapping = {}
    for province_key, district_key, ward_key, ward_code in legacy_rows:
        new_key = old_to_new_key.get(f"{province_key}_{district_key}_{ward_key}")
        code = new_code.get(new_key) if new_key else None
        if code is not None:
            mapping[int(ward_code)] = code
    return mapping
