"""Address geocoding for hotline and WeChat reports: normalise, parse, match to buildings.

Residents report an address, not a coordinate: ``高新区石佛办事处石佛路12号院3号楼2单元``,
``锦华小区三号楼``, ``锦花小区3栋`` (typo), ``石佛路１２号`` (full-width). The gazetteer is
built from the buildings table (road, gate number, compound (小区), building number); names
are matched fuzzily with rapidfuzz, numbers exactly. Only a confident building-level answer is
accepted; everything else goes to the needs-location queue for a person to place.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
SUFFIXES = ("小区", "花园", "家园", "新村", "公寓", "苑", "院", "城", "广场")
_NUM_CN = re.compile(r"[零〇一二两三四五六七八九十百千]+(?=号|栋|幢|座|楼|单元|门|室|层|#)")
_ADMIN = re.compile(
    r"^(?:[\u4e00-\u9fa5]{2,4}省)?(?:[\u4e00-\u9fa5]{2,4}市)?"
    r"(?:高新技术产业开发区|高新区|[\u4e00-\u9fa5]{1,4}(?<![小社园])区)?"
    r"(?:[\u4e00-\u9fa5]{1,6}(?:办事处|街道))?(?:[\u4e00-\u9fa5]{1,6}社区)?"
)
_ROAD = re.compile(
    r"((?:(?![楼号元室])[\u4e00-\u9fa5]){1,8}?(?:大道|路|街|巷|胡同|环|道|高速))(\d+)号(?!楼)"
)
_ROAD_ONLY = re.compile(r"([\u4e00-\u9fa5]{1,8}?(?:大道|路|街|巷|胡同|环|道|高速))(?!\d)")
_BUILDING = re.compile(r"(\d+)号楼")
_UNIT = re.compile(r"(\d+)单元")
_ROOM = re.compile(r"(\d+)室?$")


def _cn_number(text: str) -> int:
    total, current = 0, 0
    for ch in text:
        if ch in CN_DIGITS:
            current = CN_DIGITS[ch]
        elif ch in CN_UNITS:
            total += (current or 1) * CN_UNITS[ch]
            current = 0
    return total + current


def normalize(text: str) -> str:
    """NFKC, no spaces or punctuation, Arabic numbers, one spelling for building and unit."""
    s = unicodedata.normalize("NFKC", text or "")
    s = re.sub(r"[\s,，。.、;；:：()（）\[\]【】\-—_/]+", "", s)
    s = _NUM_CN.sub(lambda m: str(_cn_number(m.group(0))), s)
    s = re.sub(r"(\d+)#楼?", r"\1号楼", s)
    s = re.sub(r"(\d+)(?:号楼|栋|幢|座|楼)(?!\d*层)", r"\1号楼", s)
    s = re.sub(r"(\d+)号院", r"\1号", s)
    s = re.sub(r"(\d+)(?:单元|门)", r"\1单元", s)
    return s


@dataclass(frozen=True)
class ParsedAddress:
    """The parts found in an address; None where a part is missing."""

    district: str | None = None
    street_office: str | None = None
    community: str | None = None
    road: str | None = None
    house_number: int | None = None
    compound: str | None = None
    building_no: int | None = None
    unit: int | None = None
    room: str | None = None
    rest: str = ""


def parse_address(text: str) -> ParsedAddress:
    """Split a Chinese address into admin prefix, road + number, compound, building, unit, room."""
    s = normalize(text)
    admin = _ADMIN.match(s)
    head = admin.group(0) if admin else ""
    s = s[len(head) :]
    rest = re.sub(r"^.*?市", "", head)
    district = (
        m.group(0) if (m := re.match(r"高新技术产业开发区|高新区|[^区]{1,4}区", rest)) else None
    )
    rest = rest[len(district or "") :]
    office = m.group(0) if (m := re.match(r"[\u4e00-\u9fa5]{1,6}?(?:办事处|街道)", rest)) else None
    rest = rest[len(office or "") :]
    community = m.group(0) if (m := re.match(r"[\u4e00-\u9fa5]{1,6}?社区", rest)) else None
    road = number = None
    if m := _ROAD.search(s):
        road, number = m.group(1), int(m.group(2))
        s = s[: m.start()] + s[m.end() :]
    elif m := _ROAD_ONLY.match(s):
        road = m.group(1)
        s = s[m.end() :]
    building = unit = None
    room = None
    if m := _BUILDING.search(s):
        building = int(m.group(1))
        compound_text, tail = s[: m.start()], s[m.end() :]
    else:
        compound_text, tail = s, ""
    if m := _UNIT.search(tail):
        unit = int(m.group(1))
        tail = tail[: m.start()] + tail[m.end() :]
    if m := _ROOM.search(tail):
        room, tail = m.group(1), tail[: m.start()]
    compound = compound_text or None
    return ParsedAddress(
        district, office, community, road, number, compound, building, unit, room, tail
    )


def _stem(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Candidate:
    """One ranked answer: a building, or only a compound or road when that is all we know."""

    building_id: int | None
    score: float
    level: str
    matched: dict[str, object] = field(default_factory=dict)
    lon: float | None = None
    lat: float | None = None
    micro_code: str | None = None


@dataclass
class Gazetteer:
    """Buildings indexed by compound, gate (road + number) and building number."""

    buildings: pd.DataFrame
    compounds: list[str]
    stems: list[str]
    roads: list[str]
    by_compound: dict[str, dict[int, int]]
    gates: dict[tuple[str, int], set[str]]
    compound_gate: dict[str, set[tuple[str, int]]]

    @classmethod
    def from_buildings(cls, df: pd.DataFrame) -> Gazetteer:
        """Index a buildings table (building_id, road_name, house_number, compound_name,
        building_no, lon, lat, micro_code)."""
        b = df.reset_index(drop=True)
        by_compound: dict[str, dict[int, int]] = defaultdict(dict)
        gates: dict[tuple[str, int], set[str]] = defaultdict(set)
        compound_gate: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for i, (comp, no, road, num) in enumerate(
            zip(
                b["compound_name"], b["building_no"], b["road_name"], b["house_number"], strict=True
            )
        ):
            if isinstance(comp, str) and pd.notna(no):
                by_compound[comp][int(no)] = i
            if isinstance(road, str) and pd.notna(num) and isinstance(comp, str):
                gates[(road, int(num))].add(comp)
                compound_gate[comp].add((road, int(num)))
        compounds = sorted(by_compound)
        roads = sorted({r for r in b["road_name"] if isinstance(r, str)})
        return cls(
            b,
            compounds,
            [_stem(c) for c in compounds],
            roads,
            dict(by_compound),
            dict(gates),
            dict(compound_gate),
        )

    def _fuzzy(self, query: str, choices: list[str], limit: int) -> list[tuple[str, float]]:
        hits = process.extract(query, choices, scorer=fuzz.ratio, limit=limit, score_cutoff=40)
        return [(choices[i], float(s)) for _, s, i in hits]

    def match(self, text: str, *, limit: int = 5, min_score: float = 60.0) -> list[Candidate]:
        """Ranked candidates for a free-text address (best first); [] when nothing fits."""
        p = parse_address(text)
        evidence: dict[str, list[float]] = defaultdict(list)
        if p.compound:
            stem = _stem(p.compound)
            scores: dict[str, float] = {}
            for name, s in self._fuzzy(p.compound, self.compounds, 8):
                scores[name] = max(scores.get(name, 0.0), s)
            for st, s in self._fuzzy(stem, self.stems, 8):
                for name in (
                    c for c, cs in zip(self.compounds, self.stems, strict=True) if cs == st
                ):
                    scores[name] = max(scores.get(name, 0.0), s)
            for name, s in scores.items():
                evidence[name].append(s)
        road_hits = self._fuzzy(p.road, self.roads, 3) if p.road else []
        if p.road and p.house_number is not None:
            for road, s in road_hits:
                for comp in self.gates.get((road, p.house_number), ()):
                    if comp in evidence or not p.compound:
                        evidence[comp].append(s)
            if p.compound:
                for comp, ev in evidence.items():
                    gate_ok = any(
                        (r, p.house_number) in self.compound_gate.get(comp, ())
                        for r, _ in road_hits
                    )
                    if not gate_ok:
                        ev.append(0.0)  # the gate given belongs to another compound
        out: list[Candidate] = []
        for comp, ev in evidence.items():
            # Independent pieces of evidence that agree (name and gate) reinforce each other
            # (noisy-OR); a gate that belongs to another compound contributes 0 and the mean
            # then pulls the place down.
            place = (
                float(np.mean(ev))
                if min(ev) == 0.0 or len(ev) == 1
                else 100.0 * (1.0 - float(np.prod([1.0 - e / 100.0 for e in ev])))
            )
            rows = self.by_compound.get(comp, {})
            if p.building_no is not None and p.building_no in rows:
                r = self.buildings.iloc[rows[p.building_no]]
                out.append(self._building(r, place, comp, p))
            else:
                cut = 0.8 if p.building_no is not None else 0.9
                out.append(self._coarse("compound", comp, place * cut, list(rows.values())))
        if not evidence and road_hits:
            road, s = road_hits[0]
            idx = np.flatnonzero(self.buildings["road_name"].to_numpy() == road)
            out.append(self._coarse("road", road, s * 0.7, list(idx)))
        out = [c for c in out if c.score >= min_score]
        out.sort(key=lambda c: (-c.score, c.level != "building", c.building_id or 0))
        return out[:limit]

    def _building(self, r: pd.Series, score: float, comp: str, p: ParsedAddress) -> Candidate:
        matched: dict[str, object] = {"compound": comp, "building_no": int(r["building_no"])}
        if p.road:
            matched.update(road=r["road_name"], house_number=int(r["house_number"]))
        return Candidate(
            int(r["building_id"]),
            round(score, 1),
            "building",
            matched,
            float(r["lon"]),
            float(r["lat"]),
            r.get("micro_code"),
        )

    def _coarse(self, level: str, name: str, score: float, rows: list[int]) -> Candidate:
        part = self.buildings.iloc[rows]
        codes = part["micro_code"].dropna().unique() if len(part) else []
        return Candidate(
            None,
            round(score, 1),
            level,
            {level if level == "road" else "compound": name},
            float(part["lon"].mean()) if len(part) else None,
            float(part["lat"].mean()) if len(part) else None,
            str(codes[0]) if len(codes) == 1 else None,
        )

    def resolve(
        self, text: str, *, accept_score: float = 85.0, margin: float = 5.0
    ) -> Candidate | None:
        """The one building meant, when the match is confident and unambiguous; else None."""
        cands = self.match(text, limit=2, min_score=0.0)
        if not cands or cands[0].level != "building" or cands[0].score < accept_score:
            return None
        if len(cands) > 1 and cands[0].score - cands[1].score < margin:
            return None
        return cands[0]


_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_CN = "零一二三四五六七八九"


def _to_cn(n: int) -> str:
    if n < 10:
        return _CN[n]
    if n < 20:
        return "十" + (_CN[n % 10] if n % 10 else "")
    return _CN[n // 10] + "十" + (_CN[n % 10] if n % 10 else "")


def perturb_address(address: str, rng: np.random.Generator) -> str:
    """A realistic variant of a gazetteer address, as a resident might say or type it."""
    road_part, _, comp_part = address.partition(" ")
    m = re.match(r"(.+?)(\d+)号楼$", comp_part)
    comp, bno = (m.group(1), int(m.group(2))) if m else (comp_part, None)
    ops = rng.choice(10, size=int(rng.integers(1, 4)), replace=False)
    if 0 in ops and len(comp) > 2:  # typo in the compound name
        k = int(rng.integers(0, len(_stem(comp))))
        comp = (
            comp[:k] + "花" + comp[k + 1 :] if comp[k] != "花" else comp[:k] + "华" + comp[k + 1 :]
        )
    if 1 in ops:
        comp = _stem(comp)
    bword = str(rng.choice(["号楼", "栋", "幢", "座", "#楼"])) if 2 in ops else "号楼"
    bnum = _to_cn(bno) if (3 in ops and bno is not None and bno < 100) else str(bno)
    text = f"{comp}{bnum}{bword}" if bno is not None else comp
    if 4 not in ops:  # keep the road part unless dropped
        text = (road_part + " " if 9 in ops else road_part) + text
    if 5 in ops and 4 in ops:
        text = road_part  # only the gate: a compound-level answer at best
    if 6 in ops:
        text = "郑州市高新区石佛办事处" + text
    if 7 in ops:
        text += (
            f"{int(rng.integers(1, 4))}单元{int(rng.integers(1, 19))}0{int(rng.integers(1, 5))}室"
        )
    if 8 in ops:
        text = text.translate(_FULL)
    return text


@dataclass(frozen=True)
class EvalResult:
    """Precision (correct among resolved) and recall (correct among all) of ``resolve``."""

    n: int
    resolved: int
    correct: int
    precision: float
    recall: float
    failures: list[tuple[str, int, int | None]]


def evaluate(gazetteer: Gazetteer, labelled: Iterable[tuple[str, int]]) -> EvalResult:
    """Resolve every labelled address and count what came back right."""
    n = resolved = correct = 0
    failures: list[tuple[str, int, int | None]] = []
    for text, truth in labelled:
        n += 1
        got = gazetteer.resolve(text)
        if got is not None:
            resolved += 1
            if got.building_id == truth:
                correct += 1
                continue
        failures.append((text, truth, None if got is None else got.building_id))
    return EvalResult(
        n,
        resolved,
        correct,
        correct / resolved if resolved else 1.0,
        correct / n if n else 0.0,
        failures,
    )
