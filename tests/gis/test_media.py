"""Photos: recognised by their bytes, stored once under their hash, never outside the root."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gis.errors import FileFormatError
from gis.media import find_photo, photo_path, sniff_image, store_photo

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40
HEIC = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40


@pytest.mark.parametrize(
    ("data", "kind"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp"), (HEIC, "image/heic")],
)
def test_types_are_sniffed_from_bytes(data: bytes, kind: str) -> None:
    assert sniff_image(data) == kind


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"<svg onload=alert(1)>", b"%PDF-1.7"])
def test_non_photos_are_refused(data: bytes) -> None:
    with pytest.raises(FileFormatError, match=r"not a photo|empty"):
        store_photo(Path("/nonexistent"), data, max_bytes=1000) if not data else sniff_image(data)


def test_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    first = store_photo(tmp_path, JPEG, max_bytes=1000)
    second = store_photo(tmp_path, JPEG, max_bytes=1000)
    assert first == second and first.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [first.sha256 + ".jpg"]
    assert find_photo(tmp_path, first.sha256) == (first.path, "image/jpeg")
    assert find_photo(tmp_path, "0" * 64) is None


def test_size_limit_and_hash_shape(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="at most"):
        store_photo(tmp_path, JPEG + b"\x00" * 2000, max_bytes=1000)
    assert not any(tmp_path.iterdir())
    with pytest.raises(FileFormatError, match="SHA-256"):
        photo_path(tmp_path, "../../etc/passwd", "image/png")
