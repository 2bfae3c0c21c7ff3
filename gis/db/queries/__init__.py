"""All SQL and every ST_* call, one module per domain; rows leave as GeoDataFrames or dicts."""
