"""Settings read from ``WANGGE_*`` environment variables (pydantic-settings), loaded lazily."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.taxonomy import Taxonomy, default_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Runtime configuration; every field has a ``WANGGE_`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="postgresql+psycopg://wangge:wangge@127.0.0.1:5432/wangge",
        description="SQLAlchemy URL of the PostGIS database",
    )
    data_dir: Path = Field(default=REPO_ROOT / "data" / "demo", description="demo district files")
    var_dir: Path = Field(default=REPO_ROOT / "var", description="pages, uploads, results")
    host: str = "127.0.0.1"
    public_url: str | None = Field(
        default=None, description="the address QR codes point at (default http://host:port)"
    )
    port: int = 8000
    max_upload_mb: int = 100
    locate_max_points: int = 10_000
    taxonomy_file: Path | None = Field(
        default=None, description="incident taxonomy TOML (default: gis/taxonomy.toml)"
    )
    max_photo_mb: int = 10
    auth: bool = Field(default=True, description="sign-in required; undeclared routes closed")
    secret_key: str | None = Field(default=None, description="token signing key")
    token_minutes: int = 480
    sla_tick_seconds: int = Field(default=60, description="`wangge serve` ticks SLAs (0: off)")
    rate_per_minute: int = Field(default=1200, description="requests per client (0: no limit)")
    duplicate_radius_m: float = 50.0
    duplicate_hours: float = 24.0
    tianditu_key: str | None = Field(default=None, description="Tianditu (天地图) tile key")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests clear the cache to change them."""
    return Settings()


def get_taxonomy() -> Taxonomy:
    """The incident taxonomy in force (``WANGGE_TAXONOMY_FILE`` or the default)."""
    path = get_settings().taxonomy_file
    return default_taxonomy(str(path) if path else None)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg2://", "postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
