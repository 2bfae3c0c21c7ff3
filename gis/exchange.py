"""Grid layers in and out of files: GeoJSON, GeoPackage, zipped Shapefile and KML (pyogrio).

Export (:func:`write_layer`) takes grids in WGS84 and writes them in the CRS the user asks
for: WGS84, CGCS2000 (EPSG:4490, same numbers, labelled 4490), GCJ-02 or BD-09. GCJ-02 and
BD-09 have no EPSG code: their coordinates are written with a WGS84 label, as AMap and Baidu
tools expect, and the CRS is named in the file name. KML is written with GDAL's LIBKML driver
(code, level, parent and counts as ``ExtendedData``; the grid name as the placemark name).

Import (:func:`read_layer`) is the reverse, with the user declaring the CRS of the file: the
coordinates are converted to WGS84 at the edge (:func:`gis.crs.to_wgs84`), checked to lie in
China (degrees declared for a file in metres, or lat/lon swapped, are refused with the first
bad coordinate), and every geometry is checked: an invalid one is refused with
``shapely.is_valid_reason`` (reason and location) unless ``repair`` asks for ``make_valid``.
A file that carries its own CRS must agree with the declared one (a projected CRS is refused).

Column names are matched case-insensitively; a grid needs ``code`` (or 编码); ``name`` (名称),
``level`` and ``parent`` / ``parent_code`` are optional (the level follows from the code's
form in the GB/T 30428.1-style scheme of :mod:`gis.grids`, the parent from its prefix).
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis.crs import CGCS2000, WGS84, check_lonlat, from_wgs84, parse_input_crs, to_wgs84
from gis.errors import CoordinateRangeError, CRSError, EmptyInputError, FileFormatError, GisError
from gis.grids import CODE_PATTERN

log = logging.getLogger(__name__)

Format = Literal["geojson", "gpkg", "shp", "kml"]


@dataclass(frozen=True)
class FileKind:
    """One exchange format: GDAL driver, file extension and media type."""

    driver: str
    extension: str
    media_type: str


FORMATS: dict[str, FileKind] = {
    "geojson": FileKind("GeoJSON", ".geojson", "application/geo+json"),
    "gpkg": FileKind("GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "shp": FileKind("ESRI Shapefile", ".zip", "application/zip"),
    "kml": FileKind("LIBKML", ".kml", "application/vnd.google-earth.kml+xml"),
}
_EXTENSIONS: dict[str, str] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "shp",
    ".shp": "shp",
    ".kml": "kml",
}
# Written columns: Shapefile field names have at most 10 characters, hence "parent".
EXPORT_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "level",
    "parent",
    "households",
    "residents",
    "version",
)
_COLUMN_ALIASES: dict[str, str] = {
    "code": "code",
    "编码": "code",
    "grid_code": "code",
    "name": "name",
    "名称": "name",
    "level": "level",
    "层级": "level",
    "parent": "parent_code",
    "parent_code": "parent_code",
    "上级编码": "parent_code",
}
MAX_ZIP_MEMBERS = 50
MAX_UNZIPPED_BYTES = 500_000_000
MAX_FEATURES = 100_000
MAX_REPORTED = 20


class LayerRejectedError(GisError):
    """A layer cannot be imported; ``problems`` lists each reason with its place."""

    def __init__(self, message: str, problems: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Layer:
    """A grid layer read from a file, in WGS84, with what was done to it on the way in."""

    frame: gpd.GeoDataFrame
    source_crs: str
    repaired: list[dict[str, object]] = field(default_factory=list)


def format_of(filename: str) -> str:
    """The exchange format of a file name (by extension); :class:`FileFormatError` otherwise."""
    ext = PurePosixPath(filename.lower()).suffix
    try:
        return _EXTENSIONS[ext]
    except KeyError:
        allowed = ", ".join(sorted(_EXTENSIONS))
        raise FileFormatError(
            f"unsupported file {filename!r}: use one of {allowed} (a Shapefile zipped)"
        ) from None


def _convert(geoms: np.ndarray, fn: object) -> np.ndarray:
    return shapely.transform(geoms, fn)  # type: ignore[arg-type]


def convert_geometries(geoms: np.ndarray, crs: str, *, to: Literal["wgs84", "crs"]) -> np.ndarray:
    """Convert geometries' coordinates between WGS84 and a supported CRS (vectorised)."""
    name = parse_input_crs(crs)
    if name in ("wgs84", "cgcs2000"):
        return np.asarray(geoms, dtype=object)
    if to == "wgs84":

        def fwd(xy: np.ndarray) -> np.ndarray:
            x, y = to_wgs84(xy[:, 0], xy[:, 1], name)
            return np.column_stack([x, y])

        return _convert(geoms, fwd)

    def back(xy: np.ndarray) -> np.ndarray:
        x, y = from_wgs84(xy[:, 0], xy[:, 1], name)
        return np.column_stack([x, y])

    return _convert(geoms, back)


def export_frame(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The exported attribute table: code, name, level, parent, households, residents, version."""
    frame = grids.rename(columns={"parent_code": "parent"}).copy()
    for col in EXPORT_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    out = gpd.GeoDataFrame(frame[list(EXPORT_COLUMNS)], geometry=frame.geometry.values, crs=WGS84)
    for col in ("households", "residents", "version"):
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype("int64")
    for col in ("code", "name", "level", "parent"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def write_layer(
    grids: gpd.GeoDataFrame, fmt: str, *, crs: str = "wgs84", layer: str = "grids"
) -> bytes:
    """A grid layer as the bytes of one file (a zip for Shapefile).

    Parameters
    ----------
    grids
        Columns code, name, level, parent_code, households, residents, version, geometry
        (EPSG:4326).
    fmt
        'geojson', 'gpkg', 'shp' or 'kml'.
    crs
        Output coordinates: 'wgs84', 'cgcs2000', 'gcj02' or 'bd09'.
    layer
        Layer name inside the file (and the file names inside the Shapefile zip).
    """
    if fmt not in FORMATS:
        raise FileFormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    name = parse_input_crs(crs)
    frame = export_frame(grids if grids.crs is None else grids.to_crs(WGS84))
    label = CGCS2000 if name == "cgcs2000" else WGS84
    frame = gpd.GeoDataFrame(
        frame.drop(columns="geometry"),
        geometry=convert_geometries(frame.geometry.values, name, to="crs"),
        crs=label,
    )
    kind = FORMATS[fmt]
    with tempfile.TemporaryDirectory(prefix="wangge-export-") as tmp:
        base = Path(tmp)
        target = base / (layer + (".shp" if fmt == "shp" else kind.extension))
        options: dict[str, object] = {}
        if fmt == "shp":
            options["encoding"] = "UTF-8"
        if fmt == "geojson":
            # RFC 7946 (CCW rings, WGS84) unless the CGCS2000 label must be kept
            options["layer_options"] = (
                {"RFC7946": "YES", "COORDINATE_PRECISION": 9}
                if name != "cgcs2000"
                else {"COORDINATE_PRECISION": 9}
            )
        pyogrio.write_dataframe(frame, target, driver=kind.driver, layer=layer, **options)
        if fmt != "shp":
            return target.read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(base.iterdir()):
                zf.write(part, part.name)
        return buf.getvalue()


def _safe_unzip(data: bytes, into: Path) -> Path:
    """Extract a zipped Shapefile safely (no absolute or ``..`` paths, size capped); the .shp."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise FileFormatError("the .zip file is not a valid zip archive") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise FileFormatError(f"the zip holds {len(members)} files; at most 50 expected")
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise FileFormatError("the zip unpacks to more than 500 MB")
        shps = []
        for m in members:
            path = PurePosixPath(m.filename)
            if path.is_absolute() or ".." in path.parts:
                raise FileFormatError(f"unsafe path in zip: {m.filename!r}")
            if path.name.startswith(".") or "__MACOSX" in path.parts:
                continue
            out = into / path.name
            out.write_bytes(zf.read(m))
            if path.suffix.lower() == ".shp":
                shps.append(out)
    if len(shps) != 1:
        raise FileFormatError(
            f"the zip must hold exactly one .shp (with its .shx and .dbf); found {len(shps)}"
        )
    stem = shps[0].with_suffix("")
    for need in (".shx", ".dbf"):
        if not any(p.suffix.lower() == need for p in into.glob(stem.name + ".*")):
            raise FileFormatError(f"the zipped Shapefile lacks its {need} file")
    return shps[0]


def _file_crs_check(file_crs: str | None, declared: str, filename: str) -> None:
    """Refuse a file whose own CRS contradicts the declared one (e.g. a projected CRS)."""
    if not file_crs:
        return
    try:
        crs = pyproj.CRS.from_user_input(file_crs)
    except pyproj.exceptions.CRSError:
        return
    if crs.is_projected:
        unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
        raise CRSError(
            f"{filename} is in a projected CRS ({crs.name}, EPSG:{crs.to_epsg()}, in {unit}s), "
            f"but you declared {declared} (degrees); reproject it to WGS84 or CGCS2000 first"
        )
    if crs.is_geographic and crs.to_epsg() not in (None, 4326, 4490, 4258, 4979):
        raise CRSError(
            f"{filename} is in {crs.name} (EPSG:{crs.to_epsg()}); declare or convert to WGS84, "
            "CGCS2000, GCJ-02 or BD-09"
        )


def _read_file(data: bytes, filename: str) -> tuple[gpd.GeoDataFrame, str | None]:
    fmt = format_of(filename)
    if not data:
        raise EmptyInputError(f"{filename} is empty")
    with tempfile.TemporaryDirectory(prefix="wangge-import-") as tmp:
        base = Path(tmp)
        if fmt == "shp":
            if not filename.lower().endswith(".zip"):
                raise FileFormatError("upload a Shapefile as one .zip holding .shp, .shx, .dbf")
            path = _safe_unzip(data, base)
        else:
            path = base / ("upload" + FORMATS[fmt].extension)
            path.write_bytes(data)
        try:
            info = pyogrio.read_info(path)
            if int(info.get("features") or 0) > MAX_FEATURES:
                raise FileFormatError(f"{filename} holds more than {MAX_FEATURES:,} features")
            frame = pyogrio.read_dataframe(path)
        except pyogrio.errors.DataSourceError as exc:
            raise FileFormatError(f"{filename} cannot be read as {fmt}: {exc}") from None
        except pyogrio.errors.DataLayerError as exc:
            raise FileFormatError(f"{filename}: {exc}") from None
    file_crs = info.get("crs")
    return frame, (str(file_crs) if file_crs else None)


def _normalise_columns(frame: gpd.GeoDataFrame, filename: str) -> gpd.GeoDataFrame:
    renamed: dict[str, str] = {}
    for col in frame.columns:
        if col == frame.geometry.name:
            continue
        key = _COLUMN_ALIASES.get(str(col).strip().lower())
        if key and key not in renamed.values():
            renamed[col] = key
    frame = frame.rename(columns=renamed)
    if "code" not in frame.columns:
        raise FileFormatError(f"{filename} has no 'code' column (columns: {list(frame.columns)})")
    return frame


def _level_of(code: str) -> str | None:
    for level in ("micro", "grid", "dedicated", "community", "street"):
        if CODE_PATTERN[level].match(code):
            return level
    return None


def _parent_of(code: str, level: str) -> str | None:
    if level in ("community", "dedicated"):
        return code[:9]
    if level in ("grid", "micro"):
        return code[:-2]
    return None


def _as_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code stored as a number in a .dbf
    text = str(value).strip()
    return text or None


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    polys: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon) and not part.is_empty:
            polys.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            polys.extend(_polygonal(part).geoms)
    return MultiPolygon(polys)


_REASON_AT = re.compile(r"\[(-?[\d.]+(?:e[-+]?\d+)?) (-?[\d.]+(?:e[-+]?\d+)?)\]", re.IGNORECASE)


def _where(geom: BaseGeometry, reason: str | None = None) -> list[float] | None:
    """[lon, lat] of a problem: the point GEOS names in the reason, else a point of the
    geometry."""
    found = _REASON_AT.search(reason or "")
    if found:
        return [round(float(found.group(1)), 7), round(float(found.group(2)), 7)]
    if geom is None or geom.is_empty:
        return None
    p = geom.representative_point() if shapely.is_valid(geom) else shapely.centroid(geom)
    return [round(float(p.x), 7), round(float(p.y), 7)]


def check_geometries(
    frame: gpd.GeoDataFrame, *, repair: bool = False
) -> tuple[gpd.GeoDataFrame, list[dict[str, object]]]:
    """Polygons only, each valid: invalid ones refused with reason and place, or repaired.

    Returns the frame with (Multi)Polygon geometries and, with ``repair``, the list of what was
    repaired (code, reason, location). Raises :class:`LayerRejectedError` listing every
    geometry that is missing, not polygonal, or invalid (when not repairing).
    """
    problems: list[dict[str, object]] = []
    repaired: list[dict[str, object]] = []
    geoms = list(frame.geometry.values)
    for i, (code, geom) in enumerate(zip(frame["code"], geoms, strict=True)):
        feature = {"feature": i + 1, "code": code}
        if geom is None or geom.is_empty:
            problems.append({**feature, "reason": "empty or missing geometry", "location": None})
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(
                {
                    **feature,
                    "reason": f"a grid must be a polygon, got {geom.geom_type}",
                    "location": _where(geom),
                }
            )
            continue
        if shapely.is_valid(geom):
            geoms[i] = _polygonal(geom)
            continue
        reason = shapely.is_valid_reason(geom)
        if not repair:
            problems.append({**feature, "reason": reason, "location": _where(geom, reason)})
            continue
        fixed = _polygonal(shapely.make_valid(geom))
        if fixed.is_empty:
            problems.append(
                {**feature, "reason": f"{reason}; make_valid leaves no area", "location": None}
            )
            continue
        geoms[i] = fixed
        repaired.append({**feature, "reason": reason, "location": _where(geom, reason)})
    if problems:
        head = "; ".join(
            f"feature {p['feature']} ({p['code']}): {p['reason']}" for p in problems[:5]
        )
        hint = "" if repair else " (repair=true runs make_valid)"
        raise LayerRejectedError(f"{len(problems)} geometries refused{hint}: {head}", problems)
    out = frame.copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return out, repaired


def _coordinates_in_china(geoms: np.ndarray, declared: str, filename: str) -> None:
    xy = shapely.get_coordinates(geoms)
    if len(xy) == 0:
        raise EmptyInputError(f"{filename} has no coordinates")
    try:
        check_lonlat(xy[:, 0], xy[:, 1], require_china=True)
    except CoordinateRangeError as exc:
        big = np.abs(xy).max() > 1000
        hint = "; the numbers look like metres of a projected CRS, not degrees" if big else ""
        raise CoordinateRangeError(f"{filename} declared as {declared}: {exc}{hint}") from None


def read_features(
    data: bytes,
    filename: str,
    *,
    crs: str,
    repair: bool = False,
    require_code: bool = True,
) -> Layer:
    """Read any polygon layer file into WGS84: declared CRS converted, geometries checked.

    ``frame`` has the file's columns (code, name... normalised) and MultiPolygon geometries.
    Without ``require_code`` a feature lacking a code is numbered ``F1``, ``F2``... (another
    department's layer may use its own identifiers or none).
    """
    declared = parse_input_crs(crs)
    raw, file_crs = _read_file(data, filename)
    if len(raw) == 0:
        raise EmptyInputError(f"{filename} holds no features")
    if format_of(filename) != "kml":  # KML is WGS84 by definition; GCJ-02 KMLs say so too
        _file_crs_check(file_crs, declared, filename)
    if not require_code and "code" not in {
        _COLUMN_ALIASES.get(str(c).strip().lower()) for c in raw.columns
    }:
        raw["code"] = None
    frame = _normalise_columns(raw, filename)
    frame = frame.set_geometry(shapely.force_2d(frame.geometry.values), crs=None)
    codes = [_as_text(v) for v in frame["code"]]
    missing = [i + 1 for i, c in enumerate(codes) if c is None]
    if missing and require_code:
        raise LayerRejectedError(
            f"{len(missing)} features have no code (first: feature {missing[0]})",
            [{"feature": i, "reason": "no code"} for i in missing[:MAX_REPORTED]],
        )
    frame["code"] = [c if c is not None else f"F{i + 1}" for i, c in enumerate(codes)]
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    _coordinates_in_china(geoms[present], declared, filename)
    try:
        converted = convert_geometries(geoms, declared, to="wgs84")
    except CoordinateRangeError as exc:
        raise CoordinateRangeError(f"{filename}: {exc}") from None
    frame = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=converted, crs=WGS84)
    frame, repaired = check_geometries(frame, repair=repair)
    return Layer(frame, declared, repaired)


def read_layer(data: bytes, filename: str, *, crs: str, repair: bool = False) -> Layer:
    """Read one of our grid layers into WGS84 with codes, levels and parents filled in.

    Parameters
    ----------
    data, filename
        The file's bytes and name (its extension picks the format; a Shapefile comes zipped).
    crs
        The CRS the user declares for the coordinates: wgs84, cgcs2000, gcj02 or bd09.
    repair
        Repair invalid geometries with ``make_valid`` instead of refusing them.

    Returns
    -------
    Layer
        ``frame`` with columns code, name, level, parent_code, geometry (EPSG:4326,
        MultiPolygon), in file order; ``repaired`` lists what ``make_valid`` fixed.
    """
    read = read_features(data, filename, crs=crs, repair=repair)
    frame, declared, repaired = read.frame, read.source_crs, read.repaired
    levels, parents, names = [], [], []
    problems: list[dict[str, object]] = []
    for i, rec in enumerate(frame.itertuples(index=False)):
        code = rec.code
        level = _as_text(getattr(rec, "level", None)) or _level_of(code)
        if level is None or level not in CODE_PATTERN:
            problems.append(
                {"feature": i + 1, "code": code, "reason": f"cannot tell the level of {code}"}
            )
            level = ""
        parent = _as_text(getattr(rec, "parent_code", None)) or _parent_of(code, level)
        levels.append(level)
        parents.append(parent)
        names.append(_as_text(getattr(rec, "name", None)) or code)
    if problems:
        raise LayerRejectedError(f"{len(problems)} features have no usable level", problems)
    out = gpd.GeoDataFrame(
        {"code": frame["code"].tolist(), "name": names, "level": levels, "parent_code": parents},
        geometry=frame.geometry.values,
        crs=WGS84,
    )
    log.info("read %d grids from %s (declared %s)", len(out), filename, declared)
    return Layer(out, declared, repaired)
