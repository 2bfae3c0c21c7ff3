# The Wangge API and dashboards; front-end assets come from the npm registry at build time.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md alembic.ini ./
COPY gis gis
COPY api api
COPY maps maps
COPY data data
RUN pip install --no-cache-dir -e . && python -m maps.assets
EXPOSE 8000
CMD ["wangge", "demo"]
