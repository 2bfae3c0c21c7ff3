"""Address normalisation, parsing, matching, and precision/recall on perturbed addresses."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.address import Gazetteer, evaluate, normalize, parse_address, perturb_address


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("石佛路１２号", "石佛路12号"),
        ("锦华小区三号楼", "锦华小区3号楼"),
        ("锦华小区十二栋", "锦华小区12号楼"),
        ("锦华小区二十一幢", "锦华小区21号楼"),
        ("锦华小区3座 两单元", "锦华小区3号楼2单元"),
        ("锦华小区5#楼", "锦华小区5号楼"),
        ("石佛路12号院", "石佛路12号"),
        ("锦华小区 3 号楼，2门", "锦华小区3号楼2单元"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


@pytest.mark.parametrize(
    ("text", "road", "number", "compound", "building", "unit"),
    [
        ("高新区石佛办事处石佛路12号院3号楼2单元", "石佛路", 12, None, 3, 2),
        ("锦华小区三号楼", None, None, "锦华小区", 3, None),
        ("石佛路12号", "石佛路", 12, None, None, None),
        ("石佛路12号 锦华小区3号楼", "石佛路", 12, "锦华小区", 3, None),
        ("锦华小区3号楼 石佛路12号", "石佛路", 12, "锦华小区", 3, None),
        ("郑州市高新区石佛街道杜岭社区西四环8号枫林苑2栋1单元602室", "西四环", 8, "枫林苑", 2, 1),
    ],
)
def test_parse_address(
    text: str,
    road: str | None,
    number: int | None,
    compound: str | None,
    building: int | None,
    unit: int | None,
) -> None:
    p = parse_address(text)
    assert (p.road, p.house_number, p.compound, p.building_no, p.unit) == (
        road,
        number,
        compound,
        building,
        unit,
    )


def test_admin_prefix_is_split_off() -> None:
    p = parse_address("郑州市高新区石佛办事处杜岭社区锦华小区3号楼")
    assert p.district == "高新区" and p.community == "杜岭社区"
    assert p.compound == "锦华小区" and p.building_no == 3


@pytest.fixture(scope="module")
def buildings(fixture_district: Path) -> pd.DataFrame:
    b = gpd.read_file(fixture_district / "district.gpkg", layer="buildings")
    pt = b.geometry.representative_point()
    return pd.DataFrame(b.drop(columns="geometry")).assign(lon=pt.x, lat=pt.y)


@pytest.fixture(scope="module")
def gaz(buildings: pd.DataFrame) -> Gazetteer:
    return Gazetteer.from_buildings(buildings)


def test_exact_addresses_resolve_to_their_building(gaz: Gazetteer, buildings: pd.DataFrame) -> None:
    for bid, addr in zip(buildings["building_id"], buildings["address"], strict=True):
        got = gaz.resolve(addr)
        assert got is not None and got.building_id == bid, addr


def test_typos_and_variants_still_match(gaz: Gazetteer, buildings: pd.DataFrame) -> None:
    row = buildings.iloc[7]
    road, comp = row["road_name"], row["compound_name"]
    typo = "花" + comp[1:] if comp[0] != "花" else "华" + comp[1:]
    text = f"{road}{row['house_number']}号{typo}{row['building_no']}栋"
    best = gaz.match(text)[0]
    assert best.building_id == row["building_id"] and best.level == "building"
    assert best.matched["compound"] == comp


def test_gate_without_building_is_not_resolved_but_offered(
    gaz: Gazetteer, buildings: pd.DataFrame
) -> None:
    row = buildings.iloc[3]
    text = f"{row['road_name']}{row['house_number']}号"
    assert gaz.resolve(text) is None
    cands = gaz.match(text)
    assert cands and cands[0].level == "compound"
    assert cands[0].matched["compound"] == row["compound_name"]


def test_conflicting_gate_and_compound_are_not_resolved(
    gaz: Gazetteer, buildings: pd.DataFrame
) -> None:
    a, b = (
        buildings.iloc[0],
        buildings[buildings["compound_name"] != buildings.iloc[0]["compound_name"]].iloc[0],
    )
    text = f"{b['road_name']}{b['house_number']}号{a['compound_name']}{a['building_no']}号楼"
    assert gaz.resolve(text) is None


def test_unknown_addresses_match_nothing(gaz: Gazetteer) -> None:
    assert gaz.match("火星大道999号 不存在小区88号楼") == []
    assert gaz.resolve("北京市朝阳区") is None


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="石佛路锦华小区号楼栋一二三十两0123456789１２３ 单元室#", max_size=30))
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


def test_precision_and_recall_on_perturbed_addresses(
    gaz: Gazetteer, buildings: pd.DataFrame
) -> None:
    rng = np.random.default_rng(2026)
    labelled = [
        (perturb_address(addr, rng), int(bid))
        for bid, addr in zip(buildings["building_id"], buildings["address"], strict=True)
        for _ in range(9)
    ]
    assert len(labelled) >= 500
    assert (
        sum(t != a for (t, _), a in zip(labelled, np.repeat(buildings["address"], 9), strict=True))
        > 400
    )
    result = evaluate(gaz, labelled)
    print(f"address eval: n={result.n} precision={result.precision:.3f} recall={result.recall:.3f}")
    assert result.precision >= 0.98
    assert result.recall >= 0.85
