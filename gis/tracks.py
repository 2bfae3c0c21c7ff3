"""Patrol tracks (巡查轨迹): read GPX into timed points.

The GPX reader is streaming (``iterparse``), refuses any DTD or entity declaration before
parsing (so no entity-expansion attack can reach the parser), and reports the element where a
file goes wrong.
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from gis.errors import FileFormatError

log = logging.getLogger(__name__)

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
POINT_COLUMNS = ("track", "segment", "seq", "t", "lon", "lat")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _check_no_dtd(data: bytes, name: str) -> None:
    if _DTD.search(data):
        raise FileFormatError(f"{name}: DTD or entity declarations are not allowed in GPX")


def read_gpx(source: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
    """Read the track points of a GPX 1.0/1.1 file into a DataFrame.

    Parameters
    ----------
    source
        A path or the file's bytes.
    name
        Name used in error messages (defaults to the path).

    Returns
    -------
    pandas.DataFrame
        Columns ``track`` (index of the <trk>), ``segment`` (index of the <trkseg> inside it),
        ``seq`` (running point number), ``t`` (UTC timestamps), ``lon``, ``lat`` (WGS84).
    """
    if isinstance(source, bytes):
        data = source
        label = name or "<upload>"
    else:
        path = Path(source)
        data = path.read_bytes()
        label = name or str(path)
    _check_no_dtd(data, label)
    tracks: list[int] = []
    segments: list[int] = []
    times: list[str | None] = []
    lons: list[float] = []
    lats: list[float] = []
    trk = -1
    seg = -1
    try:
        for event, elem in _iterparse(data):
            tag = _local(elem.tag)
            if event == "start":
                if tag == "trk":
                    trk += 1
                    seg = -1
                elif tag == "trkseg":
                    seg += 1
                continue
            if tag == "trkpt":
                try:
                    lat = float(elem.attrib["lat"])
                    lon = float(elem.attrib["lon"])
                except (KeyError, ValueError) as exc:
                    raise FileFormatError(
                        f"{label}: trkpt #{len(lons) + 1} has no valid lat/lon attributes"
                    ) from exc
                t = None
                for child in elem:
                    if _local(child.tag) == "time":
                        t = (child.text or "").strip() or None
                        break
                tracks.append(trk)
                segments.append(max(seg, 0))
                times.append(t)
                lons.append(lon)
                lats.append(lat)
                elem.clear()
    except ET.ParseError as exc:
        line, col = exc.position
        raise FileFormatError(f"{label}: malformed XML at line {line}, column {col}") from exc
    frame = pd.DataFrame(
        {
            "track": np.asarray(tracks, dtype=np.int32),
            "segment": np.asarray(segments, dtype=np.int32),
            "seq": np.arange(len(lons), dtype=np.int64),
            "t": pd.to_datetime(pd.Series(times, dtype="object"), utc=True, format="ISO8601"),
            "lon": np.asarray(lons, dtype=float),
            "lat": np.asarray(lats, dtype=float),
        }
    )
    log.debug("read %d points from %s", len(frame), label)
    return frame


def _iterparse(data: bytes) -> Iterator[tuple[str, ET.Element]]:
    parser = ET.iterparse(io.BytesIO(data), events=("start", "end"))
    root_seen = False
    for event, elem in parser:
        if not root_seen:
            root_seen = True
            if _local(elem.tag) != "gpx":
                raise FileFormatError(f"root element is <{_local(elem.tag)}>, not <gpx>")
        yield event, elem
