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


# 项目清单: a community project is planned, then running, then done (or straight to done).
PROJECT_STATUSES = ("planned", "running", "done")
PROJECT_STEPS: dict[str, frozenset[str]] = {
    "planned": frozenset({"running", "done"}),
    "running": frozenset({"done"}),
    "done": frozenset(),
}


def check_project_step(current: str, target: str) -> None:
    """Raise GisError unless a project may go from ``current`` to ``target``."""
    if target not in PROJECT_STEPS.get(current, frozenset()):
        allowed = ", ".join(sorted(PROJECT_STEPS.get(current, ()))) or "none"
        raise GisError(f"a project that is {current} cannot become {target}; allowed: {allowed}")


def rules_from_dict(data: dict[str, object]) -> PointsRules:
    """An office's points rules from JSON (``rating_bonus`` keys may be strings), checked:
    whole, non-negative points, ratings 1..5, a cap on hours in (0, 24]."""
    known = {"per_hour", "wish_bonus", "rating_bonus", "max_hours"}
    unknown = set(data) - known
    if unknown:
        raise GisError(f"unknown points rules {sorted(unknown)}; rules: {sorted(known)}")
    base = PointsRules()

    def whole(name: str, value: object, high: int = 10_000) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise GisError(f"{name} must be a whole number 0..{high}, got {value!r}")
        return value

    per_hour = whole("per_hour", data.get("per_hour", base.per_hour))
    wish_bonus = whole("wish_bonus", data.get("wish_bonus", base.wish_bonus))
    raw_bonus = data.get("rating_bonus", base.rating_bonus)
    if not isinstance(raw_bonus, dict):
        raise GisError("rating_bonus maps a rating 1..5 to extra points")
    bonus: dict[int, int] = {}
    for key, value in raw_bonus.items():
        try:
            rating = int(key)
        except (TypeError, ValueError):
            raise GisError(f"rating_bonus key {key!r} is not a rating 1..5") from None
        if not 1 <= rating <= 5:
            raise GisError(f"rating_bonus key {key!r} is not a rating 1..5")
        bonus[rating] = whole(f"rating_bonus[{rating}]", value)
    max_hours = data.get("max_hours", base.max_hours)
    if isinstance(max_hours, bool) or not isinstance(max_hours, int | float):
        raise GisError(f"max_hours must be a number of hours, got {max_hours!r}")
    if not 0 < float(max_hours) <= 24:
        raise GisError(f"max_hours must be in (0, 24], got {max_hours}")
    return PointsRules(
        per_hour=per_hour, wish_bonus=wish_bonus, rating_bonus=bonus, max_hours=float(max_hours)
    )


def rules_to_dict(rules: PointsRules) -> dict[str, object]:
    """The rules as JSON (rating keys as strings)."""
    return {
        "per_hour": rules.per_hour,
        "wish_bonus": rules.wish_bonus,
        "rating_bonus": {str(k): v for k, v in sorted(rules.rating_bonus.items())},
        "max_hours": rules.max_hours,
    }
