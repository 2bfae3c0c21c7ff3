"""Grid layer export / import over the API and 多网融合 on the fixture district.

Import files are built from the stored grids (a boundary moved between two siblings, a grid
cut in two, a spike, metres...), and the foreign department's layer from our 三级 grids
(pairs merged, shifted 3 m east, one strip re-cut), so every expected answer is known by
construction.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, box
from shapely.ops import split
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import metric_crs_for
from gis.exchange import FORMATS, read_layer, write_layer
from maps.assets import outside_urls

SUFFIX = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip", "kml": ".kml"}


def _frame(client: Any, level: str) -> gpd.GeoDataFrame:
    fc = client.get("/grids", params={"level": level}).json()
    frame = gpd.GeoDataFrame.from_features(fc["features"], crs=4326)
    frame["id"] = [int(f["id"]) for f in fc["features"]]
    return frame


def _pair(session: Session) -> tuple[str, str]:
    rec = session.execute(
        text(
            """
            SELECT a.code, b.code FROM grids a JOIN grids b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.level = 'micro'
             AND b.level = 'micro'
             AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.0005
            ORDER BY a.code, b.code LIMIT 1
            """
        )
    ).one()
    return str(rec[0]), str(rec[1])


def _version(session: Session, code: str) -> int:
    return int(
        session.execute(text("SELECT version FROM grids WHERE code = :c"), {"c": code}).scalar_one()
    )


def _households(session: Session, code: str) -> int:
    return int(
        session.execute(
            text("SELECT households FROM grids WHERE code = :c"), {"c": code}
        ).scalar_one()
    )


def _buildings_in(session: Session, code: str) -> int:
    return int(
        session.execute(
            text(
                "SELECT COALESCE(sum(b.households), 0) FROM buildings b, grids g "
                "WHERE g.code = :c AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom))"
            ),
            {"c": code},
        ).scalar_one()
    )


def _upload(frame: gpd.GeoDataFrame, fmt: str = "geojson", crs: str = "wgs84") -> tuple:
    cols = {c: frame[c] for c in ("code", "name", "level", "parent_code") if c in frame}
    out = gpd.GeoDataFrame(cols, geometry=frame.geometry.values, crs=4326)
    data = write_layer(out, fmt, crs=crs)
    return ("layer" + SUFFIX[fmt], data, FORMATS[fmt].media_type)


def _import(client: Any, frame: gpd.GeoDataFrame, **form: Any) -> Any:
    fmt = form.pop("fmt", "geojson")
    crs = form.pop("crs", "wgs84")
    data = {"crs": crs, **{k: str(v).lower() for k, v in form.items()}}
    return client.post("/grids/import", files={"file": _upload(frame, fmt, crs)}, data=data)


def _moved_boundary(client: Any, session: Session, share: float = 0.2):  # type: ignore[no-untyped-def]
    """Siblings a, b: b cut by a straight line at ``share`` of its extent from a's side, and
    the piece next to a given to a."""
    ca, cb = _pair(session)
    micro = _frame(client, "micro").set_index("code", drop=False)
    both = micro.loc[[ca, cb]]
    metric = both.to_crs(metric_crs_for(both))
    a, b = metric.geometry.iloc[0], metric.geometry.iloc[1]
    (ax, ay), (bx, by) = a.centroid.coords[0], b.centroid.coords[0]
    x0, y0, x1, y1 = b.bounds
    if abs(ax - bx) >= abs(ay - by):
        c = x0 + share * (x1 - x0) if ax < bx else x1 - share * (x1 - x0)
        line = LineString([(c, y0 - 1), (c, y1 + 1)])
    else:
        c = y0 + share * (y1 - y0) if ay < by else y1 - share * (y1 - y0)
        line = LineString([(x0 - 1, c), (x1 + 1, c)])
    pieces = list(split(b, line).geoms)
    near = [p for p in pieces if p.intersection(a.boundary).length > 1.0]
    strip = shapely.union_all(near)
    # the far pieces as split made them (b.difference(strip) can leave a collinear spike)
    a2 = a.union(strip)
    b2 = shapely.union_all([p for p in pieces if p.intersection(a.boundary).length <= 1.0])
    assert b2.geom_type == "Polygon" and a2.is_valid and b2.is_valid
    moved = metric.copy()
    moved["geometry"] = [a2, b2]
    return ca, cb, moved.to_crs(4326), strip.area


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_each_format_reads_back_with_every_grid(
    client: Any, session: Session, fmt: str
) -> None:
    r = client.get("/grids/export", params={"level": "micro", "format": fmt, "crs": "gcj02"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FORMATS[fmt].media_type)
    want_name = f"wangge_micro_gcj02{FORMATS[fmt].extension}"
    assert f'filename="{want_name}"' in r.headers["content-disposition"]
    layer = read_layer(r.content, want_name, crs="gcj02").frame
    stored = _frame(client, "micro").set_index("code")
    assert sorted(layer["code"]) == sorted(stored.index)
    assert set(layer["level"]) == {"micro"}
    for code, geom in zip(layer["code"], layer.geometry, strict=True):
        assert geom.hausdorff_distance(stored.geometry[code]) < 1e-7  # about 1 cm
    assert (
        client.get("/grids/export", params={"level": "micro", "format": "csv"}).status_code == 422
    )


def test_exported_file_imports_as_unchanged(client: Any, session: Session) -> None:
    r = client.get("/grids/export", params={"level": "grid", "format": "shp", "crs": "bd09"})
    before = session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one()
    out = client.post(
        "/grids/import",
        files={"file": ("grids.zip", r.content, "application/zip")},
        data={"crs": "bd09"},
    )
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["created"] == [] and body["replaced"] == []
    assert len(body["unchanged"]) == len(_frame(client, "grid"))
    assert session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one() == before


def test_moved_boundary_imports_as_new_versions_in_gcj02(client: Any, session: Session) -> None:
    ca, cb, moved, strip_m2 = _moved_boundary(client, session)
    assert strip_m2 > 50
    va, vb = _version(session, ca), _version(session, cb)
    total = _households(session, ca) + _households(session, cb)
    r = _import(client, moved, fmt="gpkg", crs="gcj02", reason="boundary survey")
    assert r.status_code == 200, r.text
    assert sorted(r.json()["replaced"]) == sorted([ca, cb]) and r.json()["created"] == []
    assert (_version(session, ca), _version(session, cb)) == (va + 1, vb + 1)
    ha, hb = _households(session, ca), _households(session, cb)
    assert ha + hb == total
    assert (ha, hb) == (_buildings_in(session, ca), _buildings_in(session, cb))
    assert r.json()["households"] == {ca: ha, cb: hb}
    gid = session.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": ca}).scalar_one()
    hist = client.get(f"/grids/{gid}/history").json()
    assert hist[-1]["operation"] == "reshape" and hist[-1]["edited_by"] == "test-admin"
    assert "import of layer.gpkg: boundary survey" in hist[-1]["reason"]
    stored = _frame(client, "micro").set_index("code").geometry[ca]
    assert stored.symmetric_difference(moved.geometry.iloc[0]).area < 1e-12  # < 0.01 m²


def test_a_file_breaking_the_hierarchy_is_refused_with_the_report(
    client: Any, session: Session
) -> None:
    ca, cb, moved, strip_m2 = _moved_boundary(client, session)
    va = _version(session, ca)
    r = _import(client, moved.iloc[:1])  # a takes the strip, b keeps it: they overlap
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "LayerRejectedError" and "hierarchy" in body["detail"]
    (overlap,) = [p for p in body["problems"] if p["kind"] == "overlap"]
    assert overlap["grids"] == ",".join(sorted([ca, cb]))
    assert overlap["area_m2"] == pytest.approx(strip_m2, rel=0.01)
    x, y = overlap["location"]
    assert moved.geometry.iloc[0].buffer(1e-6).contains(shapely.Point(x, y))
    assert _version(session, ca) == va  # nothing stored


def test_new_code_creates_a_grid_and_dry_run_stores_nothing(client: Any, session: Session) -> None:
    ca, _ = _pair(session)
    micro = _frame(client, "micro").set_index("code", drop=False)
    parent = micro.loc[ca, "parent_code"]
    taken = set(
        session.execute(
            text("SELECT code FROM grids UNION SELECT code FROM grid_versions")
        ).scalars()
    )
    new = next(f"{parent}{i:02d}" for i in range(1, 100) if f"{parent}{i:02d}" not in taken)
    geom = micro.geometry[ca]
    x0, y0, x1, y1 = geom.bounds
    left = geom.intersection(box(x0 - 1, y0 - 1, (x0 + x1) / 2, y1 + 1))
    right = geom.difference(box(x0 - 1, y0 - 1, (x0 + x1) / 2, y1 + 1))
    frame = gpd.GeoDataFrame({"code": [ca, new]}, geometry=[left, right], crs=4326)
    before = _households(session, ca)
    dry = _import(client, frame, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["created"] == [new] and dry.json()["dry_run"] is True
    assert (
        session.execute(text("SELECT count(*) FROM grids WHERE code = :c"), {"c": new}).scalar_one()
        == 0
    )
    r = _import(client, frame)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == [new] and r.json()["replaced"] == [ca]
    assert _households(session, ca) + _households(session, new) == before
    level, parent_code = session.execute(
        text(
            "SELECT g.level, p.code FROM grids g JOIN grids p ON p.id = g.parent_id "
            "WHERE g.code = :c"
        ),
        {"c": new},
    ).one()
    assert (level, parent_code) == ("micro", parent)
    ops = (
        session.execute(text("SELECT operation FROM grid_versions WHERE code = :c"), {"c": new})
        .scalars()
        .all()
    )
    assert ops == ["create"]


def _spiked(geom: shapely.Polygon) -> shapely.Polygon:
    """The same polygon with a zero-width spike out of its first vertex (invalid)."""
    poly = geom.geoms[0] if geom.geom_type == "MultiPolygon" else geom
    ring = list(poly.exterior.coords)
    x, y = ring[0]
    spike = [ring[0], (x - 0.0005, y - 0.0005), ring[0]]
    return shapely.Polygon(spike + ring[1:], [list(r.coords) for r in poly.interiors])


def test_invalid_geometry_refused_with_reason_or_repaired_when_asked(
    client: Any, session: Session
) -> None:
    ca, _ = _pair(session)
    micro = _frame(client, "micro").set_index("code", drop=False)
    bad = _spiked(micro.geometry[ca])
    assert not bad.is_valid
    frame = gpd.GeoDataFrame({"code": [ca]}, geometry=[bad], crs=4326)
    r = _import(client, frame)
    assert r.status_code == 422
    (problem,) = r.json()["problems"]
    assert problem["code"] == ca and problem["feature"] == 1
    assert problem["reason"].startswith(("Self-intersection[", "Ring Self-intersection["))
    assert problem["location"] is not None
    fixed = _import(client, frame, repair=True)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["unchanged"] == [ca] and fixed.json()["repaired"][0]["code"] == ca


def test_wrong_crs_parent_and_level_are_clear_4xx(client: Any, session: Session) -> None:
    ca, _ = _pair(session)
    micro = _frame(client, "micro").set_index("code", drop=False)
    metres = micro.loc[[ca]].to_crs(metric_crs_for(micro))
    raw = json.loads(metres[["code", "geometry"]].to_json())
    raw.pop("crs", None)  # a file in metres with no CRS, declared as WGS84 degrees
    r = client.post(
        "/grids/import",
        files={"file": ("m.geojson", json.dumps(raw).encode(), "application/geo+json")},
        data={"crs": "wgs84"},
    )
    assert r.status_code == 422 and "metres" in r.json()["detail"], r.text
    wrong = micro.loc[[ca]].copy()
    wrong["parent_code"] = "41017100300199"
    wrong["code"] = "4101710030019901"
    r = _import(client, wrong)
    assert r.status_code == 422
    assert "exists neither in the database nor in the file" in json.dumps(r.json()["problems"])
    r = client.post(
        "/grids/import",
        files={"file": _upload(micro.loc[[ca]])},
        data={"crs": "EPSG:3857"},
    )
    assert r.status_code == 422


def test_only_planners_import(client: Any, session: Session) -> None:
    from api.security import create_token, hash_password
    from gis.db.queries.users import add_user

    uid = add_user(
        session, username="h3-leader", password_hash=hash_password("x" * 12), role="leader"
    )
    ca, _ = _pair(session)
    frame = _frame(client, "micro").set_index("code", drop=False).loc[[ca]]
    r = client.post(
        "/grids/import",
        files={"file": _upload(frame)},
        data={"crs": "wgs84"},
        headers={"Authorization": f"Bearer {create_token(uid, 'leader')}"},
    )
    assert r.status_code == 403
    ok = client.get(
        "/grids/export",
        params={"level": "street"},
        headers={"Authorization": f"Bearer {create_token(uid, 'leader')}"},
    )
    assert ok.status_code == 200


# --- 多网融合 -------------------------------------------------------------------------------

SHIFT_M = 3.0


def _foreign(client: Any) -> tuple[gpd.GeoDataFrame, dict[str, list[str]], str, str]:
    """城管 grids: our 三级 grids merged in pairs per community, shifted 3 m east; a strip of
    the first pair's first grid (its west quarter) re-cut into a grid of its own."""
    grids = _frame(client, "grid")
    crs = metric_crs_for(grids)
    metric = grids.to_crs(crs).set_index("code", drop=False)
    rows, members = [], {}
    for _, group in metric.groupby("parent_code", sort=True):
        codes = sorted(group["code"])
        for i in range(0, len(codes), 2):
            code = f"CG{len(rows) + 1:03d}"
            members[code] = codes[i : i + 2]
            geom = shapely.union_all(metric.geometry[codes[i : i + 2]].values)
            rows.append({"code": code, "name": f"城管{code}", "geometry": geom})
    foreign = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    foreign["geometry"] = foreign.geometry.translate(SHIFT_M, 0)
    first, g1 = "CG001", members["CG001"][0]
    x0, y0, x1, y1 = metric.geometry[g1].bounds
    cut = box(x0 - 10, y0 - 10, x0 + SHIFT_M + (x1 - x0) / 4, y1 + 10)
    shifted_g1 = shapely.affinity.translate(metric.geometry[g1], SHIFT_M, 0)
    strip = shifted_g1.intersection(cut)
    foreign.loc[0, "geometry"] = foreign.geometry.iloc[0].difference(strip)
    extra = gpd.GeoDataFrame(
        [{"code": "CGX", "name": "城管切分", "geometry": strip}], geometry="geometry", crs=crs
    )
    foreign = gpd.GeoDataFrame(
        [*foreign.to_dict("records"), *extra.to_dict("records")], geometry="geometry", crs=crs
    )
    return foreign.to_crs(4326), members, first, g1


def _gpkg_gcj02(frame: gpd.GeoDataFrame, tmp_path: Path) -> bytes:
    from gis.exchange import convert_geometries

    out = frame.copy()
    out["geometry"] = convert_geometries(frame.geometry.values, "gcj02", to="crs")
    path = tmp_path / "chengguan.gpkg"
    pyogrio.write_dataframe(out, path)
    return path.read_bytes()


def _crosswalk(client: Any, data: bytes, **form: Any) -> Any:
    return client.post(
        "/fusion/crosswalk",
        files={"file": ("chengguan.gpkg", data, "application/geopackage+sqlite3")},
        data={"crs": "gcj02", "level": "grid", "department": "城管", **form},
    )


def test_crosswalk_matches_the_construction(client: Any, tmp_path: Path) -> None:
    foreign, members, first, g1 = _foreign(client)
    r = _crosswalk(client, _gpkg_gcj02(foreign, tmp_path))
    assert r.status_code == 200, r.text
    cw = r.json()
    ours = _frame(client, "grid").set_index("code")
    area = ours.to_crs(metric_crs_for(ours)).area
    pairs = {(p["their_code"], p["our_code"]): p for p in cw["pairs"]}
    for code, mem in members.items():
        for m in mem:
            p = pairs[(code, m)]
            if code == first and m == g1:
                assert p["relation"] == "partial" and p["share_of_ours"] == pytest.approx(
                    0.75, abs=0.05
                )
                continue
            assert p["relation"] in ("contains", "match"), p
            assert 0.95 * area[m] <= p["overlap_m2"] <= area[m] * 1.0001
    slivers = [p for p in cw["pairs"] if p["relation"] == "sliver"]
    assert slivers and len(cw["slivers"]["features"]) == len(slivers)
    for s in slivers:
        assert 0 < s["mean_width_m"] <= SHIFT_M + 0.05
        assert s["our_code"] not in members.get(s["their_code"], [])  # always a neighbour
    strip = pairs[("CGX", g1)]
    assert strip["relation"] == "inside" and strip["share_of_theirs"] > 0.99
    changes = {c["code"]: c for c in cw["changes"]}
    rest = pairs[(first, g1)]
    owner_g1 = first if rest["households"] >= strip["households"] else "CGX"
    for code, mem in members.items():
        want = sorted(m for m in mem if m != g1 or owner_g1 == code)
        assert changes[code]["members"] == ",".join(want)
        if code != first:
            assert changes[code]["action"] == "keep", changes[code]
    if owner_g1 == first:
        assert changes["CGX"]["action"] == "absorb" and changes["CGX"]["into"] == first
    # households: every building in both layers is counted once; the fused layer holds all
    # the households of our grids it is built from
    assert sum(p["households"] for p in cw["pairs"]) <= sum(ours["households"])
    fused_hh = sum(f["properties"]["households"] for f in cw["fused"]["features"])
    assert fused_hh == sum(ours["households"])
    assert sum(o["uncovered_m2"] for o in cw["ours"]) > 0  # the 3 m strip on the west side
    assert cw["summary"]["theirs"] == len(foreign) and cw["summary"]["slivers"] == len(slivers)


def test_crosswalk_csv_and_thresholds(client: Any, tmp_path: Path) -> None:
    foreign, *_ = _foreign(client)
    data = _gpkg_gcj02(foreign, tmp_path)
    r = _crosswalk(client, data, format="csv", table="pairs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == [
        "their_code", "our_code", "overlap_m2", "share_of_theirs", "share_of_ours",
        "households", "hh_share_of_theirs", "hh_share_of_ours", "mean_width_m", "relation",
    ]  # fmt: skip
    js = _crosswalk(client, data).json()
    assert len(rows) == len(js["pairs"])
    # slivers must be thinner than 1 m and below 0.1 % of both sides: the 3 m bands are not
    strict = _crosswalk(client, data, sliver_width_m=1.0, sliver_share=0.001).json()
    assert strict["summary"]["slivers"] < js["summary"]["slivers"]
    bad = _crosswalk(client, data, sliver_width_m=-1)
    assert bad.status_code == 422


def test_fusion_pages(client: Any, tmp_path: Path) -> None:
    form = client.get("/maps/fusion")
    assert form.status_code == 200 and 'id="fusion-form"' in form.text
    assert outside_urls(form.text) == []
    foreign, *_ = _foreign(client)
    r = client.post(
        "/maps/fusion",
        files={"file": ("cg.gpkg", _gpkg_gcj02(foreign, tmp_path), "application/octet-stream")},
        data={"crs": "gcj02", "level": "grid", "department": "城管"},
    )
    assert r.status_code == 200, r.text
    page = r.text
    assert "建议融合网格" in page and "城管网格" in page and 'id="fusion-changes"' in page
    assert "/static/vendor/leaflet/leaflet.js" in page and outside_urls(page) == []
    assert page.count('data-action="keep"') >= 1


def test_cli_export(engine: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    out = tmp_path / "micro.gpkg"
    res = CliRunner().invoke(app, ["grids", "export", str(out), "--level", "micro"])
    assert res.exit_code == 0, res.output
    frame = pyogrio.read_dataframe(out)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM grids WHERE level = 'micro'")).scalar_one()
    assert len(frame) == n and {"code", "parent", "households"} <= set(frame.columns)


def test_a_layer_declared_in_the_wrong_crs_is_refused_naming_it(
    client: Any, session: Session
) -> None:
    """A GCJ-02 export declared as WGS84: every grid ~600 m off in one direction."""
    r = client.get("/grids/export", params={"level": "micro", "format": "gpkg", "crs": "gcj02"})
    before = session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one()
    out = client.post(
        "/grids/import",
        files={"file": ("micro.gpkg", r.content, "application/geopackage+sqlite3")},
        data={"crs": "wgs84"},
    )
    assert out.status_code == 422
    assert "declared CRS is probably wrong" in out.json()["detail"]
    (problem,) = out.json()["problems"]
    assert problem["kind"] == "crs" and 300 < problem["shift_m"] < 900
    assert session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one() == before


def test_cli_import_dry_run_and_fuse(engine: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    layer = tmp_path / "grid.kml"
    assert runner.invoke(app, ["grids", "export", str(layer), "--level", "grid"]).exit_code == 0
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM grid_versions")).scalar_one()
        n = conn.execute(text("SELECT count(*) FROM grids WHERE level = 'grid'")).scalar_one()
    res = runner.invoke(app, ["grids", "import", str(layer), "--crs", "wgs84", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"0 replaced (new version), {n} unchanged" in " ".join(res.output.split())
    wrong = runner.invoke(app, ["grids", "import", str(layer), "--crs", "bd09", "--dry-run"])
    assert wrong.exit_code == 1 and "declared CRS is probably wrong" in " ".join(
        wrong.output.split()
    )
    out = tmp_path / "fuse"
    res = runner.invoke(
        app, ["grids", "fuse", str(layer), "--crs", "wgs84", "--level", "micro", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    changes = list(csv.DictReader(io.StringIO((out / "changes.csv").read_text("utf-8-sig"))))
    assert len(changes) == n and {c["action"] for c in changes} == {"keep"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid_versions")).scalar_one() == before
