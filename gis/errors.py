"""Error hierarchy of the spatial core; the API maps each class to one HTTP status."""

from __future__ import annotations


class GisError(ValueError):
    """Base class for every error the spatial core raises on bad input."""


class InvalidGeometryError(GisError):
    """A geometry is empty, self-intersecting, of the wrong type or has non-finite coordinates."""


class CRSError(GisError):
    """A CRS is missing, unknown, or coordinates do not fit the declared CRS."""


class CoordinateRangeError(CRSError):
    """Coordinates fall outside the valid range (or outside China) for their CRS."""


class EmptyInputError(GisError):
    """An input that must hold at least one row or geometry is empty."""


class HierarchyError(GisError):
    """A grid edit or layer would break the grid hierarchy rules."""


class FileFormatError(GisError):
    """An uploaded or imported file is malformed; the message names line or element."""


class AddressNotFoundError(GisError):
    """An address could not be matched to any building or road in the gazetteer."""


class NotFoundError(LookupError):
    """A requested record does not exist."""


class StaleVersionError(RuntimeError):
    """An edit was based on a version that is no longer current (optimistic locking)."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version
