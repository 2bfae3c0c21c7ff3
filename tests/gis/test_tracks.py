"""GPX reading: points, segments, times; malformed and hostile files are refused clearly."""

from __future__ import annotations

import pytest

from gis.errors import FileFormatError
from gis.tracks import read_gpx

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


def test_read_gpx_points_segments_and_utc_times() -> None:
    frame = read_gpx(GPX)
    assert list(frame["track"]) == [0, 0, 0, 1]
    assert list(frame["segment"]) == [0, 0, 1, 0]
    assert frame["lon"].iloc[2] == pytest.approx(113.551)
    assert str(frame["t"].iloc[0]) == "2026-10-26 00:00:00+00:00"
    assert frame["t"].iloc[3].hour == 0


def test_billion_laughs_is_refused_before_parsing() -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
    <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
    <gpx>&lol2;</gpx>"""
    with pytest.raises(FileFormatError, match="DTD or entity"):
        read_gpx(bomb, name="bomb.gpx")


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


def test_truncated_gpx_keeps_its_complete_points() -> None:
    from gis.tracks import read_track_file

    cut = GPX[: GPX.index(b"<trkpt", GPX.index(b"08:00:10")) + 20]
    tf = read_track_file(cut, name="cut.gpx")
    assert len(tf) == 2
    assert tf.truncated is not None and "truncated" in tf.truncated
