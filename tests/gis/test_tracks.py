"""Track files: every format, gzip, GCJ-02, malformed, truncated and hostile input; cleaning
rules on constructed tracks."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from gis.crs import gcj02_to_wgs84, wgs84_to_gcj02
from gis.errors import EmptyInputError, FileFormatError
from gis.tracks import (
    DUPLICATE,
    FLAG_NAMES,
    INACCURATE,
    JITTER,
    JUMP,
    KEPT,
    MAX_FILE_BYTES,
    SPEED,
    CleaningRules,
    clean_fixes,
    read_gpx,
    read_track_file,
    sniff_format,
)

GPX = b"""<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>day1</name>
  <trkseg>
   <trkpt lat="34.80000" lon="113.55000"><time>2026-10-26T08:00:00+08:00</time></trkpt>
   <trkpt lat="34.80010" lon="113.55010"><time>2026-10-26T08:00:10+08:00</time></trkpt>
  </trkseg>
  <trkseg>
   <trkpt lat="34.80100" lon="113.55100"><time>2026-10-26T08:05:00+08:00</time></trkpt>
  </trkseg>
 </trk>
 <trk><trkseg>
   <trkpt lat="34.9" lon="113.6"><time>2026-10-27T00:00:00Z</time></trkpt>
 </trkseg></trk>
</gpx>"""

T0 = 1_792_972_800.0  # 2026-10-26T08:00:00+08:00 as UTC epoch seconds


def test_read_gpx_points_segments_and_utc_times() -> None:
    frame = read_gpx(GPX)
    assert list(frame["track"]) == [0, 0, 0, 1]
    assert list(frame["segment"]) == [0, 0, 1, 0]
    assert frame["lon"].iloc[2] == pytest.approx(113.551)
    assert str(frame["t"].iloc[0]) == "2026-10-26 00:00:00+00:00"
    assert frame["t"].iloc[3].hour == 0


def test_gpx_1_0_tracks_routes_and_waypoints() -> None:
    gpx10 = b"""<?xml version="1.0"?>
<gpx version="1.0" creator="old logger" xmlns="http://www.topografix.com/GPX/1/0">
<time>2026-10-26T00:00:00Z</time>
<wpt lat="34.8005" lon="113.5505"><time>2026-10-26T00:03:00Z</time><name>door</name></wpt>
<rte><name>plan</name>
<rtept lat="34.8" lon="113.55"><time>2026-10-26T00:00:00Z</time></rtept>
<rtept lat="34.801" lon="113.551"><time>2026-10-26T00:10:00Z</time></rtept>
</rte>
<trk><name>walk</name><trkseg>
<trkpt lat="34.802" lon="113.552"><ele>110.5</ele><time>2026-10-26T01:00:00Z</time>
<speed>1.2</speed></trkpt>
<trkpt lat="34.8021" lon="113.5521"><ele>110.0</ele><time>2026-10-26T01:00:10Z</time></trkpt>
</trkseg></trk>
</gpx>"""
    tf = read_track_file(gpx10, name="old.gpx")
    assert tf.format == "gpx"
    assert tf.track.tolist() == [0, 0, 1, 1]  # the route is a track, then the <trk>
    assert tf.track_names == ["plan", "walk"]
    assert tf.lat.tolist() == [34.8, 34.801, 34.802, 34.8021]
    assert tf.t[2] - tf.t[0] == 3600.0
    assert len(tf.waypoints) == 1
    assert tf.waypoints["lon"].iloc[0] == pytest.approx(113.5505)
    assert tf.waypoints["name"].iloc[0] == "door"


def test_gpx_1_1_waypoints_only_file_is_read() -> None:
    only = (
        b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        b'<wpt lat="34.8" lon="113.55"><time>2026-10-26T00:00:00Z</time></wpt>'
        b'<wpt lat="34.81" lon="113.56"/></gpx>'
    )
    tf = read_track_file(only, name="w.gpx")
    assert len(tf) == 0
    assert tf.waypoints["lat"].tolist() == [34.8, 34.81]
    assert np.isnan(tf.waypoints["t"].iloc[1])


def test_unusual_gpx_layouts_read_the_same_as_the_plain_one() -> None:
    """lon before lat, single quotes, a namespace prefix, extensions, a <name> before the
    <time>: the exact reader takes over and gives the same points."""
    plain = read_track_file(GPX, name="a.gpx")
    variants = [
        GPX.replace(b'lat="34.80000" lon="113.55000"', b"lon='113.55000' lat='34.80000'"),
        GPX.replace(b"<gpx ", b"<g:gpx xmlns:g='http://www.topografix.com/GPX/1/1' ")
        .replace(b"</gpx>", b"</g:gpx>")
        .replace(b"<trkpt", b"<g:trkpt")
        .replace(b"</trkpt>", b"</g:trkpt>"),
        GPX.replace(
            b"<time>2026-10-26T08:00:10+08:00</time>",
            b"<extensions><hr>80</hr></extensions><time>2026-10-26T08:00:10+08:00</time>",
        ),
        GPX.replace(
            b'<trkpt lat="34.80010" lon="113.55010"><time>',
            b'<trkpt lat="34.80010" lon="113.55010"><name>door</name><time>',
        ),
    ]
    for data in variants:
        tf = read_track_file(data, name="b.gpx")
        assert tf.lat.tolist() == plain.lat.tolist()
        assert tf.lon.tolist() == plain.lon.tolist()
        assert tf.t.tolist() == plain.t.tolist()
        assert tf.segment.tolist() == plain.segment.tolist()


def test_geojson_lines_with_times_and_points() -> None:
    line = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "name": "walk",
                    "coordTimes": ["2026-10-26T00:00:00Z", "2026-10-26T00:00:10Z"],
                },
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[113.55, 34.8], [113.5501, 34.8]],
                },
            },
            {
                "type": "Feature",
                "properties": {"times": [[T0, T0 + 5], [(T0 + 600) * 1000]]},
                "geometry": {
                    "type": "MultiLineString",
                    "coordinates": [[[113.56, 34.81], [113.5601, 34.81]], [[113.57, 34.82]]],
                },
            },
        ],
    }
    tf = read_track_file(json.dumps(line).encode(), name="t.geojson")
    assert tf.format == "geojson"
    assert tf.track.tolist() == [0, 0, 1, 1, 1]
    assert tf.segment.tolist() == [0, 0, 0, 0, 1]
    assert tf.t[:2].tolist() == [T0, T0 + 10]
    assert tf.t[2:].tolist() == [T0, T0 + 5, T0 + 600]  # epoch seconds and milliseconds
    points = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"time": "2026-10-26T08:00:00+08:00", "accuracy": 8},
                "geometry": {"type": "Point", "coordinates": [113.55, 34.8]},
            },
            {
                "type": "Feature",
                "properties": {"time": "2026-10-26T08:00:05+08:00"},
                "geometry": {"type": "Point", "coordinates": [113.5501, 34.8]},
            },
        ],
    }
    tp = read_track_file(json.dumps(points).encode(), name="p.json")
    assert tp.track.tolist() == [0, 0]
    assert tp.t.tolist() == [T0, T0 + 5]
    assert tp.accuracy[0] == 8 and np.isnan(tp.accuracy[1])


def test_csv_with_and_without_accuracy() -> None:
    with_acc = (
        "lon,lat,time,accuracy\n"
        "113.55,34.8,2026-10-26T08:00:00+08:00,5\n"
        "113.5501,34.8,2026-10-26T08:00:05+08:00,\n"
    )
    tf = read_track_file(with_acc.encode(), name="a.csv")
    assert tf.format == "csv"
    assert tf.t.tolist() == [T0, T0 + 5]
    assert tf.accuracy[0] == 5 and np.isnan(tf.accuracy[1])
    # other column names and order, epoch seconds, BOM, no extension
    plain = (
        f"\ufefftimestamp,latitude,longitude\n{T0:.0f},34.8,113.55\n{T0 + 5:.0f},34.8,113.5501\n"
    )
    tp = read_track_file(plain.encode(), name="upload")
    assert tp.lon.tolist() == [113.55, 113.5501]
    assert tp.t.tolist() == [T0, T0 + 5]
    assert np.isnan(tp.accuracy).all()


def test_sniffing_by_extension_and_content() -> None:
    assert sniff_format(b"{}", "x.geojson.gz") == "geojson"
    assert sniff_format(b"<gpx/>", "upload") == "gpx"
    assert sniff_format(b'  {"type": "Feature"}', "upload") == "geojson"
    assert sniff_format(b"lon,lat,time\n", "upload") == "csv"


def test_gzip_is_read_like_the_plain_file() -> None:
    plain = read_track_file(GPX, name="a.gpx")
    packed = read_track_file(gzip.compress(GPX), name="a.gpx.gz")
    assert packed.lat.tolist() == plain.lat.tolist()
    assert packed.t.tolist() == plain.t.tolist()


def test_the_100_mb_limit_holds_for_plain_and_gzipped_files() -> None:
    bomb = gzip.compress(b" " * (MAX_FILE_BYTES + 1), compresslevel=1)
    assert len(bomb) < 1_000_000  # small on the wire ...
    with pytest.raises(FileFormatError, match="over the 104,857,600-byte limit"):
        read_track_file(bomb, name="bomb.gpx.gz")  # ... refused without being inflated whole
    with pytest.raises(FileFormatError, match="over the"):
        read_track_file(GPX, name="a.gpx", max_bytes=len(GPX) - 1)
    assert len(read_track_file(GPX, name="a.gpx", max_bytes=len(GPX))) == 4


def test_gcj02_input_is_converted_once_at_the_edge() -> None:
    lon = np.array([113.55, 113.5501, 113.5502])
    lat = np.array([34.8, 34.8001, 34.8002])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert np.hypot(glon - lon, glat - lat).min() > 1e-3  # the shift is hundreds of metres
    rows = "".join(
        f"{x:.8f},{y:.8f},{T0 + 5 * i:.0f}\n"
        for i, (x, y) in enumerate(zip(glon, glat, strict=True))
    )
    data = ("lon,lat,time\n" + rows).encode()
    tf = read_track_file(data, name="phone.csv", crs="gcj02")
    # back to WGS84 within a centimetre ...
    assert np.abs(tf.lon - lon).max() < 1e-7 and np.abs(tf.lat - lat).max() < 1e-7
    # ... and exactly one conversion: a second one would move the points again
    once = gcj02_to_wgs84(np.round(glon, 8), np.round(glat, 8))
    assert np.array_equal(tf.lon, once[0]) and np.array_equal(tf.lat, once[1])
    twice = gcj02_to_wgs84(*once)
    assert np.abs(tf.lon - twice[0]).min() > 1e-3
    # WGS84 input is left alone
    as_wgs = read_track_file(data, name="phone.csv", crs="wgs84")
    assert np.array_equal(as_wgs.lon, np.round(glon, 8))
    with pytest.raises(ValueError, match="tracks come in WGS84 or GCJ-02"):
        read_track_file(data, name="phone.csv", crs="bd09")


def test_billion_laughs_is_refused_before_parsing() -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
    <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
    <gpx>&lol2;</gpx>"""
    with pytest.raises(FileFormatError, match="DTD or entity"):
        read_gpx(bomb, name="bomb.gpx")


def test_external_entities_are_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?>\n<!doctype gpx [<!entity xxe SYSTEM "file:///etc/passwd">]>\n'
        b'<gpx><trk><name>&xxe;</name><trkseg><trkpt lat="34.8" lon="113.55">'
        b"<time>2026-10-26T00:00:00Z</time></trkpt></trkseg></trk></gpx>"
    )
    with pytest.raises(FileFormatError, match="DTD or entity"):
        read_track_file(xxe, name="xxe.gpx")
    # an undeclared entity is a plain XML error, never a lookup
    undeclared = GPX.replace(b"<name>day1</name>", b"<name>&xxe;</name>")
    with pytest.raises(FileFormatError, match="line 3"):
        read_track_file(undeclared, name="u.gpx")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"<gpx><trk><trkseg><trkpt lat='1' lon='x'/></trkseg></trk></gpx>", "point #1"),
        (b"<gpx><trk><trkseg><trkpt lat='1' lon='2'></trkseg></trk></gpx>", "line 1"),
        (b"<kml></kml>", "not <gpx>"),
    ],
)
def test_malformed_gpx_names_the_place(data: bytes, match: str) -> None:
    with pytest.raises(FileFormatError, match=match):
        read_gpx(data, name="bad.gpx")


def test_malformed_files_name_line_and_element() -> None:
    bad_xml = GPX.replace(b"</trkpt>\n  </trkseg>\n  <trkseg>", b"</trkpt>\n  </trk>\n  <trkseg>")
    with pytest.raises(
        FileFormatError, match=r"bad\.gpx: malformed XML at line 7, column 5 in <trkseg>: mism"
    ):
        read_track_file(bad_xml, name="bad.gpx")
    bad_time = GPX.replace(b"2026-10-26T08:00:10+08:00", b"yesterday")
    with pytest.raises(FileFormatError, match="point #2 has an invalid time 'yesterday'"):
        read_track_file(bad_time, name="t.gpx")
    bad_json = b'{"type": "FeatureCollection",\n "features": [,]}'
    with pytest.raises(FileFormatError, match="invalid JSON at line 2, column"):
        read_track_file(bad_json, name="bad.geojson")
    not_track = (
        b'{"type": "Polygon", "coordinates": [[[113.5, 34.8], [113.6, 34.8], [113.5, 34.8]]]}'
    )
    with pytest.raises(FileFormatError, match="feature #1: a Polygon is not a track"):
        read_track_file(not_track, name="poly.geojson")
    short_times = json.dumps(
        {
            "type": "Feature",
            "properties": {"times": [T0]},
            "geometry": {"type": "LineString", "coordinates": [[113.55, 34.8], [113.56, 34.8]]},
        }
    )
    with pytest.raises(FileFormatError, match="2 coordinates but times do not match"):
        read_track_file(short_times.encode(), name="s.geojson")
    bad_csv = b"lon,lat,time\n113.55,34.8,2026-10-26T00:00:00Z\n113.5x,34.8,2026-10-26T00:00:05Z\n"
    with pytest.raises(FileFormatError, match=r"line 3: lon '113\.5x' is not a number"):
        read_track_file(bad_csv, name="bad.csv")
    with pytest.raises(FileFormatError, match="no lat column"):
        read_track_file(b"lon,height,time\n1,2,3\n", name="x.csv")
    with pytest.raises(FileFormatError, match="not UTF-8"):
        read_track_file(b"lon,lat,time\n\xff\xfe,1,2\n", name="x.csv")
    with pytest.raises(EmptyInputError, match="no track points"):
        read_track_file(b'<gpx version="1.1"><trk><trkseg/></trk></gpx>', name="e.gpx")


def test_truncated_gpx_keeps_its_complete_points() -> None:
    cut = GPX[: GPX.index(b"<trkpt", GPX.index(b"08:00:10")) + 20]
    tf = read_track_file(cut, name="cut.gpx")
    assert len(tf) == 2
    assert tf.truncated is not None and "truncated" in tf.truncated
    assert "line 9" in tf.truncated and "kept 2 complete points" in tf.truncated
    # cut inside the <time> of a point: that point is dropped, not given a broken time
    mid = GPX[: GPX.index(b"08:00:10") + 5]
    tm = read_track_file(mid, name="mid.gpx")
    assert len(tm) == 1 and tm.t.tolist() == [T0]
    assert tm.warnings == [tm.truncated]


def test_truncated_gzip_and_csv_keep_their_points() -> None:
    big = GPX.replace(b"</trk>\n <trk>", b"</trk>\n" + b" " * 5000 + b"<trk>")
    packed = gzip.compress(big)
    tf = read_track_file(packed[: len(packed) - 30], name="cut.gpx.gz")
    assert 3 <= len(tf) <= 4 and tf.lat[:3].tolist() == [34.8, 34.8001, 34.801]
    csv = b"lon,lat,time\n113.55,34.8,2026-10-26T00:00:00Z\n113.56,34.8,2026-10-26T00:00:05Z\n113.5"
    tc = read_track_file(csv, name="cut.csv")
    assert len(tc) == 2
    assert tc.truncated == "last line 4 is incomplete (truncated) and was dropped"


# ---------------------------------------------------------------------------------- cleaning


def _walk(n: int, *, dt: float = 5.0, speed: float = 1.3) -> tuple[np.ndarray, ...]:
    """A straight walk east: times, x, y."""
    t = np.arange(n) * dt
    return t, t * speed, np.zeros(n)


def test_cleaning_sorts_by_time_and_keeps_a_plain_walk() -> None:
    t, x, y = _walk(50)
    perm = np.random.default_rng(1).permutation(50)
    res = clean_fixes(t[perm], x[perm], y[perm])
    assert np.array_equal(t[perm][res.order], t)
    assert (res.flag == KEPT).all() and (res.segment == 0).all()
    assert res.counts()["kept"] == 50


def test_duplicate_and_inaccurate_fixes_are_flagged() -> None:
    t, x, y = _walk(20)
    t2, x2, y2 = np.r_[t, t[5]], np.r_[x, x[5] + 1], np.r_[y, y[5]]
    acc = np.full(21, 5.0)
    acc[10] = 80.0
    res = clean_fixes(t2, x2, y2, acc)
    flags = res.flag
    assert (flags == DUPLICATE).sum() == 1
    assert flags[int(np.flatnonzero(res.order == 10)[0])] == INACCURATE
    assert res.counts() == {"kept": 19, "duplicate": 1, "inaccurate": 1, "jump": 0, "speed": 0,
                            "jitter": 0}  # fmt: skip


def test_an_isolated_jump_is_dropped_and_its_neighbours_kept() -> None:
    t, x, y = _walk(30)
    y = y.copy()
    y[12] += 300.0  # one fix 300 m off
    res = clean_fixes(t, x, y)
    assert res.flag[12] == JUMP
    assert (np.delete(res.flag, 12) == KEPT).all()


def test_impossible_speed_is_dropped_and_the_limit_is_configurable() -> None:
    t, x, y = _walk(40)
    x = x.copy()
    x[20:] += np.arange(20) * 5 * 10.0  # from fix 20 on, 10 m/s more: a car (~41 km/h)
    res = clean_fixes(t, x, y)
    assert res.flag[:20].tolist() == [KEPT] * 20
    assert (res.flag[21:] == SPEED).all()
    assert res.counts()["speed"] >= 19
    fast = clean_fixes(t, x, y, rules=CleaningRules(max_speed_kmh=60.0))
    assert (fast.flag == KEPT).all()
    # an e-bike at 20 km/h stays under the default
    bike_t, bike_x, bike_y = _walk(40, speed=20 / 3.6)
    assert (clean_fixes(bike_t, bike_x, bike_y).flag == KEPT).all()


def test_stationary_jitter_keeps_only_the_ends_of_a_stay() -> None:
    rng = np.random.default_rng(3)
    t1, x1, y1 = _walk(20)
    stay_t = t1[-1] + 5 + np.arange(60) * 5.0  # 5 minutes at the door
    stay_x = x1[-1] + rng.normal(0, 3, 60)
    stay_y = rng.normal(0, 3, 60)
    t2 = stay_t[-1] + 5 + np.arange(20) * 5.0
    x2 = x1[-1] + (np.arange(20) + 1) * 6.5
    t = np.r_[t1, stay_t, t2]
    x = np.r_[x1, stay_x, x2]
    y = np.r_[y1, stay_y, np.zeros(20)]
    res = clean_fixes(t, x, y)
    jitter = np.flatnonzero(res.flag == JITTER)
    assert len(jitter) >= 50
    assert jitter.min() >= 19 and jitter.max() <= 80  # only inside the stay
    assert (res.flag[:15] == KEPT).all() and (res.flag[-15:] == KEPT).all()
    assert (res.segment[jitter] >= 0).all()  # jitter keeps its segment (for visit detection)


def test_long_gaps_split_segments() -> None:
    t, x, y = _walk(40)
    t = t.copy()
    t[20:] += 300.0  # five minutes without fixes, then on where the walk left off
    res = clean_fixes(t, x, y)
    assert res.segment[:20].tolist() == [0] * 20
    assert res.segment[20:].tolist() == [1] * 20
    assert (res.flag == KEPT).all()
    one = clean_fixes(t, x, y, rules=CleaningRules(gap_s=600.0))
    assert (one.segment == 0).all()


def test_counts_add_up_and_name_every_reason() -> None:
    rng = np.random.default_rng(5)
    t, x, y = _walk(500)
    x = x + rng.normal(0, 3, 500)
    x[rng.choice(500, 10, replace=False)] += 400
    res = clean_fixes(np.r_[t, t[:5]], np.r_[x, x[:5]], np.r_[y, y[:5]])
    counts = res.counts()
    assert set(counts) == set(FLAG_NAMES)
    assert sum(counts.values()) == 505
    assert counts["duplicate"] == 5 and counts["jump"] + counts["speed"] >= 10


def test_fixes_without_time_are_refused_for_cleaning() -> None:
    t, x, y = _walk(5)
    t = t.astype(float)
    t[2] = np.nan
    with pytest.raises(FileFormatError, match="no time"):
        clean_fixes(t, x, y)
