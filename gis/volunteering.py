"""Community service lists and volunteer points (志愿积分): 需求清单 / 微心愿 (needs and small
wishes), 资源清单 (volunteers, party members, resident units, companies), the points rules an
office configures, and the checks on a redemption. Pure: the ledger itself lives in the
database, append-only; a balance is always the sum of its entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gis.errors import GisError

WISH_KINDS = ("need", "wish")  # 需求清单, 微心愿
WISH_STATUSES = ("open", "claimed", "done", "confirmed", "cancelled")
VOLUNTEER_KINDS = ("volunteer", "party_member", "resident_unit", "company")
REWARD_KINDS = ("service", "goods")  # 服务型 / 物质型

# The steps of a wish: claimed by a party member or volunteer (诺单), done, confirmed by the
# resident (评单); cancelled only before it is done.
WISH_STEPS: dict[str, frozenset[str]] = {
    "open": frozenset({"claimed", "cancelled"}),
    "claimed": frozenset({"done", "open", "cancelled"}),
    "done": frozenset({"confirmed"}),
    "confirmed": frozenset(),
    "cancelled": frozenset(),
}


class WishStepError(GisError):
    """A step a wish cannot take from its current status."""


class PointsError(GisError):
    """A redemption the balance or the catalogue does not allow."""


def check_wish_step(current: str, target: str) -> None:
    """Raise WishStepError unless ``current → target`` is allowed."""
    if target not in WISH_STEPS.get(current, frozenset()):
        allowed = ", ".join(sorted(WISH_STEPS.get(current, ()))) or "none"
        raise WishStepError(f"a wish that is {current} cannot become {target}; allowed: {allowed}")


@dataclass(frozen=True)
class PointsRules:
    """An office's points rules: points per confirmed service hour, a bonus per completed
    wish, a bonus by the resident's rating, and a cap on the hours one service may count."""

    per_hour: int = 10
    wish_bonus: int = 5
    rating_bonus: dict[int, int] = field(default_factory=lambda: {5: 3, 4: 1})
    max_hours: float = 8.0

    def for_service(self, hours: float, rating: int | None, *, wish: bool) -> int:
        """Points for one confirmed service."""
        if not 0 < hours <= 24:
            raise GisError(f"service hours must be in (0, 24], got {hours}")
        if rating is not None and not 1 <= rating <= 5:
            raise GisError(f"rating must be 1..5, got {rating}")
        counted = min(hours, self.max_hours)
        points = round(counted * self.per_hour)
        if wish:
            points += self.wish_bonus
        return points + self.rating_bonus.get(rating or 0, 0)


def check_redemption(balance: int, cost: int, stock: int | None) -> None:
    """Raise PointsError when the balance is short or the reward is out of stock."""
    if cost <= 0:
        raise PointsError(f"a reward must cost points, got {cost}")
    if stock is not None and stock <= 0:
        raise PointsError("this reward is out of stock")
    if balance < cost:
        raise PointsError(f"the balance is {balance} points; this reward costs {cost}")
