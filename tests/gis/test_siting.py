"""Maximal covering location on a case whose optimum is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from gis.errors import GisError
from gis.siting import maximal_covering

# Demand rows x candidate columns. Greedy picks column 0 first (weight 10+10+1=21), then
# column 3 (+6) = 27; the optimum for k=2 is columns 1 and 2: 10+10+9+8 = 37 - no overlap.
COVER = csr_matrix(
    np.array(
        [
            # c0 c1 c2 c3
            [1, 1, 0, 0],  # 10
            [1, 0, 1, 0],  # 10
            [1, 0, 0, 0],  # 1
            [0, 1, 0, 0],  # 9
            [0, 0, 1, 0],  # 8
            [0, 0, 0, 1],  # 6
        ],
        dtype=bool,
    )
)
W = [10, 10, 1, 9, 8, 6]


def test_optimum_beats_greedy() -> None:
    res = maximal_covering(COVER, W, 2)
    assert res.optimal
    assert sorted(res.chosen) == [1, 2]
    assert res.covered_after == 37 and res.covered_before == 0


def test_already_covered_rows_add_nothing() -> None:
    res = maximal_covering(COVER, W, 1, already_covered=[True, True, False, False, False, False])
    assert res.chosen == [1]  # 9 new, better than c2 (8) or c3 (6)
    assert res.covered_before == 20 and res.newly_covered == 9


@pytest.mark.parametrize(("k", "match"), [(0, "at least 1"), (5, "exceeds")])
def test_bad_k(k: int, match: str) -> None:
    with pytest.raises(GisError, match=match):
        maximal_covering(COVER, W, k)
