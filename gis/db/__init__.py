"""The only place that talks to PostGIS: settings, sessions, models, queries and migrations."""
