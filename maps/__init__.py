"""Folium dashboard pages, fully offline: every script, stylesheet and font is served locally.

- :mod:`maps.assets`: install the npm packages' files into ``maps/static/vendor`` and build
  folium maps that link only to them (``local_map``, ``localise``, ``render_offline``).
- :mod:`maps.style`: colours and Chinese labels per grid level.
- :mod:`maps.layers`: grid outlines per level and the incident heat layer.
- :mod:`maps.overview`: the grid overview page (网格总览).

Pages take GeoDataFrames; this package never imports ``api`` or ``gis.db``.
"""
