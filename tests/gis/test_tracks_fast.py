"""The fast roads of the track pipeline give what the checked ones give.

GPX in the plain one-line layout is read by :func:`gis.tracks._read_plain` (expat checks only
the skeleton around the runs of points); anything it cannot prove goes to the checked road,
which must then still name the problem. :func:`gis.patrol.effort_by_level` measures all
levels from units of fixes; it must agree with :func:`gis.patrol.grid_effort` per level.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gis.errors import FileFormatError
from gis.patrol import effort_by_level, grid_effort
from gis.tracks import _check_xml, _read_plain, _scan_gpx, read_track_file

PT = b'<trkpt lat="%s" lon="%s"><time>2026-10-26T0%d:00:00Z</time></trkpt>\n'


def _pts(k: int, lat0: float = 34.8) -> bytes:
    return b"".join(
        PT % (b"%.7f" % (lat0 + i * 1e-4), b"%.7f" % (113.55 + i * 1e-4), i) for i in range(k)
    )


PLAIN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">\n'
    b"<trk><name>morning</name><trkseg>\n"
    + _pts(3)
    + b"</trkseg>\n<trkseg>\n"
    + _pts(2, 34.81)
    + b"</trkseg></trk>\n<trk><name>afternoon &amp; late</name><trkseg>\n"
    + _pts(4, 34.82)
    + b"</trkseg></trk>\n<trk><name>empty</name></trk>\n</gpx>\n"
)


def test_plain_gpx_takes_the_fast_road_and_reads_like_the_checked_one() -> None:
    fast = _read_plain(PLAIN, "p.gpx")
    assert fast is not None
    assert _check_xml(PLAIN, "p.gpx") == (len(PLAIN), None, False)
    checked = _scan_gpx(PLAIN, "p.gpx")
    assert fast.track.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert fast.segment.tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert fast.track_names == ["morning", "afternoon &amp; late", "empty"]
    for col in ("track", "segment", "t", "lon", "lat"):
        assert np.array_equal(getattr(fast, col), getattr(checked, col)), col
    assert fast.track_names == checked.track_names
    # values are converted exactly as float() does
    assert fast.lat.tolist() == [float(b"%.7f" % (34.8 + i * 1e-4)) for i in range(3)] + [
        float(b"%.7f" % (34.81 + i * 1e-4)) for i in range(2)
    ] + [float(b"%.7f" % (34.82 + i * 1e-4)) for i in range(4)]
    assert len(read_track_file(PLAIN, name="p.gpx")) == 9


def test_a_run_of_points_inside_an_attribute_is_malformed_not_read() -> None:
    # the run is well-formed on its own, but '<' may not stand in an attribute value
    hidden = PLAIN.replace(b"<trk><name>morning", b'<trk note="' + _pts(2) + b'"><name>morning', 1)
    assert _read_plain(hidden, "h.gpx") is None
    with pytest.raises(FileFormatError, match=r"h\.gpx: malformed XML at line 3, column 12"):
        read_track_file(hidden, name="h.gpx")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # a DTD before plain points is refused, never parsed
        (
            lambda d: d.replace(b"<gpx ", b'<!DOCTYPE gpx [<!ENTITY e "x">]>\n<gpx ', 1),
            "DTD or entity",
        ),
        # a broken skeleton is named at its place in the whole file
        (
            lambda d: d.replace(b"</trkseg>\n<trkseg>", b"</trk>\n<trkseg>", 1),
            "line 7, column 3 in <trkseg>",
        ),
        # a value that is no number is named by its point
        (
            lambda d: d.replace(b'lat="34.8001000"', b'lat="34.8.01"', 1),
            "point #2 has an invalid lat",
        ),
        (lambda d: d.replace(b"T01:00:00Z", b"T01:00:99Z", 1), "point #2 has an invalid time"),
        (lambda d: d.replace(b"<gpx ", b"<kml ", 1).replace(b"</gpx>", b"</kml>"), "not <gpx>"),
    ],
)
def test_what_the_fast_road_cannot_prove_is_named_by_the_checked_one(
    edit: Callable[[bytes], bytes], match: str
) -> None:
    bad = edit(PLAIN)
    assert _read_plain(bad, "b.gpx") is None
    with pytest.raises(FileFormatError, match=match):
        read_track_file(bad, name="b.gpx")


def test_unusual_points_or_a_cut_send_the_file_to_the_checked_road() -> None:
    with_ele = PLAIN.replace(b'"><time>2026-10-26T01', b'"><ele>3</ele><time>2026-10-26T01', 1)
    assert _read_plain(with_ele, "e.gpx") is None
    assert len(read_track_file(with_ele, name="e.gpx")) == 9
    prefixed = PLAIN.replace(
        b'xmlns="http://www.topografix.com/GPX/1/1"', b'xmlns:g="http://www.topografix.com/GPX/1/1"'
    )
    assert _read_plain(prefixed, "g.gpx") is None
    cut = PLAIN[: PLAIN.index(b"<trkpt", PLAIN.index(b"34.8100000")) + 30]
    assert _read_plain(cut, "c.gpx") is None
    tf = read_track_file(cut, name="c.gpx")
    assert len(tf) == 4 and tf.truncated is not None and "kept 4 complete points" in tf.truncated


def test_effort_by_level_equals_grid_effort_on_each_level() -> None:
    rng = np.random.default_rng(7)
    n_micro = 7
    levels = {
        "micro": np.arange(n_micro, dtype=np.int64) + 100,
        "grid": np.array([10, 10, 11, 11, -1, 12, 12], dtype=np.int64),
        "street": np.ones(n_micro, dtype=np.int64),
    }
    for _ in range(60):
        n = int(rng.integers(1, 400))
        track = np.sort(rng.integers(0, 3, n)).astype(np.int64)
        seg = np.zeros(n, dtype=np.int64)
        for tr in np.unique(track):
            seg[track == tr] = np.sort(rng.integers(0, 2, int((track == tr).sum())))
        t = np.cumsum(rng.uniform(0, 40, n))
        x, y = np.cumsum(rng.normal(0, 5, n)), np.cumsum(rng.normal(0, 5, n))
        micro = np.repeat(rng.integers(-1, n_micro, n // 3 + 1), 3)[:n]
        ded = np.repeat(rng.integers(-1, 3, n // 4 + 1), 4)[:n]
        got = effort_by_level(track, seg, t, x, y, micro, levels, extra={"dedicated": ded})
        per_fix = {k: np.where(micro >= 0, v[np.maximum(micro, 0)], -1) for k, v in levels.items()}
        per_fix["dedicated"] = ded
        for level, ids in per_fix.items():
            want = grid_effort(track, seg, t, x, y, ids)
            mine = got[got["level"] == level]
            assert mine["track"].tolist() == want["track"].tolist()
            assert mine["grid"].tolist() == want["grid"].tolist()
            assert mine["entries"].tolist() == want["entries"].tolist()
            np.testing.assert_allclose(mine["distance_m"], want["distance_m"], rtol=1e-12)
            np.testing.assert_allclose(mine["seconds"], want["seconds"], rtol=1e-12)
