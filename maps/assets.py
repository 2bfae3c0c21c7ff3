"""Front-end assets served by the app: copied from the npm packages at set-up, never a CDN.

Folium points Leaflet, jQuery, Bootstrap, Font Awesome, Leaflet.awesome-markers and its
plugins (leaflet.heat for ``HeatMap``) at CDNs. Government intranets are offline, so
:func:`local_map` and :func:`localise` rewrite every one of those links to the copies under
``/static/vendor`` that :func:`install_assets` puts into :data:`VENDOR_DIR`, and
:func:`render_offline` refuses to return a page that still links outside.

Set-up runs ``npm ci`` (versions pinned in ``package.json``) and then
``python -m maps.assets``.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import folium
from branca.element import Element
from folium.elements import JSCSSMixin

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"  # git-ignored, filled by install_assets at set-up
ASSET_BASE = "/static/vendor"
BACKGROUND = "#f3f1ec"  # the plain map background when there is no tile base map (offline)

# vendor path -> path inside node_modules. Files a copied stylesheet refers to with url()
# (fonts, images) are copied too, at the same relative place; see install_assets.
FILES: dict[str, str] = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    # not in leaflet.css: L.Icon.Default loads these next to images/marker-icon.png
    "leaflet/images/marker-icon-2x.png": "leaflet/dist/images/marker-icon-2x.png",
    "leaflet/images/marker-shadow.png": "leaflet/dist/images/marker-shadow.png",
    "leaflet.heat/leaflet-heat.js": "leaflet.heat/dist/leaflet-heat.js",
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    "bootstrap/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "glyphicons/css/bootstrap3-glyphicons.min.css": (
        "@neos21/bootstrap3-glyphicons/dist/css/bootstrap3-glyphicons.min.css"
    ),
    "fontawesome/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "awesome-markers/leaflet.awesome-markers.js": (
        "leaflet.awesome-markers/dist/leaflet.awesome-markers.js"
    ),
    "awesome-markers/leaflet.awesome-markers.css": (
        "leaflet.awesome-markers/dist/leaflet.awesome-markers.css"
    ),
    # drawing and editing (planner page): Leaflet-Geoman, and leaflet.draw for plugins.Draw
    "geoman/leaflet-geoman.min.js": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js",
    "geoman/leaflet-geoman.css": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css",
    "leaflet-draw/leaflet.draw.js": "leaflet-draw/dist/leaflet.draw.js",
    "leaflet-draw/leaflet.draw.css": "leaflet-draw/dist/leaflet.draw.css",
    # time slider (plugins.HeatMapWithTime) and marker clusters
    "timedimension/iso8601.js": "iso8601-js-period/iso8601.js",
    "timedimension/leaflet.timedimension.min.js": (
        "leaflet-timedimension/dist/leaflet.timedimension.min.js"
    ),
    "timedimension/leaflet.timedimension.control.min.css": (
        "leaflet-timedimension/dist/leaflet.timedimension.control.min.css"
    ),
    "heatmapjs/heatmap.min.js": "heatmap.js/build/heatmap.min.js",
    "heatmapjs/leaflet-heatmap.js": "heatmap.js/plugins/leaflet-heatmap/leaflet-heatmap.js",
    "markercluster/leaflet.markercluster.js": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "markercluster/MarkerCluster.css": "leaflet.markercluster/dist/MarkerCluster.css",
    "markercluster/MarkerCluster.Default.css": (
        "leaflet.markercluster/dist/MarkerCluster.Default.css"
    ),
    # the API docs page (api/routes/docs.py)
    "swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-ui/favicon-32x32.png": "swagger-ui-dist/favicon-32x32.png",
}

# Stylesheets that load files from a CDN: such url() prefixes are rewritten, at install, to the
# local copy (a vendor folder). leaflet.timedimension.control.css takes the glyphicons font
# of Bootstrap 3 from netdna; the same font is installed with bootstrap3-glyphicons.
CSS_REWRITES: dict[str, str] = {
    "//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/": "glyphicons/fonts",
}

# Written by install_assets, not copied: folium's own small stylesheet for Icon(angle=...)
ROTATE_CSS = "awesome-markers/leaflet.awesome.rotate.css"

# folium's asset names (Map and plugins) -> path under the asset base
LOCAL: dict[str, str] = {
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/bootstrap.bundle.min.js",
    "awesome_markers": "awesome-markers/leaflet.awesome-markers.js",
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/bootstrap.min.css",
    "glyphicons_css": "glyphicons/css/bootstrap3-glyphicons.min.css",
    "awesome_markers_font_css": "fontawesome/css/all.min.css",
    "awesome_markers_css": "awesome-markers/leaflet.awesome-markers.css",
    "awesome_rotate_css": ROTATE_CSS,
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",  # plugins.HeatMap
    "leaflet_draw_js": "leaflet-draw/leaflet.draw.js",  # plugins.Draw
    "leaflet_draw_css": "leaflet-draw/leaflet.draw.css",
    "iso8601": "timedimension/iso8601.js",  # plugins.HeatMapWithTime
    "leaflet.timedimension.min.js": "timedimension/leaflet.timedimension.min.js",
    "leaflet.timedimension.control.min.css": "timedimension/leaflet.timedimension.control.min.css",
    "heatmap.min.js": "heatmapjs/heatmap.min.js",
    "leaflet-heatmap.js": "heatmapjs/leaflet-heatmap.js",
    "markerclusterjs": "markercluster/leaflet.markercluster.js",  # plugins.MarkerCluster
    "markerclustercss": "markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "markercluster/MarkerCluster.Default.css",
}

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_OUTSIDE = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])"""
    r"""((?:https?:)?//[^"'\s)>]+)""",
    re.IGNORECASE,
)


def _css_refs(css: str) -> set[str]:
    """Relative file references of a stylesheet (no data:, fragment-only or absolute URLs)."""
    refs = set()
    for _q, url in _CSS_URL.findall(css):
        url = url.strip()
        # "%23..." is an escaped "#fragment" inside an inline SVG (Leaflet-Geoman icons)
        if url.startswith(("data:", "#", "%23", "/", "http:", "https:")):
            continue
        path = url.split("#", 1)[0].split("?", 1)[0]
        if path:
            refs.add(path)
    return refs


def _inside(base: Path, *parts: str) -> Path:
    """``base`` joined with a relative path that must not leave ``base``."""
    path = (base.joinpath(*parts)).resolve()
    if not path.is_relative_to(base.resolve()):
        msg = f"{'/'.join(parts)} points outside {base}"
        raise ValueError(msg)
    return path


def _copy(src: Path, dst: Path) -> Path:
    if not src.is_file():
        msg = f"{src} is missing: run `npm ci` in the repository root first"
        raise FileNotFoundError(msg)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def rotate_css() -> str:
    """Stand-in for folium's ``leaflet.awesome.rotate.css``: ``fa-rotate-N`` for 0..359 deg."""
    rules = (f".fa-rotate-{n}{{transform:rotate({n}deg);}}" for n in range(360))
    return "/* folium Icon(angle=...) rotation classes, written by maps.assets */\n" + (
        "\n".join(rules) + "\n"
    )


def _rewrite_css(css_file: Path, rel_dir: str) -> None:
    """Point a copied stylesheet's CDN url() prefixes (:data:`CSS_REWRITES`) at local copies."""
    text = css_file.read_text(encoding="utf-8")
    new = text
    for prefix, local in CSS_REWRITES.items():
        up = "/".join(".." for _ in PurePosixPath(rel_dir).parts)
        new = new.replace(prefix, f"{up}/{local}/")
    if new != text:
        css_file.write_text(new, encoding="utf-8")


def install_assets(node_modules: Path, vendor_dir: Path = VENDOR_DIR) -> list[Path]:
    """Copy exactly the files the pages use from ``node_modules`` into ``vendor_dir``.

    Parameters
    ----------
    node_modules
        The ``node_modules`` folder that ``npm ci`` filled from ``package.json``.
    vendor_dir
        Where the app serves them from (``/static/vendor``).

    Returns
    -------
    list of Path
        Every file written, in order: the :data:`FILES`, the fonts and images their
        stylesheets refer to, and the generated rotation stylesheet.
    """
    node_modules = Path(node_modules)
    vendor_dir = Path(vendor_dir)
    written: list[Path] = []
    for target, source in FILES.items():
        src = node_modules / source
        dst = _copy(src, _inside(vendor_dir, target))
        written.append(dst)
        if dst.suffix == ".css":
            rel_dir = str(PurePosixPath(target).parent)
            _rewrite_css(dst, rel_dir)
            for ref in sorted(_css_refs(src.read_text(encoding="utf-8"))):
                ref_src = _inside(node_modules, str(PurePosixPath(source).parent), ref)
                written.append(_copy(ref_src, _inside(vendor_dir, rel_dir, ref)))
    rotate = _inside(vendor_dir, ROTATE_CSS)
    rotate.parent.mkdir(parents=True, exist_ok=True)
    rotate.write_text(rotate_css(), encoding="utf-8")
    written.append(rotate)
    written = list(dict.fromkeys(written))
    log.info("installed %d asset files into %s", len(written), vendor_dir)
    return written


def _elements(root: Element) -> Iterator[Element]:
    yield root
    for child in list(root._children.values()):
        yield from _elements(child)


def localise(element: JSCSSMixin, asset_base: str = ASSET_BASE) -> None:
    """Point the JS/CSS links of one folium element (a map or a plugin) at the local copies.

    Sets the instance's ``default_js``/``default_css`` (the class lists stay untouched).

    Raises
    ------
    KeyError
        For an asset with no local copy in :data:`LOCAL`: add it to ``package.json``,
        :data:`FILES` and :data:`LOCAL` rather than let a page reach a CDN.
    """
    base = asset_base.rstrip("/")
    for attr in ("default_js", "default_css"):
        links = list(getattr(element, attr, None) or [])
        local = []
        for name, url in links:
            if url.startswith(f"{base}/"):
                local.append((name, url))
            elif name in LOCAL:
                local.append((name, f"{base}/{LOCAL[name]}"))
            else:
                msg = f"no local copy known for {type(element).__name__} asset {name!r} ({url})"
                raise KeyError(msg)
        if links:
            setattr(element, attr, local)


def localise_all(root: Element, asset_base: str = ASSET_BASE) -> None:
    """:func:`localise` every element of a folium tree that links JS or CSS (plugins too)."""
    for element in _elements(root):
        if isinstance(element, JSCSSMixin):
            localise(element, asset_base)


def local_map(
    location: tuple[float, float] | None = None,
    *,
    asset_base: str = ASSET_BASE,
    **kwargs: object,
) -> folium.Map:
    """A folium Map whose assets are all served from ``asset_base``.

    There is no tile base map unless ``tiles`` is given explicitly (offline): the map shows a
    plain background instead. Other keyword arguments go to :class:`folium.Map`.
    """
    kwargs.setdefault("tiles", None)
    m = folium.Map(location=location, **kwargs)  # type: ignore[arg-type]
    localise(m, asset_base)
    m.get_root().header.add_child(
        # "body ..." outranks leaflet.css, whose link comes later in the head
        Element(f"<style>body .leaflet-container{{background:{BACKGROUND};}}</style>"),
        name="wangge_background",
    )
    # no /favicon.ico request (a 404 in the console of every page)
    m.get_root().header.add_child(Element('<link rel="icon" href="data:,">'), name="wangge_icon")
    return m


def outside_urls(page: str) -> list[str]:
    """URLs a browser would fetch from another host: ``src``/``href``, CSS ``url()``/``@import``.

    Text that merely mentions a URL (data, attribution) is not a fetch and is not listed.
    """
    return _OUTSIDE.findall(page)


def render_offline(m: folium.Map, *, asset_base: str = ASSET_BASE) -> str:
    """Localise every asset of ``m`` and render the full HTML page.

    A tile base map asked for explicitly (``tiles=...``) is the caller's choice: its URL
    template lives in the map script, not in a link, and is not refused here.

    Raises
    ------
    ValueError
        If a script, stylesheet, font or image link of the page points to another host.
    """
    localise_all(m, asset_base)
    page = m.get_root().render()
    outside = outside_urls(page)
    if outside:
        msg = f"page links outside the app: {sorted(set(outside))}"
        raise ValueError(msg)
    return page


def local_asset_refs(page: str, asset_base: str = ASSET_BASE) -> list[str]:
    """Paths (under the asset base) of the scripts and stylesheets a page links."""
    base = re.escape(asset_base.rstrip("/"))
    return re.findall(rf"""(?:src|href)\s*=\s*["']{base}/([^"']+)["']""", page)


def main(argv: Iterable[str] | None = None) -> None:
    """``python -m maps.assets [NODE_MODULES [VENDOR_DIR]]``: install the assets."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    node_modules = Path(args[0]) if args else Path("node_modules")
    vendor_dir = Path(args[1]) if len(args) > 1 else VENDOR_DIR
    install_assets(node_modules, vendor_dir)


if __name__ == "__main__":
    main()
