"""Who may do what (access control): roles and their rights, pure and testable.

Roles: admin (系统管理员), planner (规划员: draws grids), patroller (网格员: their grids only),
leader (领导: reads everything, writes nothing), dispatcher (调度员: runs the incident loop),
community (社区账号: its own community only). An endpoint names the roles it admits; any
other role — and any endpoint that names none — is refused (default deny).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "planner", "patroller", "leader", "dispatcher", "community")
# A resident signs in with a one-time code sent to their phone, not as a user account.
RESIDENT = "resident"
# Roles that may read key households' personal data (独居老人, 残疾户...): each read audited.
PERSONAL_DATA_ROLES = frozenset({"admin", "patroller", "community"})
# Roles whose reads and writes are limited to grids (their own, or their community).
SCOPED_ROLES = frozenset({"patroller", "community"})
READ_ONLY_ROLES = frozenset({"leader"})


@dataclass(frozen=True)
class Principal:
    """An authenticated user: id, name, role and, for scoped roles, the grid ids they may
    touch (their grids and every grid below them)."""

    user_id: int
    username: str
    role: str
    grid_ids: frozenset[int] | None = None  # None: not limited by grid
    subject: str | None = None  # a resident's phone key

    def may(self, roles: frozenset[str] | tuple[str, ...], *, write: bool = False) -> bool:
        """Whether this role is admitted; a read-only role never writes."""
        if write and self.role in READ_ONLY_ROLES:
            return False
        return self.role in roles

    def in_scope(self, *grid_ids: int | None) -> bool:
        """Whether any of the given grids (an incident's chain, a track's grids) is theirs."""
        if self.grid_ids is None:
            return True
        return any(g is not None and g in self.grid_ids for g in grid_ids)

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES
