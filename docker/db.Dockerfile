# PostGIS 3 on PostgreSQL 15, plus pgRouting from the same (PGDG) apt repository.
FROM postgis/postgis:15-3.4
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-pgrouting \
 && rm -rf /var/lib/apt/lists/*
COPY docker/db-init.sql /docker-entrypoint-initdb.d/20-wangge.sql
