"""Load a district (the demo generator's files) into PostGIS in one transaction.

Bulk tables go through ``COPY`` into temporary staging tables and one set-based ``INSERT``;
incidents are geocoded by the same trigger that geocodes a single ``POST /incidents``, so the
demo's grid chains and the API's cannot disagree.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.config import get_taxonomy
from gis.db.queries.incidents import apply_taxonomy
from gis.db.queries.planning import record_loaded_versions
from gis.errors import FileFormatError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
LEVEL_ORDER = {"street": 0, "community": 1, "grid": 2, "micro": 3, "dedicated": 4}
DISTRICT_KEY = "district"
_TABLES = (
    # the dashboards' rollup describes the incidents: emptied with them (no state: the next
    # refresh rebuilds it in full)
    "incident_rollup_state",
    "incident_rollup_kpis",
    "incident_rollup_grids",
    "incident_rollup_heat",
    "household_visits",
    "track_effort",
    "track_waypoints",
    "track_points",
    "track_uploads",
    "key_household_people",
    "key_households",
    "patrol_tracks",
    "incidents",
    "staff_grids",
    "staff",
    "stations",
    "buildings",
    "roads",
    "grids",
)


def manifest_digest(data_dir: Path) -> str:
    """A digest of the district's manifest: same files, same digest."""
    path = data_dir / "manifest.json"
    if not path.exists():
        raise FileFormatError(f"{path} is missing: generate the district first")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def loaded_district(session: Session) -> dict[str, Any] | None:
    """What ``load_district`` recorded about the district in the database, if anything."""
    value = session.execute(
        text("SELECT value FROM wangge_meta WHERE key = :k"), {"k": DISTRICT_KEY}
    ).scalar_one_or_none()
    return value if isinstance(value, dict) else (json.loads(value) if value else None)


NULL_MARK = "\\N"


def _copy(session: Session, sql: str, frame: pd.DataFrame) -> None:
    """COPY a frame in CSV; missing values travel as ``\\N`` and are declared as NULL, so an
    empty string stays an empty string and a missing address is NULL, not the text ``\\N``."""
    if "FORMAT csv)" not in sql:
        raise ValueError(f"expected a COPY ... WITH (FORMAT csv) statement, got {sql!r}")
    sql = sql.replace("FORMAT csv)", "FORMAT csv, NULL '\\N')")
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep=NULL_MARK)
    buf.seek(0)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def _wkb(geoms: gpd.GeoSeries) -> pd.Series:
    """Hex EWKB with SRID 4326: exact doubles (rounded WKT would nudge T-junction vertices off
    their edges and open millimetre slivers between grids)."""
    return pd.Series(
        shapely.to_wkb(shapely.set_srid(geoms.values, 4326), hex=True, include_srid=True),
        index=geoms.index,
    )


def load_district(
    session: Session, data_dir: Path, *, progress: Progress | None = None, tracks: bool = True
) -> dict[str, int]:
    """Replace the district in the database with the files in ``data_dir``.

    Runs inside the caller's transaction: on any error nothing is half-written. Returns the
    row counts loaded per table.
    """
    step = progress or (lambda _stage, _done, _total: None)
    gpkg = data_dir / "district.gpkg"
    if not gpkg.exists():
        raise FileFormatError(f"{gpkg} is missing: generate the district first")
    digest = manifest_digest(data_dir)
    session.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
    counts: dict[str, int] = {}

    grids = gpd.read_file(gpkg, layer="grids").to_crs(4326)
    grids = grids.assign(_order=grids["level"].map(LEVEL_ORDER)).sort_values(["_order", "code"])
    step("grids", 0, len(grids))
    session.execute(
        text(
            """
            CREATE TEMP TABLE stage_grids (code text, name text, level text, parent_code text,
              kind text, households int, residents int, wkb text) ON COMMIT DROP
            """
        )
    )
    _copy(
        session,
        "COPY stage_grids FROM STDIN WITH (FORMAT csv)",
        pd.DataFrame(
            {
                "code": grids["code"],
                "name": grids["name"],
                "level": grids["level"],
                "parent_code": grids["parent_code"],
                "kind": grids["kind"] if "kind" in grids else None,
                "households": grids["households"].astype(int),
                "residents": grids["residents"].astype(int),
                "wkb": _wkb(grids.geometry),
            }
        ),
    )
    for level in sorted(LEVEL_ORDER, key=LEVEL_ORDER.__getitem__):
        session.execute(
            text(
                """
                INSERT INTO grids (code, name, level, parent_id, kind, households, residents,
                                   version, geom)
                SELECT s.code, s.name, s.level, p.id, s.kind, s.households, s.residents, 1,
                       ST_Multi(CAST(s.wkb AS geometry))
                FROM stage_grids s LEFT JOIN grids p ON p.code = s.parent_code
                WHERE s.level = :level ORDER BY s.code
                """
            ),
            {"level": level},
        )
    counts["grids"] = len(grids)
    record_loaded_versions(session)  # version 1 of every grid, in force since forever
    step("grids", len(grids), len(grids))

    roads = gpd.read_file(gpkg, layer="roads").to_crs(4326)
    _copy(
        session,
        "COPY roads (name, kind, geom) FROM STDIN WITH (FORMAT csv)",
        pd.DataFrame(
            {
                "name": roads["name"],
                "kind": roads["kind"],
                "geom": _wkb(roads.geometry),
            }
        ),
    )
    counts["roads"] = len(roads)
    step("roads", len(roads), len(roads))

    buildings = gpd.read_file(gpkg, layer="buildings").to_crs(4326)
    session.execute(
        text(
            """
            CREATE TEMP TABLE stage_buildings (id int, address text, road_name text,
              house_number int, compound_name text, building_no int, units int, floors int,
              households int, residents int, micro_code text, wkb text) ON COMMIT DROP
            """
        )
    )
    _copy(
        session,
        "COPY stage_buildings FROM STDIN WITH (FORMAT csv)",
        pd.DataFrame(
            {
                "id": buildings["building_id"].astype(int),
                "address": buildings["address"],
                "road_name": buildings["road_name"],
                "house_number": buildings["house_number"].astype("Int64"),
                "compound_name": buildings["compound_name"],
                "building_no": buildings["building_no"].astype("Int64"),
                "units": buildings["units"].astype(int),
                "floors": buildings["floors"].astype(int),
                "households": buildings["households"].astype(int),
                "residents": buildings["residents"].astype(int),
                "micro_code": buildings["micro_code"],
                "wkb": _wkb(buildings.geometry),
            }
        ),
    )
    session.execute(
        text(
            """
            INSERT INTO buildings (id, address, road_name, house_number, compound_name,
              building_no, units, floors, households, residents, micro_grid_id, geom)
            SELECT s.id, s.address, s.road_name, s.house_number, s.compound_name, s.building_no,
                   s.units, s.floors, s.households, s.residents, g.id,
                   CAST(s.wkb AS geometry)
            FROM stage_buildings s LEFT JOIN grids g ON g.code = s.micro_code
            """
        )
    )
    counts["buildings"] = len(buildings)
    step("buildings", len(buildings), len(buildings))

    stations = gpd.read_file(gpkg, layer="stations").to_crs(4326)
    _copy(
        session,
        "COPY stations (id, kind, name, address, geom) FROM STDIN WITH (FORMAT csv)",
        pd.DataFrame(
            {
                "id": stations["station_id"].astype(int),
                "kind": stations["kind"],
                "name": stations["name"],
                "address": stations["address"],
                "geom": _wkb(stations.geometry),
            }
        ),
    )
    counts["stations"] = len(stations)

    staff = pd.read_csv(data_dir / "staff.csv", dtype={"grid_codes": str, "phone": str})
    _copy(
        session,
        "COPY staff (id, name, role, phone) FROM STDIN WITH (FORMAT csv)",
        staff[["staff_id", "name", "role", "phone"]],
    )
    links = (
        staff.assign(code=staff["grid_codes"].fillna("").str.split(";"))
        .explode("code")
        .query("code != ''")[["staff_id", "code"]]
    )
    session.execute(text("CREATE TEMP TABLE stage_links (staff_id int, code text) ON COMMIT DROP"))
    _copy(session, "COPY stage_links FROM STDIN WITH (FORMAT csv)", links)
    session.execute(
        text(
            "INSERT INTO staff_grids (staff_id, grid_id) SELECT DISTINCT l.staff_id, g.id "
            "FROM stage_links l JOIN grids g ON g.code = l.code"
        )
    )
    counts["staff"] = len(staff)
    step("staff", len(staff), len(staff))

    counts["incidents"] = _load_incidents(session, data_dir / "incidents.csv", step)
    counts["key_households"] = _load_key_households(session, data_dir / "key_households.csv")
    if tracks:
        counts.update(_load_tracks(session, data_dir / "tracks", step))
    for table in ("grids", "roads", "buildings", "stations", "staff"):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        )
    session.execute(
        text(
            """
            INSERT INTO wangge_meta (key, value) VALUES (:k, CAST(:v AS json))
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
            """
        ),
        {"k": DISTRICT_KEY, "v": json.dumps({"digest": digest, "dir": str(data_dir), **counts})},
    )
    log.info("loaded district from %s: %s", data_dir, counts)
    return counts


def _load_incidents(session: Session, path: Path, step: Progress) -> int:
    frame = pd.read_csv(path, dtype={"ext_id": str, "address": str, "description": str})
    step("incidents", 0, len(frame))
    session.execute(
        text(
            """
            CREATE TEMP TABLE stage_incidents (ext_id text, category text, source text,
              description text, lon float8, lat float8, address text, reported_at timestamptz)
            ON COMMIT DROP
            """
        )
    )
    cols = ["ext_id", "category", "source", "description", "lon", "lat", "address", "reported_at"]
    _copy(session, "COPY stage_incidents FROM STDIN WITH (FORMAT csv)", frame[cols])
    # The trigger geocodes each row exactly as it does for a single POST /incidents.
    session.execute(
        text(
            """
            INSERT INTO incidents (ext_id, category, source, description, address, reported_at,
                                   status, location_status, location_source, geom)
            SELECT ext_id, category, source, description, nullif(address, ''), reported_at,
                   'reported', 'needs_location',
                   CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE 'point' END,
                   CASE WHEN lon IS NULL OR lat IS NULL THEN NULL
                        ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END
            FROM stage_incidents ORDER BY reported_at, ext_id
            """
        )
    )
    apply_taxonomy(session, get_taxonomy())
    step("incidents", len(frame), len(frame))
    return len(frame)


def _load_key_households(session: Session, path: Path) -> int:
    """Key households: the household (building, kind, micro grid) apart from its personal
    data (name, phone, unit, room), which goes to its own guarded table."""
    if not path.exists():
        return 0
    frame = pd.read_csv(path, dtype={"phone": str, "unit": str, "room": str})
    _copy(
        session,
        "COPY key_households (id, building_id, kind) FROM STDIN WITH (FORMAT csv)",
        frame[["household_id", "building_id", "kind"]],
    )
    session.execute(
        text(
            "UPDATE key_households k SET grid_id = b.micro_grid_id FROM buildings b "
            "WHERE b.id = k.building_id"
        )
    )
    _copy(
        session,
        "COPY key_household_people (household_id, name, phone, unit, room) "
        "FROM STDIN WITH (FORMAT csv)",
        frame[["household_id", "name", "phone", "unit", "room"]],
    )
    session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('key_households', 'id'), "
            "coalesce((SELECT max(id) FROM key_households), 0) + 1, false)"
        )
    )
    return len(frame)


def _load_tracks(session: Session, folder: Path, step: Progress) -> dict[str, int]:
    """The demo's GPX files through the same pipeline as an upload (clean, assign, visits)."""
    from gis.db.queries.tracks import TrackSource, store_uploads

    files = sorted(folder.glob("*.gpx")) if folder.exists() else []
    if not files:
        return {"patrol_tracks": 0, "track_points": 0}
    uploads = [
        TrackSource(path.name, path.read_bytes(), _staff_id_from_name(path.stem)) for path in files
    ]
    reports = store_uploads(session, uploads, progress=step)
    n_tracks = sum(len(r.get("tracks", [])) for r in reports)
    n_points = sum(int(r.get("points", 0)) for r in reports)
    n_visits = session.execute(text("SELECT count(*) FROM household_visits")).scalar_one()
    return {"patrol_tracks": n_tracks, "track_points": n_points, "household_visits": n_visits}


def _staff_id_from_name(stem: str) -> int | None:
    digits = stem.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else None
