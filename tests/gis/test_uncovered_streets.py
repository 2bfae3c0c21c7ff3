"""The street-coverage test of the patrol page (points within 20 m of a track) against
shapely's exact distance, on random walks: the vertex-cell shortcut must not change any
answer."""

from __future__ import annotations

import numpy as np
import shapely

from gis.patrol import _near_tracks, uncovered_streets


def _walks(rng: np.random.Generator, n: int, steps: int) -> np.ndarray:
    starts = rng.uniform(0, 1000, (n, 1, 2))
    xy = starts + np.cumsum(rng.normal(0, 15, (n, steps, 2)), axis=1)
    return shapely.linestrings(xy)


def test_near_tracks_matches_exact_distance() -> None:
    rng = np.random.default_rng(7)
    tracks = np.array(
        [shapely.multilinestrings([a, b]) for a, b in _walks(rng, 40, 60).reshape(20, 2)]
        + [shapely.MultiLineString()],  # an empty track is ignored
        dtype=object,
    )
    points = shapely.points(rng.uniform(-50, 1050, (20_000, 2)))
    near = _near_tracks(points, tracks, 20.0)
    exact = shapely.distance(points, shapely.union_all(tracks)) <= 20.0
    assert 0 < near.sum() < len(points)  # both answers occur
    np.testing.assert_array_equal(near, exact)
    assert not _near_tracks(points, np.empty(0, dtype=object), 20.0).any()


def test_uncovered_parts_stay_away_from_the_tracks() -> None:
    rng = np.random.default_rng(3)
    streets = _walks(rng, 30, 40)
    tracks = _walks(rng, 15, 80)
    rest, covered = uncovered_streets(streets, tracks)
    assert (covered <= shapely.length(streets) + 1e-9).all() and covered.sum() > 0
    pts = shapely.get_coordinates(rest[~shapely.is_empty(rest)])
    far = shapely.distance(shapely.points(pts), shapely.union_all(tracks))
    assert len(pts) and (far > 20.0).all()
