"""The hotspot page built from a hand-made lattice: layers, legend, form, offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gis.hotspots import emerging_hotspots, gi_star
from maps.assets import outside_urls
from maps.hotspots import EMERGING_LAYER, GI_COLOURS, GI_LAYER, build_hotspot_page
from tests.gis.test_hotspots import hot_and_cold, lattice, weekly_frame


def _gi() -> pd.DataFrame:
    frame = lattice(hot_and_cold())
    frame["name"] = [f"微网格<{c}>" for c in frame["code"]]
    return gi_star(frame)


def test_page_has_both_layers_legend_and_form() -> None:
    grids, weekly = weekly_frame([-1.0] * 7 + [30.0])
    emerging = emerging_hotspots(grids.assign(name="x"), weekly)
    page = build_hotspot_page(
        _gi(), emerging, category="噪音扰民", categories=["噪音扰民", "乱停车"], start="2026-01-01"
    )
    assert GI_LAYER in page and EMERGING_LAYER in page
    assert "热点99%（" in page and "冷点99%（" in page and "新增热点（" in page
    assert GI_COLOURS["热点99%"] in page and GI_COLOURS["冷点99%"] in page
    assert '<option value="噪音扰民" selected>' in page and "2026-01-01 至 最新" in page
    # names are escaped before the tooltip writes them as HTML (JSON-encoded: \u0026lt;)
    assert "\\u0026lt;r0c0\\u0026gt;" in page and "<r0c0>" not in page
    assert outside_urls(page) == []
    assert "新兴热点（近8周：2026-09-07 起）" in page


def test_page_without_emerging_and_bad_input() -> None:
    page = build_hotspot_page(_gi(), None)
    assert "无新兴热点或冷点" in page and "全部类别" in page
    with pytest.raises(ValueError, match="gi_class"):
        build_hotspot_page(_gi().drop(columns="gi_class"))
    assert np.isfinite(_gi()["gi_z"]).all()
