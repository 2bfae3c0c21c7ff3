"""Wangge spatial core: pure functions on shapely / geopandas objects and plain data."""
