"""Front-end assets served by the app: copied from the npm packages at set-up, never a CDN.

Folium points Leaflet, jQuery, Bootstrap, Font Awesome, Leaflet.awesome-markers and its
plugins at CDNs. Government intranets are offline, so :func:`localise` rewrites every one of
those links to the copies under ``/static/vendor`` that :func:`install_assets` puts there.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import folium
from branca.element import Element

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
ASSET_BASE = "/static/vendor"

# vendor path -> path inside node_modules (a trailing "/" copies a whole folder)
FILES: dict[str, str] = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/images/": "leaflet/dist/images/",
    "leaflet.heat/leaflet-heat.js": "leaflet.heat/dist/leaflet-heat.js",
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    "bootstrap/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "fontawesome/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "fontawesome/webfonts/": "@fortawesome/fontawesome-free/webfonts/",
    "awesome-markers/leaflet.awesome-markers.js": "leaflet.awesome-markers/dist/"
    "leaflet.awesome-markers.js",
    "awesome-markers/leaflet.awesome-markers.css": "leaflet.awesome-markers/dist/"
    "leaflet.awesome-markers.css",
    "awesome-markers/images/": "leaflet.awesome-markers/dist/images/",
    "swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-ui/favicon-32x32.png": "swagger-ui-dist/favicon-32x32.png",
}

# folium's asset names -> local path under the asset base (None: not needed, dropped)
LOCAL: dict[str, str | None] = {
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/bootstrap.bundle.min.js",
    "awesome_markers": "awesome-markers/leaflet.awesome-markers.js",
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/bootstrap.min.css",
    "glyphicons_css": None,  # Bootstrap 3 icon font; nothing in our pages uses it
    "awesome_markers_font_css": "fontawesome/css/all.min.css",
    "awesome_markers_css": "awesome-markers/leaflet.awesome-markers.css",
    "awesome_rotate_css": "../leaflet.awesome.rotate.css",
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
}


def install_assets(node_modules: Path, vendor_dir: Path = VENDOR_DIR) -> list[Path]:
    """Copy the files the pages use from ``node_modules`` into ``vendor_dir``."""
    copied: list[Path] = []
    for target, source in FILES.items():
        src = node_modules / source
        dst = vendor_dir / target
        if not src.exists():
            msg = f"{src} is missing: run `npm ci` first"
            raise FileNotFoundError(msg)
        if source.endswith("/"):
            shutil.copytree(src, dst, dirs_exist_ok=True)
            copied.extend(p for p in dst.rglob("*") if p.is_file())
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied.append(dst)
    log.info("installed %d asset files into %s", len(copied), vendor_dir)
    return copied


def _local(links: list[tuple[str, str]], asset_base: str) -> list[tuple[str, str]]:
    out = []
    for name, url in links:
        if name not in LOCAL:
            msg = f"no local copy known for asset {name!r} ({url})"
            raise KeyError(msg)
        path = LOCAL[name]
        if path is not None:
            out.append((name, f"{asset_base}/{path}"))
    return out


def localise(element: folium.MacroElement, asset_base: str = ASSET_BASE) -> None:
    """Point the JS/CSS links of a folium element (a map or a plugin) at the local copies."""
    for attr in ("default_js", "default_css"):
        links = getattr(element, attr, None)
        if links:
            setattr(element, attr, _local(list(links), asset_base))


def local_map(
    location: tuple[float, float] | None = None, *, asset_base: str = ASSET_BASE, **kwargs: object
) -> folium.Map:
    """A folium Map with no base tiles by default (offline) whose assets are all local."""
    kwargs.setdefault("tiles", None)
    m = folium.Map(location=location, **kwargs)  # type: ignore[arg-type]
    localise(m, asset_base)
    m.get_root().header.add_child(
        Element("<style>.leaflet-container{background:#f3f1ec;}</style>"), name="wangge_bg"
    )
    return m


def main() -> None:
    """``python -m maps.assets [NODE_MODULES]``: install the assets (the set-up calls this)."""
    logging.basicConfig(level=logging.INFO)
    node_modules = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("node_modules")
    install_assets(node_modules)


if __name__ == "__main__":
    main()
