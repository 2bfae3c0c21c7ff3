"""Patrol tracks (巡查轨迹): read GPX / GeoJSON / CSV files into timed fixes, and clean them.

Reading
    :func:`read_track_file` takes a file's bytes (optionally gzipped), detects its format and
    returns a :class:`TrackFile`: the fixes of every track (GPX ``<trk>`` and ``<rte>``, GeoJSON
    lines or points, CSV rows) with UTC times, in WGS84 after the declared input CRS (WGS84 or
    GCJ-02, as phones in China often give) was converted at the edge, plus GPX waypoints.

    GPX is read by a checked scanner rather than an XML tree: expat (C, no Python callbacks)
    first proves the file well-formed — or finds where it is malformed or cut off — and one
    compiled pattern then pulls every point's lat, lon and time out of the bytes. That is
    about 50 times faster than gpxpy (``wangge bench tracks`` measures it) and is what makes
    1M points/s end to end possible. Any point the pattern does not recognise (an unusual
    layout, a namespace prefix) sends the file to the exact ElementTree reader instead, so
    the fast path never guesses. DTD and entity declarations are refused before any parser
    sees the bytes (no entity expansion, no external entities).

    Files in the plain one-line layout that loggers and ``wangge bench tracks`` write
    (``<trkpt lat=".." lon=".."><time>..</time></trkpt>``) take a shorter road still
    (:func:`_read_plain`): one strict pattern splits the file into its points and the
    skeleton around them, each run of points, which the pattern itself proves to be
    well-formed elements, stands in for expat as one empty element, and expat checks only
    that small skeleton; coordinates are converted in one pyarrow call. Anything the plain
    road cannot prove goes down the checked road above, which gives the errors.

    A truncated file (the app died while writing) keeps its complete points and says what was
    dropped; a malformed one raises :class:`~gis.errors.FileFormatError` naming the line,
    column and element.

Cleaning
    :func:`clean_fixes` sorts by time and flags, without removing them, duplicate fixes,
    inaccurate ones, isolated jumps, impossible speeds (default above 25 km/h, for walking and
    e-bikes) and stationary jitter, and splits the rest into segments on long gaps. Raw and
    cleaned points both stay available; :data:`FLAG_NAMES` says why each was dropped.
"""

from __future__ import annotations

import io
import json
import logging
import pyexpat
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.crs import check_lonlat, parse_input_crs, to_wgs84
from gis.errors import EmptyInputError, FileFormatError, GisError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_FILE_BYTES = 100 * 1024 * 1024  # one upload, after gunzip
TRACK_CRS = ("wgs84", "gcj02")  # what phones and GPS loggers give
FORMATS = ("gpx", "geojson", "csv")

# Why a fix was dropped (0 = kept). Jitter points are dropped from distances and coverage but
# still count as presence for visit detection (a worker standing at a door jitters).
KEPT, DUPLICATE, INACCURATE, JUMP, SPEED, JITTER = range(6)
FLAG_NAMES = ("kept", "duplicate", "inaccurate", "jump", "speed", "jitter")

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_Q = rb"""["']([^"']*)["']"""
# One GPX point: lat/lon in either order, an optional <ele>, an optional <time>.
_POINT = re.compile(
    rb"<(trkpt|rtept|wpt)\s+(?:lat\s*=\s*"
    + _Q
    + rb"\s+lon\s*=\s*"
    + _Q
    + rb"|lon\s*=\s*"
    + _Q
    + rb"\s+lat\s*=\s*"
    + _Q
    + rb")\s*(?:/>|>\s*"
    rb"(?:<ele>[^<]*</ele>\s*)?(?:<time>\s*([^<\s]*)\s*</time>)?)"
)
_FAST_TAIL = rb'"\s*>\s*(?:<ele>[^<]*</ele>\s*)?(?:<time>\s*([^<\s]*)\s*</time>)?'
_TRKPT_FAST = re.compile(rb'<trkpt\s+lat="([^"]*)"\s+lon="([^"]*)' + _FAST_TAIL)
_RTEPT_FAST = re.compile(rb'<rtept\s+lat="([^"]*)"\s+lon="([^"]*)' + _FAST_TAIL)
_CONTAINERS = [re.compile(rb"<(" + k + rb")[\s>/]") for k in (b"trk", b"trkseg", b"rte", b"wpt")]
_WPT = re.compile(rb"<wpt\b[^>]*?(?:/>|>(.*?)</wpt>)", re.S)
_POINT_END = re.compile(rb"</(?:[\w.-]+:)?(?:trkpt|rtept|wpt)\s*>")
_NAME_IN = re.compile(rb"<name>([^<]{0,200})</name>")
_TAG = re.compile(rb"<(/?)([A-Za-z_][\w:.-]*)[^<>]*?(/?)>")
_UNIFORM_OFFSET = re.compile(rb"^(Z|[+-]\d\d:?\d\d)?$")


# The plain layout (see _read_plain): one whole point, nothing but digits, '.', '-' in its
# values (no '&', '<', '>', quotes, nor '--' once the values parse: the bytes of a run of
# such points are well-formed element content, whatever expat would make of them).
_PLAIN_POINT = re.compile(
    rb'<trkpt lat="([-.0-9]+)" lon="([-.0-9]+)"><time>([-0-9T:.Z+]+)</time></trkpt>[ \t\r\n]*'
)
_RUN = b"<_/>"  # what expat sees in place of a run of plain points
_NOT_PLAIN = re.compile(rb"trkpt|rtept|wpt|<rte")  # points the plain pattern did not take

_NO_WAYPOINTS = pd.DataFrame(columns=["name", "t", "lon", "lat"])  # shared: never mutated


@dataclass
class TrackFile:
    """The fixes of one uploaded file.

    ``track`` numbers the file's tracks (a GPX ``<trk>`` or ``<rte>``, a GeoJSON feature, the
    whole CSV), ``segment`` the GPX ``<trkseg>`` inside it; ``t`` is UTC seconds since the
    epoch (NaN when the file gives none), ``lon``/``lat`` WGS84, ``accuracy`` metres or NaN.
    """

    name: str
    format: str
    track: IntArray
    segment: IntArray
    t: FloatArray
    lon: FloatArray
    lat: FloatArray
    accuracy: FloatArray
    track_names: list[str] = field(default_factory=list)
    waypoints: pd.DataFrame = field(default_factory=lambda: _NO_WAYPOINTS)
    truncated: str | None = None  # what was dropped from a cut-off file
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lon)

    def to_frame(self) -> pd.DataFrame:
        """The fixes as a DataFrame with a tz-aware ``time`` column."""
        return pd.DataFrame(
            {
                "track": self.track,
                "segment": self.segment,
                "time": pd.to_datetime(self.t, unit="s", utc=True),
                "lon": self.lon,
                "lat": self.lat,
                "accuracy": self.accuracy,
            }
        )


# ---------------------------------------------------------------------------------- entry


def read_track_file(
    data: bytes,
    *,
    name: str = "<upload>",
    crs: str = "wgs84",
    fmt: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> TrackFile:
    """Read one track file (GPX 1.0/1.1, GeoJSON or CSV; gzip accepted) into WGS84 fixes.

    ``crs`` declares the coordinates' datum: ``wgs84`` (GPS loggers, the browser) or
    ``gcj02`` (most phone apps in China); GCJ-02 is converted to WGS84 here, once.
    """
    crs_name = parse_input_crs(crs)
    if crs_name not in ("wgs84", "gcj02", "cgcs2000"):
        raise GisError(f"tracks come in WGS84 or GCJ-02, not {crs!r}")
    data = _gunzip(data, name, max_bytes)
    if len(data) > max_bytes:
        raise FileFormatError(f"{name}: {len(data):,} bytes is over the {max_bytes:,}-byte limit")
    kind = fmt or sniff_format(data, name)
    if kind == "gpx":
        out = _read_gpx_file(data, name)
    elif kind == "geojson":
        out = _read_geojson(data, name)
    elif kind == "csv":
        out = _read_csv(data, name)
    else:
        raise FileFormatError(f"{name}: unknown track format {kind!r}; use one of {FORMATS}")
    if len(out) == 0 and out.waypoints.empty:
        detail = f" ({out.truncated})" if out.truncated else ""
        raise EmptyInputError(f"{name}: no track points{detail}")
    if len(out):
        check_lonlat(out.lon, out.lat, require_china=True)
        if crs_name == "gcj02":
            out.lon, out.lat = to_wgs84(out.lon, out.lat, "gcj02")
    if not out.waypoints.empty and crs_name == "gcj02":
        lon, lat = to_wgs84(out.waypoints["lon"], out.waypoints["lat"], "gcj02")
        out.waypoints = out.waypoints.assign(lon=lon, lat=lat)
    return out


def sniff_format(data: bytes, name: str) -> str:
    """The format from the file name's extension, or else from the first bytes."""
    suffixes = [s.lower() for s in Path(name).suffixes if s.lower() != ".gz"]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if ext in ("gpx", "xml"):
        return "gpx"
    if ext in ("geojson", "json"):
        return "geojson"
    if ext in ("csv", "txt"):
        return "csv"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "gpx"
    if head.startswith((b"{", b"[")):
        return "geojson"
    return "csv"


def decompress(data: bytes, name: str = "<upload>", max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, gunzipped when gzipped (never more than ``max_bytes``)."""
    return _gunzip(data, name, max_bytes)


def _gunzip(data: bytes, name: str, max_bytes: int) -> bytes:
    """Decompress gzip input without ever holding more than ``max_bytes`` (no gzip bombs)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise FileFormatError(f"{name}: broken gzip data ({exc})") from exc
    if len(out) > max_bytes:
        raise FileFormatError(f"{name}: decompresses to over the {max_bytes:,}-byte limit")
    if not d.eof:
        log.info("%s: gzip stream ends early; reading what was decompressed", name)
    return out


# ---------------------------------------------------------------------------------- GPX


def read_gpx(source: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
    """Read the track points of a GPX file into a DataFrame (columns track, segment, seq, t,
    lon, lat; ``t`` tz-aware UTC). Kept for callers that want a frame; see
    :func:`read_track_file` for the full reader."""
    if isinstance(source, bytes):
        data, label = source, name or "<upload>"
    else:
        data, label = Path(source).read_bytes(), name or str(source)
    tf = _read_gpx_file(data, label)
    return pd.DataFrame(
        {
            "track": tf.track.astype(np.int32),
            "segment": tf.segment.astype(np.int32),
            "seq": np.arange(len(tf), dtype=np.int64),
            "t": pd.to_datetime(tf.t, unit="s", utc=True),
            "lon": tf.lon,
            "lat": tf.lat,
        }
    )


def _read_gpx_file(data: bytes, name: str) -> TrackFile:
    plain = _read_plain(data, name)
    if plain is not None:
        return plain
    if _DTD.search(data):
        raise FileFormatError(f"{name}: DTD or entity declarations are not allowed in GPX")
    end, truncated, prefixed = _check_xml(data, name)
    body = data[:end]
    if truncated is not None:
        body = _drop_open_point(body)
    try:
        if prefixed:
            raise _NotPlain  # GPX elements with a namespace prefix: the patterns miss them
        out = _scan_gpx(body, name)
        if len(out) == 0 and out.waypoints.empty:
            raise _NotPlain  # nothing found: let the exact reader make sure
    except _NotPlain:
        log.debug("%s: unusual GPX layout; using the exact reader", name)
        out = _tree_gpx(body, name, partial=truncated is not None)
    if truncated is not None:
        out.truncated = f"{truncated}; kept {len(out):,} complete points"
        out.warnings.append(out.truncated)
    return out


def _read_plain(data: bytes, name: str) -> TrackFile | None:
    """The plain layout's fast road, or None when the file is not entirely plain.

    ``_PLAIN_POINT.split`` cuts the file into the skeleton pieces between points and each
    point's lat, lon and time, in C and without a tuple per point. Consecutive points (only
    whitespace between) form a run; the skeleton, with one empty element ``<_/>`` per run,
    goes through the same checks as a whole file (DTD refused, expat well-formedness, root
    <gpx>, no prefixed GPX namespace). Replacing a run of well-formed elements by one keeps
    the verdict in element content; anywhere else ``<_/>`` itself is an error (attribute
    values, tags) or harmless (comments, CDATA: the run holds no ``--``, ``]]>`` or ``?>``
    once its values parse). Anything unproven returns None: the checked road then reads the
    file and names any problem (and a truncated file always goes there).

    Measured on the bench files (CPU per point): the pattern's split takes 0.3 us where
    expat over the whole file (0.35) plus the point pattern's ``findall`` (0.55) took 0.9;
    pyarrow's correctly rounded string-to-double cast (fast_float; equal to ``float()`` bit
    for bit, checked on 500k random values) takes 0.05 us per value against 0.18. The whole
    read went from 1.9 to 0.55 us per point.
    """
    first = data.find(b'<trkpt lat="')
    if first < 0 or not _PLAIN_POINT.match(data, first):
        return None  # not this layout: no need to split the whole file
    parts = _PLAIN_POINT.split(data)
    n = len(parts) // 4
    seps = parts[0::4]  # before the first point, between points (b"" inside a run), after
    if seps.count(b"") == n - 1 and seps[0] and seps[-1]:
        starts = [0]  # one run: the usual case, found without a Python loop
    else:
        starts = [0, *(i for i in range(1, n) if seps[i])]
    skeleton = b"".join([seps[0], _RUN, *(seps[i] + _RUN for i in starts[1:]), seps[-1]])
    if _DTD.search(skeleton) or _NOT_PLAIN.search(skeleton):
        return None
    try:
        _, truncated, prefixed = _check_xml(skeleton, name)
    except FileFormatError:
        return None
    if truncated is not None or prefixed:
        return None
    found = _runs_in_skeleton(skeleton)
    if found is None or len(found[0]) != len(starts):
        return None
    run_track, run_seg, names = found
    counts = np.diff(np.r_[starts, n])
    try:
        lat = _plain_floats(parts[1::4])
        lon = _plain_floats(parts[2::4])
        t = _plain_times(parts[3::4], name)
    except (FileFormatError, ValueError, pa.ArrowInvalid):
        return None  # the checked road names the bad value
    return TrackFile(
        name=name,
        format="gpx",
        track=np.repeat(np.asarray(run_track, dtype=np.int64), counts),
        segment=np.repeat(np.asarray(run_seg, dtype=np.int64), counts),
        t=t,
        lon=lon,
        lat=lat,
        accuracy=np.full(n, np.nan),
        track_names=names,
    )


def _runs_in_skeleton(skeleton: bytes) -> tuple[list[int], list[int], list[str]] | None:
    """Track and segment number of each run placeholder, and the track names, numbered as
    :func:`_scan_points` numbers them; None when a run is not inside a <trkseg> of a <trk>
    (the checked road decides what such points are)."""
    starts = sorted((m.start(), m.group(1)) for c in _CONTAINERS for m in c.finditer(skeleton))
    bounds = [*[s for s, _ in starts], len(skeleton)]
    if skeleton.find(_RUN, 0, bounds[0]) >= 0:
        return None
    run_track: list[int] = []
    run_seg: list[int] = []
    names: list[str] = []
    trk, seg = -1, -1
    for i, (at, kind) in enumerate(starts):
        end = bounds[i + 1]
        if kind == b"trk":
            trk, seg = trk + 1, -1
            names.append(_track_name(skeleton, at, end))
        elif kind == b"trkseg":
            seg += 1
        k = skeleton.count(_RUN, at, end)
        if k:
            if kind != b"trkseg" or trk < 0:
                return None
            run_track += [trk] * k
            run_seg += [seg] * k
    return run_track, run_seg, names


def _plain_floats(values: list[bytes]) -> FloatArray:
    """Decimal strings to doubles in one pyarrow call (correctly rounded, as ``float()``);
    raises ``pa.ArrowInvalid`` on a value that is not a number."""
    arr = pc.cast(pa.array(values, pa.binary()).cast(pa.string()), pa.float64())
    return arr.to_numpy(zero_copy_only=False)


def _plain_times(values: list[bytes], name: str) -> FloatArray:
    """:func:`parse_times` for the plain road: the common case (every stamp as long as the
    first, whole seconds, one shared offset) read from pyarrow's buffer of the joined bytes
    without a numpy bytes array per value (0.06 us per value against 0.09); else
    :func:`parse_times` itself."""
    arr = pa.array(values, pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1)
    width = int(offsets[1] - offsets[0]) if len(arr) else 0
    suffix = values[0][19:] if len(arr) else b""
    if width < 19 or not _UNIFORM_OFFSET.match(suffix) or (np.diff(offsets) != width).any():
        return parse_times(values, name)
    stamps = np.frombuffer(
        arr.buffers()[2], dtype=f"S{width}", count=len(arr), offset=int(offsets[0])
    )
    if suffix:
        tails = stamps.view(np.uint8).reshape(len(arr), width)[:, 19:]
        if (tails != np.frombuffer(suffix, dtype=np.uint8)).any():
            return parse_times(values, name)
    try:
        base = stamps.astype("S19").astype("datetime64[s]").astype(np.int64)
    except ValueError:
        return parse_times(values, name)
    return base.astype(np.float64) - _offset_seconds(suffix)


def _check_xml(data: bytes, name: str) -> tuple[int, str | None, bool]:
    """Prove the bytes well-formed with expat; returns how many bytes to read, for a file
    cut off at its end what was dropped, and whether the root binds the GPX namespace to a
    prefix (``<g:trkpt>``: the scanner's patterns would miss such points). A root other
    than <gpx> is refused."""
    parser = pyexpat.ParserCreate()
    root: list[str] = []
    prefixed = [False]

    def first(tag: str, attrs: dict[str, str]) -> None:
        root.append(tag.rsplit(":", 1)[-1])
        prefixed[0] = ":" in tag or any(
            k.startswith("xmlns:") and "GPX" in v.upper() for k, v in attrs.items()
        )
        parser.StartElementHandler = None  # only the root: the rest runs in C

    parser.StartElementHandler = first
    try:
        parser.Parse(data, True)
    except pyexpat.ExpatError as exc:
        at = parser.ErrorByteIndex
        line, col = exc.lineno, exc.offset + 1
        if root and root[0] != "gpx":
            raise FileFormatError(f"{name}: root element is <{root[0]}>, not <gpx>") from exc
        last_open = data.rstrip().rfind(b"<")
        if root and (at < 0 or at >= last_open):
            tag = _element_at(data, at if at >= 0 else len(data))
            return (
                max(at, 0) if at >= 0 else len(data),
                f"file ends early at line {line} inside <{tag}> (truncated)",
                prefixed[0],
            )
        tag = _element_at(data, max(at, 0))
        reason = pyexpat.errors.messages[exc.code] if exc.code else str(exc)
        raise FileFormatError(
            f"{name}: malformed XML at line {line}, column {col} in <{tag}>: {reason}"
        ) from exc
    if not root or root[0] != "gpx":
        got = root[0] if root else "nothing"
        raise FileFormatError(f"{name}: root element is <{got}>, not <gpx>")
    return len(data), None, prefixed[0]


def _element_at(data: bytes, at: int) -> str:
    """The innermost element still open at byte ``at`` (looking back 4 kB), for errors."""
    stack: list[bytes] = []
    last = b"gpx"
    for m in _TAG.finditer(data, max(0, at - 4000), max(at, 0)):
        closing, tag, empty = m.groups()
        last = tag
        if closing:
            if stack and stack[-1] == tag:
                stack.pop()
        elif not empty:
            stack.append(tag)
    return (stack[-1] if stack else last).decode("utf-8", "replace")


class _NotPlain(Exception):
    """The fast scanner met a point it does not recognise; use the exact reader."""


def _drop_open_point(body: bytes) -> bytes:
    """A cut-off file's bytes without its last point when that point is incomplete."""
    last = max(body.rfind(b"<trkpt"), body.rfind(b"<rtept"), body.rfind(b"<wpt"))
    if last < 0:
        return body
    tail = body[last:]
    gt = tail.find(b">")
    if (gt > 0 and tail[gt - 1 : gt] == b"/") or _POINT_END.search(tail):
        return body
    return body[:last]


def _scan_gpx(data: bytes, name: str) -> TrackFile:
    """The fast path: find the containers, then every point with compiled patterns.

    First with patterns for the usual layout (``lat`` before ``lon``, double quotes), then,
    when any point was missed, with the general pattern; a point even that one misses raises
    :class:`_NotPlain` so the exact reader takes the file.
    """
    for fast in (True, False):
        got = _scan_points(data, fast=fast)
        n_tags = got[5]
        n_found = sum(len(g) for g in got[0]) + len(got[3])
        if n_found == n_tags:
            break
    else:
        raise _NotPlain
    groups, track_of, seg_of, wpts, names, _ = got
    counts = [len(g) for g in groups]
    flat = [p for g in groups for p in g]
    t = parse_times([p[2] for p in flat], name)
    w_t = parse_times([p[2] for p in wpts], name)
    untimed = int(np.isnan(t).sum() + np.isnan(w_t).sum())
    if untimed and data.count(b"<time") > len(t) + len(w_t) - untimed:
        raise _NotPlain  # a <time> the pattern did not reach (after <name>, say)
    lat = _floats([p[0] for p in flat], name, "lat")
    lon = _floats([p[1] for p in flat], name, "lon")
    out = TrackFile(
        name=name,
        format="gpx",
        track=np.repeat(np.asarray(track_of, dtype=np.int64), counts),
        segment=np.repeat(np.asarray(seg_of, dtype=np.int64), counts),
        t=t,
        lon=lon,
        lat=lat,
        accuracy=np.full(len(flat), np.nan),
        track_names=names,
    )
    if wpts:
        wpt_names = [_name_of(m.group(1) or b"") for m in _WPT.finditer(data)]
        out.waypoints = pd.DataFrame(
            {
                "name": wpt_names if len(wpt_names) == len(wpts) else None,
                "t": w_t,
                "lon": _floats([p[1] for p in wpts], name, "lon"),
                "lat": _floats([p[0] for p in wpts], name, "lat"),
            }
        )
    return out


_Triples = list[tuple[bytes, bytes, bytes]]


def _scan_points(
    data: bytes, *, fast: bool
) -> tuple[list[_Triples], list[int], list[int], _Triples, list[str], int]:
    """Points per container slice as (lat, lon, time) byte triples, with their track and
    segment numbers, the waypoints, the track names and how many point tags the file has
    (counted in the same pass: ``<trkpt`` always, ``<rtept`` and ``<wpt`` only if present)."""
    # one pattern per container: each has a literal prefix, which re searches for fast
    starts = sorted((m.start(), m.group(1)) for c in _CONTAINERS for m in c.finditer(data))
    bounds = [0, *[s for s, _ in starts], len(data)]
    kinds = [b"", *[k for _, k in starts]]
    groups: list[_Triples] = []
    track_of: list[int] = []
    seg_of: list[int] = []
    names: list[str] = []
    wpts: _Triples = []
    trk, seg, in_route = -1, -1, False
    for i, kind in enumerate(kinds):
        if kind == b"trk":
            trk, seg, in_route = trk + 1, -1, False
            names.append(_track_name(data, bounds[i], bounds[i + 1]))
        elif kind == b"trkseg":
            seg += 1
        elif kind == b"rte":
            trk, seg, in_route = trk + 1, 0, True
            names.append(_track_name(data, bounds[i], bounds[i + 1]))
        if trk < 0 or kind == b"wpt":
            continue
        if fast:
            pattern = _RTEPT_FAST if in_route else _TRKPT_FAST
            pts: _Triples = pattern.findall(data, bounds[i], bounds[i + 1])
        else:
            found = _POINT.findall(data, bounds[i], bounds[i + 1])
            pts = [(f[1] or f[4], f[2] or f[3], f[5]) for f in found if f[0] != b"wpt"]
        if pts:
            groups.append(pts)
            track_of.append(trk)
            seg_of.append(0 if in_route else max(seg, 0))
    n_tags = data.count(b"<trkpt")
    if b"rte" in kinds:
        n_tags += data.count(b"<rtept")
    if b"wpt" in kinds:
        n_tags += data.count(b"<wpt")
        wpts = [(f[1] or f[4], f[2] or f[3], f[5]) for f in _POINT.findall(data) if f[0] == b"wpt"]
    return groups, track_of, seg_of, wpts, names, n_tags


def _name_of(block: bytes) -> str:
    m = _NAME_IN.search(block)
    return m.group(1).decode("utf-8", "replace").strip() if m else ""


def _track_name(data: bytes, start: int, end: int) -> str:
    m = _NAME_IN.search(data, start, min(end, start + 400))
    return m.group(1).decode("utf-8", "replace").strip() if m else ""


def _floats(values: list[bytes], name: str, what: str) -> FloatArray:
    """Python's float() on each value: correctly rounded, the same as gpxpy's, and 5x
    faster than numpy's bytes-to-float cast."""
    try:
        return np.fromiter(map(float, values), dtype=np.float64, count=len(values))
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise FileFormatError(
                    f"{name}: point #{i + 1} has an invalid {what} {v[:40]!r}"
                ) from None
        raise


def parse_times(values: list[bytes] | list[str], name: str = "<upload>") -> FloatArray:
    """ISO 8601 times (or empty for none) → UTC seconds since the epoch, NaN where empty.

    The common case — every stamp with whole seconds and one shared offset (``Z`` or
    ``+08:00``) — is parsed by numpy in C; anything else goes through pandas.
    """
    n = len(values)
    if n == 0:
        return np.empty(0)
    arr = np.array(values, dtype=np.bytes_) if isinstance(values[0], bytes) else None
    if arr is not None:
        lengths = np.char.str_len(arr)
        if (lengths == lengths[0]).all() and lengths[0] >= 19:
            suffix = bytes(arr[0][19:])
            if _UNIFORM_OFFSET.match(suffix) and (
                not suffix or np.char.endswith(arr, suffix).all()
            ):
                try:
                    base = arr.astype("S19").astype("datetime64[s]").astype(np.int64)
                except ValueError:
                    pass
                else:
                    return base.astype(np.float64) - _offset_seconds(suffix)
        if (lengths == 0).all():
            return np.full(n, np.nan)
        strings = [v.decode("ascii", "replace") for v in values]  # type: ignore[union-attr]
    else:
        strings = [str(v) for v in values]
    series = pd.Series(strings, dtype=object).replace("", None)
    parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna() & series.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileFormatError(f"{name}: point #{i + 1} has an invalid time {strings[i][:40]!r}")
    epoch = pd.Timestamp(0, tz="UTC")
    return (parsed - epoch).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def _offset_seconds(suffix: bytes) -> int:
    if suffix in (b"", b"Z"):
        return 0
    digits = suffix[1:].replace(b":", b"")
    sign = -1 if suffix[:1] == b"-" else 1
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def _tree_gpx(data: bytes, name: str, *, partial: bool = False) -> TrackFile:
    """The exact reader (ElementTree, streaming) for layouts the scanner does not take;
    ``partial``: the bytes are cut off, keep the points completed before the end."""
    rows: list[tuple[int, int, bytes, bytes, bytes]] = []
    wpts: list[tuple[bytes, bytes, bytes, str]] = []
    names: list[str] = []
    trk, seg = -1, -1
    try:
        for event, elem in _iterparse(data):
            tag = elem.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag in ("trk", "rte"):
                    trk, seg = trk + 1, (0 if tag == "rte" else -1)
                    names.append("")
                elif tag == "trkseg":
                    seg += 1
                continue
            if tag == "name" and names and not names[-1] and trk >= 0:
                names[-1] = (elem.text or "").strip()
            if tag not in ("trkpt", "rtept", "wpt"):
                continue
            lat = elem.attrib.get("lat", "")
            lon = elem.attrib.get("lon", "")
            t = ""
            for child in elem:
                if child.tag.rsplit("}", 1)[-1] == "time":
                    t = (child.text or "").strip()
            if tag == "wpt":
                nm = next((c.text for c in elem if c.tag.endswith("name")), None)
                wpts.append((lat.encode(), lon.encode(), t.encode(), nm or ""))
            else:
                if not lat or not lon:
                    raise FileFormatError(
                        f"{name}: <{tag}> #{len(rows) + 1} has no lat/lon attributes"
                    )
                rows.append((trk, max(seg, 0), lat.encode(), lon.encode(), t.encode()))
            elem.clear()
    except ET.ParseError as exc:
        if not partial:
            line, col = exc.position
            raise FileFormatError(f"{name}: malformed XML at line {line}, column {col}") from exc
    lat = _floats([r[2] for r in rows], name, "lat")
    lon = _floats([r[3] for r in rows], name, "lon")
    out = TrackFile(
        name=name,
        format="gpx",
        track=np.asarray([r[0] for r in rows], dtype=np.int64),
        segment=np.asarray([r[1] for r in rows], dtype=np.int64),
        t=parse_times([r[4] for r in rows], name),
        lon=lon,
        lat=lat,
        accuracy=np.full(len(rows), np.nan),
        track_names=names,
    )
    if wpts:
        out.waypoints = pd.DataFrame(
            {
                "name": [w[3] for w in wpts],
                "t": parse_times([w[2] for w in wpts], name),
                "lon": _floats([w[1] for w in wpts], name, "lon"),
                "lat": _floats([w[0] for w in wpts], name, "lat"),
            }
        )
    return out


def _iterparse(data: bytes) -> Iterator[tuple[str, ET.Element]]:
    yield from ET.iterparse(io.BytesIO(data), events=("start", "end"))


# ---------------------------------------------------------------------------------- GeoJSON


def _read_geojson(data: bytes, name: str) -> TrackFile:
    """LineString / MultiLineString features with per-vertex times (``properties.coordTimes``
    or ``times``, as togeojson and most loggers write, or a 4th coordinate in epoch seconds),
    or Point features with a ``time`` property (one fix each, one track)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{name}: not UTF-8 at byte {exc.start}") from exc
    except RecursionError:
        raise FileFormatError(f"{name}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(doc, dict):
        raise FileFormatError(f"{name}: GeoJSON must be an object, not {type(doc).__name__}")
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise FileFormatError(f"{name}: FeatureCollection without a features list")
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    cols: dict[str, list[Any]] = {k: [] for k in ("track", "segment", "t", "lon", "lat", "acc")}
    names: list[str] = []
    point_track = -1
    for k, feat in enumerate(features):
        where = f"{name}: feature #{k + 1}"
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise FileFormatError(f"{where} has no geometry object")
        geom, props = feat["geometry"], feat.get("properties") or {}
        gtype, coords = geom.get("type"), geom.get("coordinates")
        if gtype == "Point":
            if point_track < 0:
                point_track = len(names)
                names.append(str(props.get("name", "")))
            t = props.get("time", props.get("timestamp"))
            _append(cols, point_track, 0, [coords], [t], where, props.get("accuracy"))
        elif gtype in ("LineString", "MultiLineString"):
            parts = [coords] if gtype == "LineString" else coords
            times = props.get("coordTimes", props.get("times"))
            if gtype == "LineString" and times is not None:
                times = [times]
            track = len(names)
            names.append(str(props.get("name", "")))
            if not isinstance(parts, list):
                raise FileFormatError(f"{where}: coordinates are not a list")
            for s, part in enumerate(parts):
                ptimes = times[s] if isinstance(times, list) and s < len(times) else None
                _append(cols, track, s, part, ptimes, where, None)
        else:
            raise FileFormatError(f"{where}: a {gtype} is not a track (LineString or Point)")
    return TrackFile(
        name=name,
        format="geojson",
        track=np.asarray(cols["track"], dtype=np.int64),
        segment=np.asarray(cols["segment"], dtype=np.int64),
        t=_mixed_times(cols["t"], name),
        lon=np.asarray(cols["lon"], dtype=float),
        lat=np.asarray(cols["lat"], dtype=float),
        accuracy=np.asarray(cols["acc"], dtype=float),
        track_names=names,
    )


def _mixed_times(values: list[Any], name: str) -> FloatArray:
    """GeoJSON times: epoch seconds (already converted), ISO strings or none, mixed."""
    out = np.full(len(values), np.nan)
    text_at = []
    for i, v in enumerate(values):
        if isinstance(v, float):
            out[i] = v
        elif isinstance(v, str) and v.strip():
            text_at.append(i)
        elif v is not None and v != "":
            raise FileFormatError(f"{name}: point #{i + 1} has an invalid time {str(v)[:40]!r}")
    if text_at:
        try:
            out[text_at] = parse_times([values[i] for i in text_at], name)
        except FileFormatError:
            for i in text_at:  # name the point by its place in the file
                try:
                    parse_times([values[i]], name)
                except FileFormatError:
                    raise FileFormatError(
                        f"{name}: point #{i + 1} has an invalid time {values[i][:40]!r}"
                    ) from None
            raise
    return out


def _append(
    cols: dict[str, list[Any]],
    track: int,
    segment: int,
    coords: Any,
    times: Any,
    where: str,
    accuracy: Any,
) -> None:
    if not isinstance(coords, list):
        raise FileFormatError(f"{where}: coordinates are not a list")
    if times is not None and (not isinstance(times, list) or len(times) != len(coords)):
        raise FileFormatError(f"{where}: {len(coords)} coordinates but times do not match")
    for i, c in enumerate(coords):
        if not isinstance(c, list) or len(c) < 2:
            raise FileFormatError(f"{where}: coordinate #{i + 1} is not [lon, lat]")
        try:
            lon, lat = float(c[0]), float(c[1])
        except (TypeError, ValueError):
            raise FileFormatError(f"{where}: coordinate #{i + 1} is not numeric") from None
        t = times[i] if times is not None else (c[3] if len(c) >= 4 else None)
        if isinstance(t, int | float) and not isinstance(t, bool):
            t = float(t) / 1000.0 if t > 1e11 else float(t)  # epoch ms or s
        cols["track"].append(track)
        cols["segment"].append(segment)
        cols["t"].append(t)
        cols["lon"].append(lon)
        cols["lat"].append(lat)
        cols["acc"].append(float(accuracy) if isinstance(accuracy, int | float) else np.nan)


# ---------------------------------------------------------------------------------- CSV

_CSV_ALIASES = {
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "time": ("time", "timestamp", "t", "datetime", "时间"),
    "accuracy": ("accuracy", "acc", "hdop_m", "精度"),
}


def _read_csv(data: bytes, name: str) -> TrackFile:
    """CSV with a header naming lon, lat, time and optionally accuracy (metres)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{name}: not UTF-8 at byte {exc.start}") from exc
    truncated = None
    lines_total = text.count("\n")
    if text and not text.endswith("\n"):
        last_nl = text.rfind("\n")
        header = text[: text.find("\n")] if last_nl >= 0 else text
        tail = text[last_nl + 1 :]
        if last_nl >= 0 and tail.count(",") < header.count(","):
            truncated = f"last line {lines_total + 1} is incomplete (truncated) and was dropped"
            text = text[: last_nl + 1]
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise FileFormatError(f"{name}: {str(exc).replace('C error: ', '')}") from exc
    except pd.errors.EmptyDataError:
        raise EmptyInputError(f"{name}: empty CSV") from None
    cols = {c.strip().lower(): c for c in frame.columns}
    picked: dict[str, str] = {}
    for key, aliases in _CSV_ALIASES.items():
        hit = next((cols[a] for a in aliases if a in cols), None)
        if hit is None and key != "accuracy":
            raise FileFormatError(
                f"{name}: no {key} column (looked for {', '.join(aliases)}); "
                f"header is {', '.join(frame.columns)}"
            )
        if hit is not None:
            picked[key] = hit
    lon = _csv_numbers(frame[picked["lon"]], name, "lon")
    lat = _csv_numbers(frame[picked["lat"]], name, "lat")
    raw_t = frame[picked["time"]].str.strip()
    numeric = pd.to_numeric(raw_t, errors="coerce")
    if numeric.notna().all() and len(raw_t):
        t = numeric.to_numpy(dtype=float)
        t = np.where(t > 1e11, t / 1000.0, t)
    else:
        t = parse_times(raw_t.tolist(), name)
    acc = (
        _csv_numbers(frame[picked["accuracy"]].replace("", "nan"), name, "accuracy")
        if "accuracy" in picked
        else np.full(len(frame), np.nan)
    )
    out = TrackFile(
        name=name,
        format="csv",
        track=np.zeros(len(frame), dtype=np.int64),
        segment=np.zeros(len(frame), dtype=np.int64),
        t=t,
        lon=lon,
        lat=lat,
        accuracy=acc,
        track_names=[Path(name).stem],
        truncated=truncated,
    )
    if truncated:
        out.warnings.append(truncated)
    return out


def _csv_numbers(col: pd.Series, name: str, what: str) -> FloatArray:
    values = pd.to_numeric(col.str.strip(), errors="coerce")
    bad = values.isna() & (col.str.strip().str.lower() != "nan")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileFormatError(f"{name}: line {i + 2}: {what} {col.iloc[i][:40]!r} is not a number")
    return values.to_numpy(dtype=float)


# ---------------------------------------------------------------------------------- cleaning


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of :func:`clean_fixes` (configurable per office)."""

    max_speed_kmh: float = 25.0  # walking and e-bikes; faster steps are impossible fixes
    max_accuracy_m: float = 50.0  # fixes reporting worse accuracy are dropped
    gap_s: float = 120.0  # a longer silence starts a new segment (not walked through)
    stay_window_s: float = 60.0  # stationary if the net move over this window ...
    stay_radius_m: float = 15.0  # ... stays under this: the fixes inside are jitter

    @property
    def max_speed_ms(self) -> float:
        return self.max_speed_kmh / 3.6


@dataclass
class CleanTrack:
    """Cleaning result for one track's fixes, in the order given (not sorted).

    ``order`` sorts the input by time; ``flag`` (in sorted order) is 0 for kept fixes or the
    reason code (:data:`FLAG_NAMES`); ``segment`` numbers the cleaned segments (-1 where
    dropped, jitter included: jitter keeps the segment of its stay).
    """

    order: IntArray
    flag: npt.NDArray[np.uint8]
    segment: IntArray

    def counts(self) -> dict[str, int]:
        """How many fixes were kept and dropped, by reason."""
        c = np.bincount(self.flag, minlength=len(FLAG_NAMES))
        return {FLAG_NAMES[i]: int(c[i]) for i in range(len(FLAG_NAMES))}


def clean_fixes(
    t: FloatArray,
    x: FloatArray,
    y: FloatArray,
    accuracy: FloatArray | None = None,
    rules: CleaningRules | None = None,
) -> CleanTrack:
    """Clean one track given times (s) and metric coordinates (m).

    Rules, in order: sort by time; a fix at the same time as the previous one is a
    duplicate; a fix with reported accuracy worse than ``max_accuracy_m`` is inaccurate; a
    fix reached and left faster than ``max_speed`` while its neighbours are plausibly
    connected is an isolated jump; then, repeatedly, the later fix of any step still faster
    than ``max_speed`` is dropped (the first fix, when it is the odd one out); the rest is
    split on gaps over ``gap_s``; inside a stay (net move under ``stay_radius_m`` over
    ``stay_window_s``) only the first and last fix are kept, the others are jitter.
    """
    rules = rules or CleaningRules()
    n = len(t)
    if np.isnan(t).any():
        raise FileFormatError("a track point has no time: patrol tracks need timestamps")
    order = np.argsort(t, kind="stable")
    ts, xs, ys = t[order], x[order], y[order]
    flag = np.zeros(n, dtype=np.uint8)
    if n > 1:
        flag[1:][np.diff(ts) == 0] = DUPLICATE
    if accuracy is not None:
        acc = accuracy[order]
        flag[(flag == 0) & (acc > rules.max_accuracy_m)] = INACCURATE
    vmax = rules.max_speed_ms
    # The steps between kept fixes are measured once and then only where a drop joined two
    # new neighbours, and a spike's bypass only where two fast steps meet: the same numbers
    # as measuring everything every round, at half the cost (hypot is the dear part).
    idx = np.flatnonzero(flag == 0)
    dt = np.diff(ts[idx])
    d = np.hypot(np.diff(xs[idx]), np.diff(ys[idx]))
    for _ in range(50):
        if len(idx) < 2:
            break
        fast = (d > vmax * dt) & (dt <= rules.gap_s)
        if not fast.any():
            break
        if len(idx) >= 3:
            at = np.flatnonzero(fast[:-1] & fast[1:])
            a, c = idx[at], idx[at + 2]
            spike = np.hypot(xs[c] - xs[a], ys[c] - ys[a]) <= vmax * (ts[c] - ts[a])
            if spike.any():
                flag[idx[at[spike] + 1]] = JUMP
                idx, dt, d = _kept_steps(idx, flag, ts, xs, ys, dt, d)
                continue
        drop = idx[1:][fast]
        # the first fix of a run is the outlier when the step after it is fine
        first_bad = fast[0] and (len(fast) == 1 or not fast[1])
        if first_bad and (len(idx) > 2):
            drop = np.r_[idx[0], drop[1:]]
        flag[drop] = SPEED
        idx, dt, d = _kept_steps(idx, flag, ts, xs, ys, dt, d)
    seg = np.full(n, -1, dtype=np.int64)
    if len(idx):
        seg[idx] = np.concatenate(([0], np.cumsum(dt > rules.gap_s)))
        _flag_jitter(ts, xs, ys, idx, seg, flag, rules)
    return CleanTrack(order=order, flag=flag, segment=seg)


def _kept_steps(
    idx: IntArray,
    flag: npt.NDArray[np.uint8],
    ts: FloatArray,
    xs: FloatArray,
    ys: FloatArray,
    dt: FloatArray,
    d: FloatArray,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """The fixes of ``idx`` still kept, and the time and length of the steps between them:
    reused where both ends were already neighbours, measured where a drop joined them."""
    pos = np.flatnonzero(flag[idx] == 0)
    kept = idx[pos]
    if len(kept) < 2:
        return kept, np.empty(0), np.empty(0)
    at = pos[:-1]
    new_dt, new_d = dt[at], d[at]
    joined = np.flatnonzero(np.diff(pos) != 1)
    a, b = kept[joined], kept[joined + 1]
    new_dt[joined] = ts[b] - ts[a]
    new_d[joined] = np.hypot(xs[b] - xs[a], ys[b] - ys[a])
    return kept, new_dt, new_d


def _flag_jitter(
    ts: FloatArray,
    xs: FloatArray,
    ys: FloatArray,
    idx: IntArray,
    seg: IntArray,
    flag: npt.NDArray[np.uint8],
    rules: CleaningRules,
) -> None:
    """Mark the inner fixes of stays as jitter (vectorised: a window per fix)."""
    tt = ts[idx] + seg[idx] * 1e9  # segments far apart in time: windows never cross them
    j = np.searchsorted(tt, tt + rules.stay_window_s)
    valid = j < len(idx)
    jj = np.minimum(j, len(idx) - 1)
    net = np.hypot(xs[idx[jj]] - xs[idx], ys[idx[jj]] - ys[idx])
    still = valid & (net < rules.stay_radius_m) & (seg[idx[jj]] == seg[idx])
    if not still.any():
        return
    cover = np.zeros(len(idx) + 1, dtype=np.int64)
    starts = np.flatnonzero(still)
    np.add.at(cover, starts, 1)
    np.add.at(cover, jj[starts] + 1, -1)
    in_stay = np.cumsum(cover[:-1]) > 0
    # keep the first and last fix of every run of stay fixes
    prev = np.r_[False, in_stay[:-1]]
    nxt = np.r_[in_stay[1:], False]
    inner = in_stay & prev & nxt
    flag[idx[inner]] = JITTER


def project(
    lon: FloatArray, lat: FloatArray, lon0: float, lat0: float
) -> tuple[FloatArray, FloatArray]:
    """Local metric coordinates (m) around (lon0, lat0) for cleaning and step lengths.

    An equirectangular tangent plane: over a street office (< 20 km) its scale error is
    below 0.1 %, far under GPS noise, and it is ~10x faster than a pyproj transform on
    millions of fixes. Areas and coverage use :func:`gis.crs.metric_crs` instead.
    """
    k = np.pi / 180.0 * 6_371_008.8
    x = (lon - lon0) * k * np.cos(np.radians(lat0))
    y = (lat - lat0) * k
    return x, y
