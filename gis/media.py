"""Photos of incidents: recognised by their bytes, stored on disk under their SHA-256.

The database keeps only the hash, type and size; the same photo uploaded twice is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gis.errors import FileFormatError

log = logging.getLogger(__name__)

# Magic numbers of the image types phones send: JPEG, PNG, WebP, HEIC/HEIF.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
}


@dataclass(frozen=True)
class StoredPhoto:
    """A photo on disk: its SHA-256, sniffed content type, size and path."""

    sha256: str
    content_type: str
    size_bytes: int
    path: Path


def sniff_image(data: bytes) -> str:
    """The image type from the bytes themselves (the declared type is not trusted)."""
    for magic, offset, kind in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    raise FileFormatError(
        "not a photo: expected JPEG, PNG, WebP or HEIC, the first bytes are "
        f"{data[:12].hex(' ') or 'empty'}"
    )


def photo_path(root: Path, sha256: str, content_type: str) -> Path:
    """Where a photo lives: ``root/ab/cd/<sha256><ext>`` (two fan-out levels)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise FileFormatError(f"not a SHA-256 hex digest: {sha256!r}")
    return root / sha256[:2] / sha256[2:4] / (sha256 + EXTENSIONS[content_type])


def find_photo(root: Path, sha256: str) -> tuple[Path, str] | None:
    """The stored file and content type of a hash, or None."""
    for kind in EXTENSIONS:
        path = photo_path(root, sha256, kind)
        if path.is_file():
            return path, kind
    return None


def store_photo(root: Path, data: bytes, *, max_bytes: int) -> StoredPhoto:
    """Check a photo's size and type and write it atomically (temp file + rename) unless a
    file with the same hash is already there."""
    if not data:
        raise FileFormatError("the photo is empty")
    if len(data) > max_bytes:
        raise FileFormatError(
            f"the photo is {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.0f} MB allowed"
        )
    kind = sniff_image(data)
    sha = hashlib.sha256(data).hexdigest()
    path = photo_path(root, sha, kind)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.info("stored photo %s (%s, %d bytes)", sha, kind, len(data))
    return StoredPhoto(sha, kind, len(data), path)
