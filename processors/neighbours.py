"""Which 2025 communes share a border: an approximation from the points the geography packages ship.

No package on PyPI, npm or Debian ships the 2025 commune polygons or an adjacency list
(tests/data/cases/ADJACENCY_RESEARCH.md). `vietnamadminunits` ships a point and an area for each
2025 commune and a geocoded point for each pre-2025 ward, and says which 2025 commune each old
ward went into whole. The old ward points trace each new commune's shape, so a Delaunay
triangulation of all the points, each labelled with its 2025 commune, joins communes that face
each other; a pair is kept when their own points are at most 2·(r1 + r2) apart (r: the radius of
a disc of the commune's area). Scored against the 2025 polygons (a GitHub dataset no registry
carries, used only to score): precision 0.893, recall 0.911 nationwide, 96 % of all border
length found; nine in ten wrong pairs are communes two steps apart. Good enough to say which
posts an incident near a border concerns; not a map.

The pairs are computed from the pinned packages and committed (`neighbours.v1.json`, regenerated
by `python -m processors.neighbours --write`; a test checks it is fresh), so they change only
when a pin does.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
from functools import cache
from pathlib import Path

from processors.geography import admin_units_data, communes, name_key

PAIRS_FILE = Path(__file__).with_name("neighbours.v1.json")
MAX_RATIO = 2.0  # centre distance / (r1 + r2): the research's operating point (a missed neighbour costs more)
BAD_GEOCODE = 3.0  # an old ward point farther than this many radii from its commune's is a wrong geocode


@cache
def _pairs() -> dict[tuple[int, int], float]:
    rows = json.loads(PAIRS_FILE.read_text(encoding="utf-8"))["pairs"]
    return {(a, b): ratio for a, b, ratio in rows}


@cache
def _adjacent() -> dict[int, frozenset[int]]:
    around: dict[int, set[int]] = {}
    for a, b in _pairs():
        around.setdefault(a, set()).add(b)
        around.setdefault(b, set()).add(a)
    return {code: frozenset(codes) for code, codes in around.items()}


def neighbours(code: int) -> frozenset[int]:
    """The communes that share a border with `code` (empty for an island, or an unknown code)."""
    return _adjacent().get(code, frozenset())


def are_neighbours(a: int, b: int) -> bool:
    return (min(a, b), max(a, b)) in _pairs()


def compute() -> list[tuple[int, int, float]]:
    """(code, code, distance ratio) of every neighbouring pair, from the installed packages."""
    import numpy as np
    from scipy.spatial import Delaunay

    data = admin_units_data()
    ours = {(c.province_code, name_key(c.name)): c.code for c in communes().values()}
    db = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True)
    try:
        units = db.execute("SELECT provinceKey, wardKey, provinceCode, ward, wardLat, wardLon, wardAreaKm2 "
                           "FROM admin_units ORDER BY wardCode").fetchall()
        legacy = db.execute("SELECT provinceKey, districtKey, wardKey, wardLat, wardLon FROM admin_units_legacy "
                            "WHERE wardLat IS NOT NULL ORDER BY wardCode").fetchall()
    finally:
        db.close()
    code = [ours[(int(province), name_key(name))] for _, _, province, name, *_ in units]
    index = {(province_key, ward_key): i for i, (province_key, ward_key, *_) in enumerate(units)}
    province = np.array([int(row[2]) for row in units])
    lat = np.array([row[4] for row in units], dtype=float)
    lon = np.array([row[5] for row in units], dtype=float)
    area = np.array([row[6] if row[6] else np.nan for row in units], dtype=float)
    for p in set(province):  # four communes have no area: their province's median
        inside = province == p
        area[inside & ~(area > 0)] = np.nanmedian(area[inside & (area > 0)])
    radius = np.sqrt(area / math.pi)

    tables = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    merged_into = {old: index[(province_key, ward_key)]
                   for province_key, wards in tables["DICT_PROVINCE_WARD_NO_DIVIDED"].items()
                   for ward_key, olds in wards.items() for old in olds}
    old = [(merged_into[f"{p}_{d}_{w}"], la, lo) for p, d, w, la, lo in legacy if f"{p}_{d}_{w}" in merged_into]
    old_label = np.array([o[0] for o in old])
    points, old_points = _km(lat, lon), _km(np.array([o[1] for o in old]), np.array([o[2] for o in old]))
    kept = np.hypot(*(old_points - points[old_label]).T) / radius[old_label] <= BAD_GEOCODE
    label = np.r_[np.arange(len(units)), old_label[kept]]

    found: dict[tuple[int, int], float] = {}
    for simplex in Delaunay(np.r_[points, old_points[kept]]).simplices:
        for u, v in ((simplex[0], simplex[1]), (simplex[1], simplex[2]), (simplex[0], simplex[2])):
            i, j = sorted((int(label[u]), int(label[v])))
            if i != j and (i, j) not in found:
                found[(i, j)] = _haversine_km(lat[i], lon[i], lat[j], lon[j]) / (radius[i] + radius[j])
    return sorted((min(code[i], code[j]), max(code[i], code[j]), round(float(ratio), 3))
                  for (i, j), ratio in found.items() if ratio <= MAX_RATIO)


def _km(lat, lon):  # type: ignore[no-untyped-def]
    """A sinusoidal projection around 106°E, in km: good enough for a neighbour graph."""
    import numpy as np

    return np.c_[(lon - 106.0) * 111.320 * np.cos(np.radians(lat)), lat * 110.574]


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (lat1, lon1, lat2, lon2))
    a = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def render(pairs: list[tuple[int, int, float]]) -> str:
    head = ("Neighbouring 2025 communes (vietnam-provinces codes), with their centre distance over the sum of "
            "their radii; approximate: see processors/neighbours.py. Regenerate: python -m processors.neighbours --write")
    lines = ",\n".join(json.dumps(list(pair)) for pair in pairs)
    return f'{{"doc": {json.dumps(head)},\n"pairs": [\n{lines}\n]}}\n'


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Compute the commune neighbour pairs from the pinned packages.")
    parser.add_argument("--write", action="store_true", help=f"write {PAIRS_FILE.name} (else print how many)")
    pairs = compute()
    if parser.parse_args().write:
        PAIRS_FILE.write_text(render(pairs), encoding="utf-8")
    print(f"{len(pairs)} pairs of neighbouring communes")
