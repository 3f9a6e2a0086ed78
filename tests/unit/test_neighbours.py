"""Commune neighbours (processors/neighbours.py): the committed pairs are what the pinned packages
give, the border pairs of the cases corpus (written by a helper from the background reports) are
neighbours, far communes and islands are not, and the package's own split wards mostly are."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from processors.geography import admin_units_data, communes, name_key
from processors.neighbours import PAIRS_FILE, are_neighbours, compute, neighbours, render

CASES = Path(__file__).parents[1] / "data" / "cases" / "corpus.jsonl"


def code_of(name: str, province: int) -> int:
    return next(c.code for c in communes().values() if c.name == name and c.province_code == province)


def test_the_committed_pairs_are_what_the_pinned_packages_give() -> None:
    assert PAIRS_FILE.read_text(encoding="utf-8") == render(compute()), \
        "regenerate: .venv/bin/python -m processors.neighbours --write"


def test_every_border_case_of_the_corpus_joins_neighbours() -> None:
    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    communes_of: dict[str, set[int]] = {}
    for row in rows:
        if row["kind"] == "border":
            communes_of.setdefault(row["case"], set()).add(row["commune_code"])
    pairs = [tuple(sorted(codes)) for codes in communes_of.values() if len(codes) == 2]
    assert len(pairs) == 5
    assert [pair for pair in pairs if not are_neighbours(*pair)] == []


def test_far_communes_and_islands_are_no_neighbours_and_the_relation_is_symmetric() -> None:
    hoan_kiem = code_of("Phường Hoàn Kiếm", 1)
    assert {code_of("Phường Cửa Nam", 1), code_of("Phường Hồng Hà", 1)} <= neighbours(hoan_kiem)
    assert not are_neighbours(hoan_kiem, code_of("Phường Tây Hồ", 1))  # Ba Đình and Hồng Hà lie between
    assert not are_neighbours(hoan_kiem, code_of("Xã Sóc Sơn", 1))
    for island, province in (("Đặc khu Côn Đảo", 79), ("Đặc khu Phú Quốc", 91), ("Đặc khu Bạch Long Vĩ", 31),
                             ("Đặc khu Lý Sơn", 51)):
        assert neighbours(code_of(island, province)) == frozenset()
    for code, around in ((c, neighbours(c)) for c in list(communes())[:200]):
        assert all(code in neighbours(other) and are_neighbours(other, code) for other in around)
    assert neighbours(99_999_999) == frozenset()


def test_most_communes_that_share_a_split_ward_are_neighbours() -> None:
    """Two 2025 communes that each took part of one pre-2025 ward share its former ground. The
    package's table of two-way splits has some wrong successors (18 of 288 point 10–100 km away,
    tests/data/cases/ADJACENCY_RESEARCH.md), so most, not all."""
    data = admin_units_data()
    tables = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    db = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True)
    ours = {(c.province_code, name_key(c.name)): c.code for c in communes().values()}
    code = {(p, w): ours[(int(province), name_key(name))]
            for p, w, province, name in db.execute("SELECT provinceKey, wardKey, provinceCode, ward FROM admin_units")}
    db.close()
    pairs = set()
    for province_key, splits in tables["DICT_PROVINCE_WARD_DIVIDED"].items():
        for successors in splits.values():
            into = sorted({code[(province_key, s["newWardKey"])] for s in successors})
            if len(into) == 2:
                pairs.add(tuple(into))
    shared = sum(are_neighbours(*pair) for pair in pairs)
    assert len(pairs) >= 280 and shared / len(pairs) >= 0.85, (shared, len(pairs))  # 0.87 (research: 0.872)
