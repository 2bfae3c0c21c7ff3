"""Benchmarks of the spatial core against geopandas and PostGIS (``wangge bench ...``).

Unlike the rest of ``gis``, this package may talk to PostGIS (through SQLAlchemy and psycopg):
comparing with the database is its purpose. Nothing in the pure core imports it.
"""
