"""GeoAlchemy2 models, one module per domain; importing this package registers every table.

Every geometry is stored in EPSG:4326 with a GiST index and CHECK constraints for validity
and SRID; the migrations in ``gis/db/migrations`` create exactly these tables (checked by
``tests/gis/db/test_schema.py``).
"""

from gis.db.models.base import Base, Meta
from gis.db.models.community import PointsEntry, Project, Reward, Volunteer, Wish
from gis.db.models.dashboards import (
    incident_rollup_grids,
    incident_rollup_heat,
    incident_rollup_kpis,
    incident_rollup_state,
)
from gis.db.models.district import Building, Grid, Road, Staff, Station, staff_grids
from gis.db.models.incidents import Incident, IncidentEvent, IncidentPhoto
from gis.db.models.network import *  # noqa: F403  (service-circle network tables)
from gis.db.models.party import PartyLink, PartyVisit
from gis.db.models.planning import *  # noqa: F403  (grid versions and audit)
from gis.db.models.tracks import (
    HouseholdVisit,
    KeyHousehold,
    KeyHouseholdPerson,
    PatrolTrack,
    TrackEffort,
    TrackPoint,
    TrackUpload,
    TrackWaypoint,
)
from gis.db.models.users import AuditEntry, ResidentCode, User

__all__ = [
    "AuditEntry",
    "Base",
    "Building",
    "Grid",
    "HouseholdVisit",
    "Incident",
    "IncidentEvent",
    "IncidentPhoto",
    "KeyHousehold",
    "KeyHouseholdPerson",
    "Meta",
    "PartyLink",
    "PartyVisit",
    "PatrolTrack",
    "PointsEntry",
    "Project",
    "ResidentCode",
    "Reward",
    "Road",
    "Staff",
    "Station",
    "TrackEffort",
    "TrackPoint",
    "TrackUpload",
    "TrackWaypoint",
    "User",
    "Volunteer",
    "Wish",
    "incident_rollup_grids",
    "incident_rollup_heat",
    "incident_rollup_kpis",
    "incident_rollup_state",
    "staff_grids",
]
