"""Tests of ``maps/``, and a tiny hand-made district that the browser tests share."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from shapely.geometry import MultiPolygon, box

# south-west corner of the tiny district, near 郑州高新区 (113.55E, 34.80N)
X0, Y0 = 113.540, 34.790
DX, DY = 0.020, 0.016  # the street office: about 1.8 km x 1.8 km


def _square(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    return MultiPolygon([box(x0, y0, x1, y1)])


def tiny_grids() -> gpd.GeoDataFrame:
    """A street office split in 2 communities, 4 三级 grids, 8 micro grids; 1 dedicated grid.

    Columns as ``gis.db.queries.grids.grids_frame`` returns them (EPSG:4326 MultiPolygons).
    The dedicated grid's name carries an HTML payload: pages must show it as text.
    """
    rows = [
        ("S01", "高新街道办事处", "street", None, None, None, (0, 0, 1, 1)),
        ("S01C01", "枫杨社区", "community", "S01", 1830, 4920, (0, 0, 0.5, 1)),
        ("S01C02", "石佛社区", "community", "S01", 1610, 4310, (0.5, 0, 1, 1)),
    ]
    for c in range(2):
        for g in range(2):
            code = f"S01C0{c + 1}G0{g + 1}"
            x0, y0 = 0.5 * c, 0.5 * g
            rows.append(
                (code, f"第{2 * c + g + 1}网格", "grid", f"S01C0{c + 1}", 800 + 10 * g, 2100,
                 (x0, y0, x0 + 0.5, y0 + 0.5))
            )  # fmt: skip
            for m in range(2):
                rows.append(
                    (f"{code}M0{m + 1}", f"第{2 * c + g + 1}网格{m + 1}号微网格", "micro", code,
                     400 + m, 1050, (x0 + 0.25 * m, y0, x0 + 0.25 * m + 0.25, y0 + 0.5))
                )  # fmt: skip
    rows.append(
        ("S01D01", '实验小学<img src=x onerror="window.__xss=1">', "dedicated", "S01", 0, 0,
         (0.40, 0.40, 0.60, 0.60))
    )  # fmt: skip
    records = [
        {
            "code": code,
            "name": name,
            "level": level,
            "parent_code": parent,
            "households": households,
            "residents": residents,
            "geometry": _square(X0 + DX * fx0, Y0 + DY * fy0, X0 + DX * fx1, Y0 + DY * fy1),
        }
        for code, name, level, parent, households, residents, (fx0, fy0, fx1, fy1) in rows
    ]
    return gpd.GeoDataFrame(records, geometry="geometry", crs=4326)


def tiny_heat() -> pd.DataFrame:
    """Aggregated incident cells (lon, lat, weight): a hotspot and a few scattered cells."""
    cells = [(0.30, 0.70, 40), (0.31, 0.71, 25), (0.29, 0.69, 18), (0.75, 0.25, 12)]
    cells += [(0.1 * i, 0.05 + 0.09 * i, 2) for i in range(1, 10)]
    return pd.DataFrame(
        {
            "lon": [X0 + DX * fx for fx, _fy, _w in cells],
            "lat": [Y0 + DY * fy for _fx, fy, _w in cells],
            "weight": [w for _fx, _fy, w in cells],
        }
    )
