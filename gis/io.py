"""Point files in and out (CSV, GeoJSON, GeoParquet), streamed in chunks; batch geocoding.

Every reader yields :class:`PointChunk` objects of at most ``chunk_rows`` rows, so memory stays
bounded by the chunk size whatever the file size:

* CSV: pandas' C reader in chunks, every column kept as text (a round trip changes nothing);
  lon/lat columns named by the caller or detected (lon, lng, long, longitude, x, 经度 /
  lat, latitude, y, 纬度; case-insensitive).
* GeoJSON: a FeatureCollection of Points streamed through pyogrio's Arrow reader (GDAL).
* GeoParquet: ``pyarrow.parquet.ParquetFile.iter_batches``; the geometry column (WKB) named by
  the file's ``geo`` metadata, or plain lon/lat columns when there is none.

Structural problems (unknown extension, missing lon/lat columns, malformed CSV, bad JSON, a
file that is not Parquet) raise :class:`~gis.errors.FileFormatError` naming the line, column
or feature. A row whose coordinates are unusable (empty, not a number, out of range, not a
point) does not stop the file: it gets an ``error`` message naming its line and column, and
no grid chain. Writers take Arrow record batches of one schema and stream them out.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain as iter_chain
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyogrio
import pyproj
import shapely

from gis.crs import parse_input_crs, to_wgs84
from gis.errors import FileFormatError
from gis.geocode import CHAIN_COLUMNS, GridIndex

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".txt": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
LON_NAMES: tuple[str, ...] = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_NAMES: tuple[str, ...] = ("lat", "latitude", "y", "纬度")
ERROR_COLUMN = "error"
OUTPUT_COLUMNS: tuple[str, ...] = (*CHAIN_COLUMNS, ERROR_COLUMN)
# Bad JSON is re-parsed with the json module to name line and column, up to this size.
_JSON_DIAGNOSE_MAX_BYTES = 256 * 1024 * 1024

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PointChunk:
    """Up to ``chunk_rows`` consecutive rows of a point file.

    Attributes
    ----------
    attrs
        The input columns except a geometry column, as read (CSV: all text).
    lon, lat
        Coordinates in the file's CRS; NaN where the row has no usable point.
    errors
        Per row, why its point is unusable (naming line/feature and column), or None.
    start
        0-based position of the chunk's first row in the file.
    wkb
        The input geometry as WKB (GeoJSON/GeoParquet), or None when points come from
        lon/lat columns.
    """

    attrs: pa.Table
    lon: FloatArray
    lat: FloatArray
    errors: npt.NDArray[np.object_]
    start: int
    wkb: pa.Array | None = None

    def __len__(self) -> int:
        return int(self.lon.size)


def file_format(path: str | Path) -> str:
    """'csv', 'geojson' or 'parquet' from the file extension; FileFormatError otherwise."""
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        allowed = ", ".join(sorted(FORMATS))
        raise FileFormatError(
            f"{Path(path).name}: unsupported file type {suffix or '(none)'!r}; use {allowed}"
        ) from None


def detect_lonlat(
    columns: Iterable[str], *, lon: str | None = None, lat: str | None = None, name: str = "file"
) -> tuple[str, str]:
    """Pick the longitude and latitude columns (given names, or the usual names).

    Raises
    ------
    FileFormatError
        A given column is absent, or no usual name matches; the message lists the columns.
    """
    cols = [str(c) for c in columns]
    listed = ", ".join(cols) if cols else "(none)"

    def pick(given: str | None, names: tuple[str, ...], what: str) -> str:
        if given is not None:
            if given in cols:
                return given
            raise FileFormatError(f"{name}: no {what} column {given!r} (columns: {listed})")
        lowered = {c.strip().lower(): c for c in reversed(cols)}
        for candidate in names:
            if candidate in lowered:
                return lowered[candidate]
        raise FileFormatError(
            f"{name}: no {what} column; name it one of {', '.join(names)} "
            f"or say which (columns: {listed})"
        )

    return pick(lon, LON_NAMES, "longitude"), pick(lat, LAT_NAMES, "latitude")


# --------------------------------------------------------------------------- coordinates


def _parse_numbers(
    values: pd.Series, column: str, where: Callable[[int], str], errors: np.ndarray
) -> FloatArray:
    """Text or numbers → float; a row that is empty or not a number gets an error."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        for i in np.flatnonzero(np.isnan(numbers)):
            if errors[i] is None:
                errors[i] = f"{where(i)}: {column} is missing"
        return numbers
    text = pd.Series(values.to_numpy(dtype=object), dtype=object).fillna("")
    stripped = text.astype(str).str.strip()
    parsed = pd.to_numeric(stripped, errors="coerce")
    numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    raw = stripped.to_numpy(dtype=object)
    for i in np.flatnonzero(np.isnan(numbers)):
        if errors[i] is not None:
            continue
        value = raw[i]
        if value.lower() == "nan":
            errors[i] = f"{where(i)}: {column} is NaN"
        elif value == "":
            errors[i] = f"{where(i)}: {column} is empty"
        else:
            errors[i] = f"{where(i)}: {column} {value!r} is not a number"
    return numbers


def _blank_bad(x: FloatArray, y: FloatArray, errors: np.ndarray) -> None:
    bad = pd.notna(errors)
    x[bad] = np.nan
    y[bad] = np.nan


def _check_ranges(
    lon: FloatArray,
    lat: FloatArray,
    errors: np.ndarray,
    where: Callable[[int], str],
    lon_name: str,
    lat_name: str,
) -> None:
    """Errors for infinite or out-of-range coordinates (with a hint when swapped)."""
    with np.errstate(invalid="ignore"):
        bad = np.isinf(lon) | np.isinf(lat) | (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    for i in np.flatnonzero(bad):
        if errors[i] is not None:
            continue
        x, y = float(lon[i]), float(lat[i])
        if not (math.isfinite(x) and math.isfinite(y)):
            errors[i] = f"{where(i)}: {lon_name}/{lat_name} ({x}, {y}) is not finite"
            continue
        hint = " (lat/lon look swapped)" if abs(y) <= 180.0 and abs(x) <= 90.0 else ""
        errors[i] = (
            f"{where(i)}: ({lon_name}, {lat_name}) = ({x}, {y}) is out of range "
            f"for longitude/latitude{hint}"
        )


def _points_from_wkb(
    wkb: pa.Array, where: Callable[[int], str], errors: np.ndarray
) -> tuple[FloatArray, FloatArray]:
    values = np.asarray(wkb.to_pylist(), dtype=object)
    geoms = shapely.from_wkb(values, on_invalid="ignore")
    types = shapely.get_type_id(geoms)
    is_point = types == 0
    empty = shapely.is_empty(geoms) | (types < 0)
    lon = np.full(values.size, np.nan)
    lat = np.full(values.size, np.nan)
    ok = is_point & ~empty
    lon[ok] = shapely.get_x(geoms[ok])
    lat[ok] = shapely.get_y(geoms[ok])
    for i in np.flatnonzero(~ok):
        if values[i] is None:
            errors[i] = f"{where(i)}: no geometry"
        elif geoms[i] is None:
            errors[i] = f"{where(i)}: geometry is not valid WKB"
        elif shapely.is_empty(geoms[i]):
            errors[i] = f"{where(i)}: geometry is empty"
        else:
            errors[i] = f"{where(i)}: geometry is a {geoms[i].geom_type}, not a Point"
    return lon, lat


# ------------------------------------------------------------------------------- readers


def read_points(
    path: str | Path,
    *,
    chunk_rows: int = 1_000_000,
    lon: str | None = None,
    lat: str | None = None,
    encoding: str = "utf-8-sig",
    sep: str = ",",
) -> Iterator[PointChunk]:
    """Stream a point file as :class:`PointChunk` objects (at least one, maybe empty).

    Parameters
    ----------
    path
        A .csv, .geojson/.json or .parquet file.
    chunk_rows
        Rows per chunk; memory is bounded by it.
    lon, lat
        Coordinate column names (CSV, or Parquet without geometry); detected when None.
    encoding, sep
        CSV text encoding (e.g. "gbk" for Excel exports in China) and separator.

    Raises
    ------
    FileFormatError
        Missing columns, malformed CSV or JSON, not a Parquet file.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    fmt = file_format(path)
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{p.name}: no such file")
    if fmt == "csv":
        return _read_csv(p, chunk_rows, lon, lat, encoding, sep)
    if fmt == "geojson":
        return _read_geojson(p, chunk_rows)
    return _read_parquet(p, chunk_rows, lon, lat)


def _read_csv(
    path: Path, chunk_rows: int, lon: str | None, lat: str | None, encoding: str, sep: str
) -> Iterator[PointChunk]:
    try:
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            chunksize=chunk_rows,
            encoding=encoding,
            sep=sep,
            # Blank lines stay (as rows without a point) so that line numbers are exact.
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{path.name}: empty file, expected a header line") from None
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path.name}: not {encoding} text at byte {exc.start}; pass the encoding "
            "(e.g. gbk for Excel exports)"
        ) from exc
    return _csv_chunks(path, reader, lon, lat, encoding, sep)


def _csv_chunks(
    path: Path, reader: Any, lon: str | None, lat: str | None, encoding: str, sep: str
) -> Iterator[PointChunk]:
    start = 0
    lon_col = lat_col = ""
    produced = False
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                break
            except pd.errors.ParserError as exc:
                raise FileFormatError(f"{path.name}: malformed CSV: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise FileFormatError(
                    f"{path.name}: not {encoding} text near data row {start + 1}; pass the "
                    "encoding (e.g. gbk for Excel exports)"
                ) from exc
            if not lon_col:
                lon_col, lat_col = detect_lonlat(frame.columns, lon=lon, lat=lat, name=path.name)
            yield _csv_chunk(frame, start, lon_col, lat_col)
            produced = True
            start += len(frame)
    if not produced:
        # Header only: one empty chunk so that writers still get the columns.
        header = pd.read_csv(path, dtype=str, nrows=0, encoding=encoding, sep=sep)
        lon_col, lat_col = detect_lonlat(header.columns, lon=lon, lat=lat, name=path.name)
        yield _csv_chunk(header, 0, lon_col, lat_col)


def _csv_chunk(frame: pd.DataFrame, start: int, lon_col: str, lat_col: str) -> PointChunk:
    def where(i: int) -> str:
        # Line 1 is the header; quoted newlines inside fields would shift this.
        return f"line {start + i + 2}"

    errors = np.full(len(frame), None, dtype=object)
    x = _parse_numbers(frame[lon_col], lon_col, where, errors)
    y = _parse_numbers(frame[lat_col], lat_col, where, errors)
    _check_ranges(x, y, errors, where, lon_col, lat_col)
    _blank_bad(x, y, errors)
    table = pa.Table.from_pandas(frame.astype(object), preserve_index=False)
    table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
    return PointChunk(attrs=table, lon=x, lat=y, errors=errors, start=start)


def _diagnose_json(path: Path) -> str:
    if path.stat().st_size > _JSON_DIAGNOSE_MAX_BYTES:
        return ""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text at byte {exc.start}"
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        return f"expected a FeatureCollection, found {kind!r}"
    return ""


def _read_geojson(path: Path, chunk_rows: int) -> Iterator[PointChunk]:
    try:
        ctx = pyogrio.open_arrow(path, batch_size=chunk_rows, use_pyarrow=True)
        meta, reader = ctx.__enter__()
    except Exception as exc:  # GDAL raises several classes for unreadable JSON
        detail = _diagnose_json(path) or str(exc)
        raise FileFormatError(f"{path.name}: not a GeoJSON FeatureCollection ({detail})") from exc
    return _geojson_chunks(path, ctx, reader, meta)


def _geojson_chunks(path: Path, ctx: Any, reader: Any, meta: dict) -> Iterator[PointChunk]:
    geom_name = meta.get("geometry_name") or "wkb_geometry"
    start = 0
    produced = False
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except Exception as exc:
                detail = _diagnose_json(path) or str(exc)
                raise FileFormatError(
                    f"{path.name}: bad GeoJSON near feature {start + 1} ({detail})"
                ) from exc
            yield _geo_chunk(pa.Table.from_batches([batch]), geom_name, start, "feature")
            produced = True
            start += batch.num_rows
        if not produced:
            schema = reader.schema
            empty = pa.Table.from_batches([], schema=schema)
            yield _geo_chunk(empty, geom_name, 0, "feature")
    finally:
        ctx.__exit__(None, None, None)


def _geo_chunk(table: pa.Table, geom_name: str, start: int, unit: str) -> PointChunk:
    def where(i: int) -> str:
        return f"{unit} {start + i + 1}"

    errors = np.full(table.num_rows, None, dtype=object)
    wkb = table.column(geom_name).combine_chunks()
    if pa.types.is_large_binary(wkb.type):
        wkb = wkb.cast(pa.binary())
    x, y = _points_from_wkb(wkb, where, errors)
    _check_ranges(x, y, errors, where, "lon", "lat")
    _blank_bad(x, y, errors)
    attrs = table.drop_columns([geom_name])
    return PointChunk(attrs=attrs, lon=x, lat=y, errors=errors, start=start, wkb=wkb)


def _read_parquet(
    path: Path, chunk_rows: int, lon: str | None, lat: str | None
) -> Iterator[PointChunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileFormatError(f"{path.name}: not a Parquet file ({exc})") from exc
    geo = _geo_metadata(pf.schema_arrow, path.name)
    names = pf.schema_arrow.names
    if geo is not None:
        geom_name = geo.get("primary_column", "geometry")
        encoding = str(geo.get("columns", {}).get(geom_name, {}).get("encoding", "WKB"))
        if encoding.upper() != "WKB":
            raise FileFormatError(
                f"{path.name}: geometry column {geom_name!r} is {encoding}-encoded; "
                "only WKB GeoParquet is read"
            )
        if geom_name not in names:
            raise FileFormatError(f"{path.name}: geo metadata names a missing column {geom_name!r}")
        return _parquet_geo_chunks(pf, geom_name, chunk_rows)
    lon_col, lat_col = detect_lonlat(names, lon=lon, lat=lat, name=path.name)
    return _parquet_lonlat_chunks(pf, lon_col, lat_col, chunk_rows)


def _geo_metadata(schema: pa.Schema, name: str) -> dict | None:
    raw = (schema.metadata or {}).get(b"geo")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{name}: unreadable 'geo' metadata ({exc.msg})") from exc


def _batches(pf: pq.ParquetFile, chunk_rows: int) -> Iterator[pa.Table]:
    produced = False
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows):
            produced = True
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileFormatError(f"corrupt Parquet data ({exc})") from exc
    if not produced:
        yield pf.schema_arrow.empty_table()


def _parquet_geo_chunks(
    pf: pq.ParquetFile, geom_name: str, chunk_rows: int
) -> Iterator[PointChunk]:
    start = 0
    for table in _batches(pf, chunk_rows):
        yield _geo_chunk(table, geom_name, start, "row")
        start += table.num_rows


def _parquet_lonlat_chunks(
    pf: pq.ParquetFile, lon_col: str, lat_col: str, chunk_rows: int
) -> Iterator[PointChunk]:
    start = 0
    for table in _batches(pf, chunk_rows):

        def where(i: int, start: int = start) -> str:
            return f"row {start + i + 1}"

        errors = np.full(table.num_rows, None, dtype=object)
        x = _parse_numbers(table.column(lon_col).to_pandas(), lon_col, where, errors)
        y = _parse_numbers(table.column(lat_col).to_pandas(), lat_col, where, errors)
        _check_ranges(x, y, errors, where, lon_col, lat_col)
        _blank_bad(x, y, errors)
        yield PointChunk(attrs=table, lon=x, lat=y, errors=errors, start=start)
        start += table.num_rows


# ------------------------------------------------------------------------------- writers


def _crs_for_output(crs: str) -> pyproj.CRS | None:
    name = parse_input_crs(crs)
    if name == "wgs84":
        return pyproj.CRS("EPSG:4326")
    if name == "cgcs2000":
        return pyproj.CRS("EPSG:4490")
    return None  # GCJ-02 / BD-09 have no EPSG code: say nothing rather than lie


def write_points(path: str | Path, batches: Iterable[pa.RecordBatch], *, crs: str = "wgs84") -> int:
    """Stream record batches of one schema to a CSV, GeoJSON or GeoParquet file.

    Batches for GeoJSON and GeoParquet carry a WKB ``geometry`` column (Points);
    ``crs`` (the coordinates' CRS) is recorded where the format can say it. Returns rows
    written. The file is written next to ``path`` and renamed into place at the end.
    """
    fmt = file_format(path)
    out = Path(path)
    iterator = iter(batches)
    try:
        first = next(iterator)
    except StopIteration:
        raise FileFormatError(f"{out.name}: nothing to write (no batches)") from None
    stream = iter_chain([first], iterator)
    tmp = out.with_name(out.name + ".part")
    try:
        if fmt == "csv":
            rows = _write_csv(tmp, first.schema, stream)
        elif fmt == "geojson":
            rows = _write_geojson(tmp, first.schema, stream, crs)
        else:
            rows = _write_parquet(tmp, first.schema, stream, crs)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _write_csv(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
    rows = 0
    options = pa_csv.WriteOptions(quoting_style="needed")
    with pa_csv.CSVWriter(str(path), schema, write_options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_geojson(
    path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], crs: str
) -> int:
    counter = [0]

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            counter[0] += batch.num_rows
            yield batch

    out_crs = _crs_for_output(crs)
    reader = pa.RecordBatchReader.from_batches(schema, counted())
    pyogrio.write_arrow(
        reader,
        path,
        driver="GeoJSON",
        geometry_name="geometry",
        geometry_type="Point",
        crs=out_crs.to_wkt() if out_crs is not None else None,
        layer_options={"RFC7946": "NO", "WRITE_NAME": "NO"},
    )
    return counter[0]


def _write_parquet(
    path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], crs: str
) -> int:
    out_crs = _crs_for_output(crs)
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["Point"]}
    # Unknown (null) for GCJ-02 / BD-09, which have no CRS definition. GeoParquet stores
    # lon/lat order whatever the CRS's axis order.
    column["crs"] = None if out_crs is None else out_crs.to_json_dict()
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    metadata = dict(schema.metadata or {})
    metadata[b"geo"] = json.dumps(geo).encode()
    schema = schema.with_metadata(metadata)
    rows = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for batch in batches:
            writer.write_batch(batch.replace_schema_metadata(metadata))
            rows += batch.num_rows
    return rows


# ------------------------------------------------------------------------- geocode files


def _output_batch(
    chunk: PointChunk, chain: pd.DataFrame, fmt_out: str, drop: list[str]
) -> pa.RecordBatch:
    attrs = chunk.attrs.drop_columns(drop) if drop else chunk.attrs
    arrays: list[pa.Array] = [col.combine_chunks() for col in attrs.columns]
    names = list(attrs.column_names)
    if fmt_out == "csv" and chunk.wkb is not None:
        # Geometry-based input written as CSV: the point's coordinates become columns.
        taken = {"lon", "lat"} & set(names)
        for name, values in zip(("lon", "lat"), (chunk.lon, chunk.lat), strict=True):
            names.append(f"point_{name}" if taken else name)
            arrays.append(pa.array(values, type=pa.float64(), mask=np.isnan(values)))
    for name in CHAIN_COLUMNS:
        names.append(name)
        arrays.append(pa.array(chain[name].to_numpy(dtype=object), type=pa.string()))
    names.append(ERROR_COLUMN)
    arrays.append(pa.array(chunk.errors, type=pa.string()))
    if fmt_out != "csv":
        if chunk.wkb is not None:
            wkb = chunk.wkb
        else:
            ok = ~np.isnan(chunk.lon)
            geoms = np.full(len(chunk), None, dtype=object)
            geoms[ok] = shapely.points(chunk.lon[ok], chunk.lat[ok])
            wkb = pa.array(shapely.to_wkb(geoms), type=pa.binary())
        names.append("geometry")
        arrays.append(wkb)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _replaced_columns(chunk: PointChunk, fmt_out: str) -> list[str]:
    """Input columns that the output's own columns replace (e.g. when re-geocoding)."""
    own = set(OUTPUT_COLUMNS) | ({"geometry"} if fmt_out != "csv" else set())
    drop = [c for c in chunk.attrs.column_names if c in own]
    if drop:
        log.warning("input columns %s are replaced in the output", ", ".join(drop))
    return drop


def geocode_chunk(index: GridIndex, chunk: PointChunk, *, crs: str = "wgs84") -> pd.DataFrame:
    """Chain columns for one chunk: rows with errors (or no point) get None everywhere."""
    ok = np.flatnonzero(~np.isnan(chunk.lon) & ~np.isnan(chunk.lat))
    columns = {name: np.full(len(chunk), None, dtype=object) for name in CHAIN_COLUMNS}
    if ok.size:
        x, y = to_wgs84(chunk.lon[ok], chunk.lat[ok], crs)
        found = index.chain(x, y)
        for name, values in columns.items():
            values[ok] = found[name].to_numpy(dtype=object)
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def geocode_file(
    in_path: str | Path,
    out_path: str | Path,
    index: GridIndex,
    *,
    crs: str = "wgs84",
    chunk_rows: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
    lon: str | None = None,
    lat: str | None = None,
    encoding: str = "utf-8-sig",
    sep: str = ",",
    strict: bool = False,
) -> dict[str, Any]:
    """Assign every point of a file to its grid chain and write the result, streaming.

    Parameters
    ----------
    in_path, out_path
        .csv, .geojson/.json or .parquet; the output format follows ``out_path``'s
        extension. The output holds the input columns plus micro_code, grid_code,
        community_code, street_code, dedicated_code and error (GeoJSON/GeoParquet: plus the
        point geometry; CSV from a geometry input: plus lon/lat columns).
    index
        The grid index.
    crs
        CRS of the input coordinates: wgs84, cgcs2000, gcj02 or bd09; converted to WGS84
        before location. Output coordinates stay as in the input.
    chunk_rows
        Rows per chunk (bounds memory).
    progress
        Called after each chunk with the number of rows it held.
    lon, lat
        Coordinate column names when they cannot be detected.
    encoding, sep
        CSV text encoding and field separator.
    strict
        Raise :class:`FileFormatError` at the first unusable row instead of recording it.

    Returns
    -------
    dict
        rows, located (in a micro grid), outside (valid point, no micro grid), errors,
        dedicated (in a dedicated grid), chunks, format.
    """
    parse_input_crs(crs)
    fmt_out = file_format(out_path)
    chunks = read_points(
        in_path, chunk_rows=chunk_rows, lon=lon, lat=lat, encoding=encoding, sep=sep
    )
    summary = {"rows": 0, "located": 0, "outside": 0, "errors": 0, "dedicated": 0, "chunks": 0}
    drop: list[str] | None = None

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal drop
        for chunk in chunks:
            if drop is None:
                drop = _replaced_columns(chunk, fmt_out)
            bad = np.flatnonzero(pd.notna(chunk.errors))
            if strict and bad.size:
                raise FileFormatError(f"{Path(in_path).name}: {chunk.errors[bad[0]]}")
            chain = geocode_chunk(index, chunk, crs=crs)
            located = int(chain["micro_code"].notna().sum())
            summary["rows"] += len(chunk)
            summary["errors"] += int(bad.size)
            summary["located"] += located
            summary["outside"] += len(chunk) - int(bad.size) - located
            summary["dedicated"] += int(chain["dedicated_code"].notna().sum())
            summary["chunks"] += 1
            yield _output_batch(chunk, chain, fmt_out, drop)
            if progress is not None:
                progress(len(chunk))

    write_points(out_path, batches(), crs=crs)
    log.info("geocoded %s → %s: %s", in_path, out_path, summary)
    return {**summary, "format": fmt_out}
