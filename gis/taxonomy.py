"""Incident taxonomy (事件分类): category codes with default severity, handling level, deadlines.

The default (``gis/taxonomy.toml``) combines event classes in the style of GB/T 30428.2
(市容环境, 宣传广告, 施工管理, 突发事件, 街面秩序, 市政设施) with the community-governance matters
of grid work (矛盾纠纷, 噪音扰民, 管道滴漏, 电梯故障, 物业纠纷, 高空抛物...). An office replaces it
with its own file (``WANGGE_TAXONOMY_FILE``); :func:`load_taxonomy` checks it and names every
problem it finds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from gis.errors import GisError
from gis.incidents import HANDLING_LEVELS, Deadlines

DEFAULT_FILE = Path(__file__).with_name("taxonomy.toml")


class UnknownCategoryError(GisError):
    """A report names a category that the taxonomy does not have."""


class TaxonomyError(GisError):
    """A taxonomy file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Category:
    """One incident category: a code, a Chinese name, its class and how it is handled."""

    code: str
    name: str
    class_code: str
    class_name: str
    severity: int
    level: str
    deadlines: Deadlines
    department: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    """The categories by code, findable by code or by name."""

    categories: tuple[Category, ...]
    classes: dict[str, str] = field(default_factory=dict)
    by_key: dict[str, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {c.code: c for c in self.categories} | {c.name: c for c in self.categories}
        object.__setattr__(self, "by_key", index)

    def get(self, key: str) -> Category:
        """The category with this code or name; raises UnknownCategoryError otherwise."""
        found = self.by_key.get(key.strip())
        if found is None:
            known = ", ".join(f"{c.code} {c.name}" for c in self.categories)
            raise UnknownCategoryError(f"unknown category {key!r}; known: {known}")
        return found

    def __iter__(self) -> Iterator[Category]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)


def _minutes(entry: dict[str, Any], key: str, default: Any, where: str) -> timedelta:
    value = entry.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise TaxonomyError(f"{where}: {key} must be a positive number of minutes, got {value!r}")
    return timedelta(minutes=float(value))


def parse_taxonomy(doc: dict[str, Any], *, source: str = "taxonomy") -> Taxonomy:
    """Build a taxonomy from a parsed TOML document, checking every entry."""
    defaults = doc.get("defaults", {})
    classes = {str(k): str(v) for k, v in doc.get("classes", {}).items()}
    entries = doc.get("category")
    if not isinstance(entries, list) or not entries:
        raise TaxonomyError(f"{source}: no [[category]] entries")
    cats: list[Category] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, 1):
        where = f"{source}: category #{i}"
        code, name = str(entry.get("code", "")), str(entry.get("name", "")).strip()
        if not code.isdigit() or len(code) != 4:
            raise TaxonomyError(f"{where}: code must be 4 digits, got {code!r}")
        where = f"{source}: category {code}"
        if not name:
            raise TaxonomyError(f"{where}: name is missing")
        for key in (code, name):
            if key in seen:
                raise TaxonomyError(f"{where}: {key!r} is used twice")
            seen.add(key)
        if code[:2] not in classes:
            raise TaxonomyError(f"{where}: class {code[:2]} is not in [classes]")
        severity = entry.get("severity")
        if severity not in (1, 2, 3, 4):
            raise TaxonomyError(f"{where}: severity must be 1..4, got {severity!r}")
        level = entry.get("level")
        if level not in HANDLING_LEVELS:
            raise TaxonomyError(f"{where}: level must be one of {HANDLING_LEVELS}, got {level!r}")
        if level == "department" and not entry.get("department"):
            raise TaxonomyError(f"{where}: level department needs a department name")
        same_day = entry.get("resolve_same_day", defaults.get("resolve_same_day", True))
        deadlines = Deadlines(
            respond=_minutes(entry, "respond_minutes", defaults.get("respond_minutes", 5), where),
            on_site=_minutes(entry, "on_site_minutes", defaults.get("on_site_minutes", 30), where),
            resolve_same_day=bool(same_day),
            resolve=_minutes(
                entry, "resolve_minutes", defaults.get("resolve_minutes", 1440), where
            ),
        )
        cats.append(
            Category(
                code=code,
                name=name,
                class_code=code[:2],
                class_name=classes[code[:2]],
                severity=int(severity),
                level=str(level),
                deadlines=deadlines,
                department=entry.get("department"),
                description=entry.get("description"),
            )
        )
    return Taxonomy(tuple(cats), classes)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Read and check a taxonomy TOML file (the default one when ``path`` is None)."""
    path = Path(path) if path else DEFAULT_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"{path}: not valid TOML: {exc}") from None
    return parse_taxonomy(doc, source=str(path))


@lru_cache(maxsize=4)
def default_taxonomy(path: str | None = None) -> Taxonomy:
    """The taxonomy in force, read once per process per path."""
    return load_taxonomy(Path(path) if path else None)
