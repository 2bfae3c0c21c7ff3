"""Community service lists and the volunteer points ledger in the database.

The ledger is append-only (a trigger refuses UPDATE and DELETE); every award and redemption
carries an idempotency key, so a double submit never pays or charges twice; redemptions of
one volunteer are serialised by a row lock on the volunteer, so concurrent ones can never
spend the same points twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import GisError, NotFoundError
from gis.volunteering import PointsRules, check_redemption, check_wish_step

_WISH = """
    SELECT w.id, w.kind, w.category, w.text, w.address, w.posted_by, w.wanted_by, w.status,
           w.volunteer_id, v.name AS volunteer_name, w.claimed_at, w.done_at, w.confirmed_at,
           w.hours, w.rating, w.created_at, ST_X(w.geom) AS lon, ST_Y(w.geom) AS lat,
           g4.code AS micro_code, g2.code AS community_code
    FROM wishes w
    LEFT JOIN volunteers v ON v.id = w.volunteer_id
    LEFT JOIN grids g4 ON g4.id = w.micro_grid_id
    LEFT JOIN grids g2 ON g2.id = w.community_id
"""


def add_volunteer(
    session: Session,
    *,
    name: str,
    kind: str,
    lon: float | None = None,
    lat: float | None = None,
    phone: str | None = None,
    skills: list[str] | None = None,
    hours_per_week: float | None = None,
) -> int:
    """Register a volunteer; a home point places them in their micro grid."""
    import json

    return int(
        session.execute(
            text(
                """
                INSERT INTO volunteers (name, kind, phone, skills, hours_per_week, geom,
                                        home_grid_id)
                SELECT :name, :kind, :phone, CAST(:skills AS json), :hours, p,
                       CASE WHEN p IS NULL THEN NULL ELSE wangge_locate(p, 'micro') END
                FROM (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END AS p) s
                RETURNING id
                """
            ),
            {
                "name": name,
                "kind": kind,
                "phone": phone,
                "skills": json.dumps(skills or [], ensure_ascii=False),
                "hours": hours_per_week,
                "lon": lon,
                "lat": lat,
            },
        ).scalar_one()
    )


def add_wish(
    session: Session,
    *,
    kind: str,
    category: str,
    text_: str,
    lon: float | None,
    lat: float | None,
    address: str | None = None,
    posted_by: str | None = None,
    wanted_by: date | None = None,
    idempotency_key: str | None = None,
    resident_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Post a need or small wish; placed in its micro grid and community. A repeated
    idempotency key returns the stored wish with ``created=False``. ``resident_key``: the
    resident who posted it themselves (only they see it in their list)."""
    new_id = session.execute(
        text(
            """
            INSERT INTO wishes (kind, category, text, address, posted_by, wanted_by,
                                idempotency_key, geom, micro_grid_id, community_id,
                                resident_key)
            SELECT :kind, :category, :text, :address, :posted_by, :wanted_by, :key, p,
                   CASE WHEN p IS NULL THEN NULL ELSE wangge_locate(p, 'micro') END,
                   CASE WHEN p IS NULL THEN NULL ELSE wangge_locate(p, 'community') END,
                   :resident
            FROM (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END AS p) s
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """
        ),
        {
            "kind": kind,
            "category": category,
            "text": text_,
            "address": address,
            "posted_by": posted_by,
            "wanted_by": wanted_by,
            "key": idempotency_key,
            "lon": lon,
            "lat": lat,
            "resident": resident_key,
        },
    ).scalar_one_or_none()
    if new_id is None:
        existing = session.execute(
            text("SELECT id FROM wishes WHERE idempotency_key = :k"), {"k": idempotency_key}
        ).scalar_one()
        return get_wish(session, existing), False
    return get_wish(session, new_id), True


def get_wish(session: Session, wish_id: int) -> dict[str, Any]:
    """One wish with its volunteer and grid codes."""
    row = session.execute(text(_WISH + " WHERE w.id = :id"), {"id": wish_id}).mappings().first()
    if row is None:
        raise NotFoundError(f"wish {wish_id} does not exist")
    return dict(row)


def list_wishes(
    session: Session, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Wishes, oldest open first."""
    where = " WHERE w.status = :status" if status else ""
    rows = session.execute(
        text(_WISH + where + " ORDER BY w.created_at, w.id LIMIT :limit OFFSET :offset"),
        {"status": status, "limit": limit, "offset": offset},
    ).mappings()
    return [dict(r) for r in rows]


def wish_step(
    session: Session,
    wish_id: int,
    target: str,
    *,
    now: datetime,
    rules: PointsRules,
    volunteer_id: int | None = None,
    hours: float | None = None,
    rating: int | None = None,
) -> tuple[dict[str, Any], int]:
    """Claim (诺单), mark done, confirm (评单) or cancel a wish; confirming pays the volunteer
    once (the ledger key is the wish). Returns the wish and the points paid by this call."""
    row = session.execute(
        text("SELECT status, volunteer_id, hours FROM wishes WHERE id = :id FOR UPDATE"),
        {"id": wish_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"wish {wish_id} does not exist")
    status, current_volunteer, done_hours = row
    check_wish_step(status, target)
    sets: dict[str, Any] = {"status": target}
    if target == "claimed":
        if volunteer_id is None:
            raise GisError("claiming a wish needs the volunteer's id")
        if (
            session.execute(
                text("SELECT 1 FROM volunteers WHERE id = :v"), {"v": volunteer_id}
            ).first()
            is None
        ):
            raise NotFoundError(f"volunteer {volunteer_id} does not exist")
        sets.update(volunteer_id=volunteer_id, claimed_at=now)
    elif target == "open":  # the volunteer gives it back
        sets.update(volunteer_id=None, claimed_at=None)
    elif target == "done":
        if hours is None:
            raise GisError("marking a wish done needs the hours spent")
        if not 0 < hours <= 24:
            raise GisError(f"hours must be in (0, 24], got {hours}")
        sets.update(done_at=now, hours=hours)
    elif target == "confirmed":
        if rating is None or not 1 <= rating <= 5:
            raise GisError("the resident's confirmation needs a rating 1..5")
        sets.update(confirmed_at=now, rating=rating)
    cols = ", ".join(f"{k} = :{k}" for k in sets)
    session.execute(text(f"UPDATE wishes SET {cols} WHERE id = :id"), {**sets, "id": wish_id})
    paid = 0
    if target == "confirmed":
        points = rules.for_service(float(done_hours), rating, wish=True)
        paid = award(
            session,
            volunteer_id=int(current_volunteer),
            points=points,
            reason=f"微心愿 {wish_id} 完成（{done_hours:g} 小时，评价 {rating}）",
            ref_kind="wish",
            ref_id=wish_id,
            key=f"wish:{wish_id}:confirmed",
        )
    return get_wish(session, wish_id), paid


def award(
    session: Session,
    *,
    volunteer_id: int,
    points: int,
    reason: str,
    key: str,
    ref_kind: str | None = None,
    ref_id: int | None = None,
) -> int:
    """Append one entry; a key seen before adds nothing and returns 0."""
    added = session.execute(
        text(
            """
            INSERT INTO points_ledger (volunteer_id, delta, reason, ref_kind, ref_id,
                                       idempotency_key)
            VALUES (:v, :d, :r, :k, :i, :key)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING delta
            """
        ),
        {"v": volunteer_id, "d": points, "r": reason, "k": ref_kind, "i": ref_id, "key": key},
    ).scalar_one_or_none()
    return int(added or 0)


def balance(session: Session, volunteer_id: int) -> int:
    """The sum of a volunteer's ledger entries."""
    return int(
        session.execute(
            text("SELECT COALESCE(sum(delta), 0) FROM points_ledger WHERE volunteer_id = :v"),
            {"v": volunteer_id},
        ).scalar_one()
    )


def ledger(session: Session, volunteer_id: int) -> list[dict[str, Any]]:
    """A volunteer's entries, oldest first."""
    rows = session.execute(
        text(
            "SELECT id, delta, reason, ref_kind, ref_id, created_at FROM points_ledger "
            "WHERE volunteer_id = :v ORDER BY id"
        ),
        {"v": volunteer_id},
    ).mappings()
    return [dict(r) for r in rows]


def redeem(
    session: Session, *, volunteer_id: int, reward_id: int, key: str
) -> tuple[dict[str, Any], bool]:
    """Spend points on a reward (积分兑换). The volunteer's row lock serialises their
    redemptions; the key makes a retry return the first redemption instead of a second."""
    locked = session.execute(
        text("SELECT id FROM volunteers WHERE id = :v FOR UPDATE"), {"v": volunteer_id}
    ).scalar_one_or_none()
    if locked is None:
        raise NotFoundError(f"volunteer {volunteer_id} does not exist")
    done = session.execute(
        text("SELECT id, delta FROM points_ledger WHERE idempotency_key = :k"), {"k": key}
    ).one_or_none()
    if done is not None:
        return {"entry_id": int(done[0]), "points": int(done[1]),
                "balance": balance(session, volunteer_id)}, False  # fmt: skip
    reward = session.execute(
        text("SELECT name, cost, stock FROM rewards WHERE id = :r FOR UPDATE"), {"r": reward_id}
    ).one_or_none()
    if reward is None:
        raise NotFoundError(f"reward {reward_id} does not exist")
    name, cost, stock = reward
    check_redemption(balance(session, volunteer_id), int(cost), stock)
    if stock is not None:
        session.execute(
            text("UPDATE rewards SET stock = stock - 1 WHERE id = :r"), {"r": reward_id}
        )
    entry = session.execute(
        text(
            """
            INSERT INTO points_ledger (volunteer_id, delta, reason, ref_kind, ref_id,
                                       idempotency_key)
            VALUES (:v, :d, :reason, 'reward', :r, :key) RETURNING id
            """
        ),
        {"v": volunteer_id, "d": -int(cost), "reason": f"兑换：{name}", "r": reward_id, "key": key},
    ).scalar_one()
    return {"entry_id": int(entry), "points": -int(cost),
            "balance": balance(session, volunteer_id)}, True  # fmt: skip


def add_reward(session: Session, *, name: str, kind: str, cost: int, stock: int | None) -> int:
    """Add a reward to the catalogue."""
    return int(
        session.execute(
            text(
                "INSERT INTO rewards (name, kind, cost, stock) VALUES (:n, :k, :c, :s) RETURNING id"
            ),
            {"n": name, "k": kind, "c": cost, "s": stock},
        ).scalar_one()
    )


def leaderboard(session: Session, *, by: str, limit: int = 20) -> list[dict[str, Any]]:
    """Volunteers ranked by points within their home micro grid's community or grid."""
    level = {"community": "community", "grid": "grid"}.get(by)
    if level is None:
        raise GisError(f"leaderboard by community or grid, not {by!r}")
    column = "wangge_locate(v.geom, :level)"
    rows = session.execute(
        text(
            f"""
            SELECT g.code AS grid_code, g.name AS grid_name, v.id AS volunteer_id,
                   v.name AS volunteer_name, v.kind, COALESCE(sum(l.delta), 0) AS points,
                   rank() OVER (PARTITION BY g.code ORDER BY COALESCE(sum(l.delta), 0) DESC)
                     AS rank
            FROM volunteers v
            LEFT JOIN points_ledger l ON l.volunteer_id = v.id
            LEFT JOIN grids g ON g.id = {column}
            GROUP BY g.code, g.name, v.id, v.name, v.kind
            ORDER BY g.code, rank, v.id
            """
        ),
        {"level": level},
    ).mappings()
    return [dict(r) for r in rows if r["rank"] <= limit]


def wish_stats(
    session: Session, *, by: str, grid_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Per community or micro grid: open needs, claimed, done, confirmed; median hours to
    claim and to fulfil; volunteer hours given (the leadership view of the service lists).
    ``grid_ids`` limits it to wishes in those micro grids (a scoped role's)."""
    column = {
        "community": "w.community_id",
        "grid": "(SELECT m.parent_id FROM grids m WHERE m.id = w.micro_grid_id)",  # 三级网格
        "micro": "w.micro_grid_id",
        "street": "(SELECT c.parent_id FROM grids c WHERE c.id = w.community_id)",
    }.get(by)
    if column is None:
        raise GisError(f"wish statistics by street, community, grid or micro, not {by!r}")
    rows = session.execute(
        text(
            f"""
            SELECT g.code, g.name,
                   count(*) FILTER (WHERE w.status = 'open') AS open,
                   count(*) FILTER (WHERE w.status = 'claimed') AS claimed,
                   count(*) FILTER (WHERE w.status = 'done') AS done,
                   count(*) FILTER (WHERE w.status = 'confirmed') AS confirmed,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY
                     extract(epoch FROM w.claimed_at - w.created_at) / 3600)
                     AS median_hours_to_claim,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY
                     extract(epoch FROM w.done_at - w.created_at) / 3600)
                     AS median_hours_to_fulfil,
                   COALESCE(sum(w.hours) FILTER (WHERE w.status IN ('done', 'confirmed')), 0)
                     AS volunteer_hours
            FROM wishes w LEFT JOIN grids g ON g.id = {column}
            WHERE CAST(:g AS int[]) IS NULL OR w.micro_grid_id = ANY(:g)
            GROUP BY g.code, g.name ORDER BY g.code
            """
        ),
        {"g": grid_ids},
    ).mappings()
    out = []
    for r in rows:
        rec = dict(r)
        for k in ("median_hours_to_claim", "median_hours_to_fulfil", "volunteer_hours"):
            rec[k] = None if rec[k] is None else round(float(rec[k]), 2)
        out.append(rec)
    return out


def helpers_frame(session: Session) -> gpd.GeoDataFrame:
    """Volunteers with a home location (WGS84), for matching."""
    result = session.execute(
        text(
            "SELECT id AS volunteer_id, name, kind, skills, home_grid_id, ST_AsBinary(geom) AS wkb "
            "FROM volunteers WHERE geom IS NOT NULL ORDER BY id"
        )
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326")


def wish_place(session: Session, wish_id: int) -> tuple[float, float, int | None, str]:
    """A wish's point (WGS84), micro grid id and category; raises if it has no place."""
    row = session.execute(
        text("SELECT ST_X(geom), ST_Y(geom), micro_grid_id, category FROM wishes WHERE id = :i"),
        {"i": wish_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"wish {wish_id} does not exist")
    if row[0] is None:
        raise GisError(f"wish {wish_id} has no place to match from")
    return float(row[0]), float(row[1]), row[2], str(row[3])


# ---------------------------------------------------------------------------------- 资源清单


def list_volunteers(
    session: Session,
    *,
    kind: str | None = None,
    skill: str | None = None,
    grid_ids: list[int] | None = None,
    personal: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The resource list: volunteers, party members, resident units and companies with their
    skills, hours and home grid; phone numbers only with ``personal``."""
    phone = "v.phone, " if personal else ""
    rows = session.execute(
        text(
            f"""
            SELECT v.id, v.name, v.kind, {phone}v.skills, v.hours_per_week,
                   m.code AS home_micro_code, m.name AS home_micro_name,
                   c.code AS community_code, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat
            FROM volunteers v
            LEFT JOIN grids m ON m.id = v.home_grid_id
            LEFT JOIN grids c ON c.id = wangge_locate(v.geom, 'community')
            WHERE (CAST(:kind AS text) IS NULL OR v.kind = :kind)
              AND (CAST(:skill AS text) IS NULL
                   OR EXISTS (SELECT 1 FROM json_array_elements_text(v.skills) s
                              WHERE s = :skill))
              AND (CAST(:g AS int[]) IS NULL OR v.home_grid_id = ANY(:g))
            ORDER BY v.id LIMIT :limit OFFSET :offset
            """
        ),
        {"kind": kind, "skill": skill, "g": grid_ids, "limit": limit, "offset": offset},
    ).mappings()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------------- 项目清单

_PROJECT = """
    SELECT p.id, p.name, p.description, p.status, p.starts, p.ends, p.community_id,
           g.code AS community_code, g.name AS community_name
    FROM projects p LEFT JOIN grids g ON g.id = p.community_id
"""


def add_project(
    session: Session,
    *,
    name: str,
    community_code: str,
    description: str | None = None,
    starts: date | None = None,
    ends: date | None = None,
) -> dict[str, Any]:
    """A new community project (planned) in a community named by its code."""
    if starts and ends and ends < starts:
        raise GisError(f"a project cannot end ({ends}) before it starts ({starts})")
    community = session.execute(
        text("SELECT id FROM grids WHERE code = :c AND level = 'community'"),
        {"c": community_code},
    ).scalar_one_or_none()
    if community is None:
        raise NotFoundError(f"no community with code {community_code}")
    new_id = session.execute(
        text(
            "INSERT INTO projects (name, community_id, description, status, starts, ends) "
            "VALUES (:n, :c, :d, 'planned', :s, :e) RETURNING id"
        ),
        {"n": name, "c": community, "d": description, "s": starts, "e": ends},
    ).scalar_one()
    return get_project(session, int(new_id))


def get_project(session: Session, project_id: int) -> dict[str, Any]:
    """One project with its community."""
    row = session.execute(text(_PROJECT + " WHERE p.id = :i"), {"i": project_id}).mappings()
    found = row.first()
    if found is None:
        raise NotFoundError(f"project {project_id} does not exist")
    return dict(found)


def list_projects(
    session: Session, *, status: str | None = None, community_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Projects, by community then start date."""
    rows = session.execute(
        text(
            _PROJECT
            + """
            WHERE (CAST(:s AS text) IS NULL OR p.status = :s)
              AND (CAST(:c AS int[]) IS NULL OR p.community_id = ANY(:c))
            ORDER BY g.code, p.starts NULLS LAST, p.id
            """
        ),
        {"s": status, "c": community_ids},
    ).mappings()
    return [dict(r) for r in rows]


def project_step(session: Session, project_id: int, target: str) -> dict[str, Any]:
    """Move a project on (planned → running → done), checked under a row lock."""
    from gis.volunteering import check_project_step

    current = session.execute(
        text("SELECT status FROM projects WHERE id = :i FOR UPDATE"), {"i": project_id}
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundError(f"project {project_id} does not exist")
    check_project_step(current, target)
    session.execute(
        text("UPDATE projects SET status = :s WHERE id = :i"), {"s": target, "i": project_id}
    )
    return get_project(session, project_id)


# ---------------------------------------------------------------------------------- rules

RULES_KEY = "points_rules"


def points_rules(session: Session) -> PointsRules:
    """The office's points rules (``wangge_meta``), or the defaults if none were set."""
    from gis.volunteering import rules_from_dict

    stored = session.execute(
        text("SELECT value FROM wangge_meta WHERE key = :k"), {"k": RULES_KEY}
    ).scalar_one_or_none()
    return PointsRules() if stored is None else rules_from_dict(dict(stored))


def set_points_rules(session: Session, rules: PointsRules) -> None:
    """Store the office's rules; they apply to services confirmed from now on (points
    already in the ledger never change)."""
    import json

    from gis.volunteering import rules_to_dict

    session.execute(
        text(
            "INSERT INTO wangge_meta (key, value) VALUES (:k, CAST(:v AS json)) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        ),
        {"k": RULES_KEY, "v": json.dumps(rules_to_dict(rules))},
    )


# ---------------------------------------------------------------------------------- map


def open_wishes_frame(session: Session, grid_ids: list[int] | None = None) -> gpd.GeoDataFrame:
    """Open and claimed needs and wishes with a place (WGS84), with hours waiting so far."""
    result = session.execute(
        text(
            """
            SELECT w.id, w.kind, w.category, w.status, w.wanted_by, g.code AS micro_code,
                   round(extract(epoch FROM now() - w.created_at)::numeric / 3600, 1)
                     AS hours_waiting,
                   ST_AsBinary(w.geom) AS wkb
            FROM wishes w LEFT JOIN grids g ON g.id = w.micro_grid_id
            WHERE w.status IN ('open', 'claimed') AND w.geom IS NOT NULL
              AND (CAST(:g AS int[]) IS NULL OR w.micro_grid_id = ANY(:g))
            ORDER BY w.id
            """
        ),
        {"g": grid_ids},
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else []
    if len(frame):
        frame["hours_waiting"] = frame["hours_waiting"].astype(float)
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326")


def micro_grids_frame(session: Session, grid_ids: list[int] | None = None) -> gpd.GeoDataFrame:
    """Micro grids (WGS84) with code and name, for the leadership map."""
    result = session.execute(
        text(
            "SELECT id, code, name, ST_AsBinary(geom) AS wkb FROM grids WHERE level = 'micro' "
            "AND (CAST(:g AS int[]) IS NULL OR id = ANY(:g)) ORDER BY code"
        ),
        {"g": grid_ids},
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326")


def resident_wishes(session: Session, resident_key: str) -> list[dict[str, Any]]:
    """The wishes a resident posted themselves, newest first."""
    rows = session.execute(
        text(_WISH + " WHERE w.resident_key = :k ORDER BY w.created_at DESC, w.id DESC"),
        {"k": resident_key},
    ).mappings()
    return [dict(r) for r in rows]


def wish_owner(session: Session, wish_id: int) -> str | None:
    """The resident key of a wish (None when a worker posted it)."""
    return session.execute(
        text("SELECT resident_key FROM wishes WHERE id = :i"), {"i": wish_id}
    ).scalar_one_or_none()
