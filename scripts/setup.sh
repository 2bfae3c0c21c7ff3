#!/usr/bin/env bash
# Wangge set-up: installs what is missing, makes sure a PostGIS database answers, migrates it,
# then runs the demo or the test suite. Safe to run again: every step checks before it acts.
#
#   bash scripts/setup.sh demo     # everything, then load the demo district and serve :8000
#   bash scripts/setup.sh test     # everything, then the whole test suite
#   bash scripts/setup.sh install  # everything, no demo and no tests
#   bash scripts/setup.sh db       # only make sure the database answers (no Python, no assets)
#
# Environment: WANGGE_DATABASE_URL (use that database; no local server is touched),
# WANGGE_TEST_DATABASE_URL (tests; default: the main URL with "_test" after the name),
# WANGGE_PG_MODE=private (force a private cluster under var/ even if a system one exists),
# PYTHON (interpreter for the venv, default python3).
set -euo pipefail

MODE="${1:-demo}"
shift || true
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_VERSION=15
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP_DIR="$ROOT/var/stamps"
mkdir -p "$STAMP_DIR"

log() { printf '\033[1;34m[wangge]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[wangge] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root (or sudo) to run: $*"
  fi
}

# ---------------------------------------------------------------- system packages
apt_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  printf '%s\n' "${missing[@]:-}" | sed '/^$/d'
}

install_system_packages() {
  local wanted=(ca-certificates git)
  if [ -z "${WANGGE_DATABASE_URL:-}" ]; then
    wanted+=("postgresql-${PG_VERSION}" "postgresql-${PG_VERSION}-postgis-3"
             "postgresql-${PG_VERSION}-pgrouting" "postgresql-client-${PG_VERSION}")
  else
    wanted+=("postgresql-client-${PG_VERSION}")
  fi
  command -v node >/dev/null && command -v npm >/dev/null || wanted+=(nodejs npm)
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || wanted+=(python3-venv)
  command -v "$PYTHON" >/dev/null || wanted+=(python3)
  if [ "$MODE" = test ]; then
    wanted+=(chromium fonts-noto-cjk fonts-wqy-zenhei)
  else
    wanted+=(fonts-noto-cjk fonts-wqy-zenhei)
  fi
  mapfile -t missing < <(apt_missing "${wanted[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Do not let the package scripts start services (there may be no init system).
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    log "Debian packages: all present"
  fi
}

# ---------------------------------------------------------------- python and front-end assets
install_python() {
  local want_hash have_hash=""
  want_hash="$(cat pyproject.toml | sha256sum | cut -c1-16)"
  [ -f "$STAMP_DIR/pip" ] && have_hash="$(cat "$STAMP_DIR/pip")"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
    have_hash=""
  fi
  if [ "$want_hash" != "$have_hash" ]; then
    log "installing Python packages (pip install -e .[dev])"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    echo "$want_hash" > "$STAMP_DIR/pip"
  else
    log "Python packages: up to date"
  fi
}

install_assets() {
  local want_hash have_hash=""
  want_hash="$(cat package-lock.json | sha256sum | cut -c1-16)"
  [ -f "$STAMP_DIR/npm" ] && have_hash="$(cat "$STAMP_DIR/npm")"
  if [ "$want_hash" != "$have_hash" ] || [ ! -d node_modules ] || [ ! -d maps/static/vendor ]; then
    log "installing front-end assets from the npm registry (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    "$VENV/bin/python" -m maps.assets
    echo "$want_hash" > "$STAMP_DIR/npm"
  else
    log "front-end assets: up to date"
  fi
}

# ---------------------------------------------------------------- database server
pg_answers() { "$PG_BIN/pg_isready" -q -h "$1" -p "$2" >/dev/null 2>&1; }

superuser_psql() {
  # psql as the cluster's superuser over its Unix socket (peer or trust authentication).
  local sockdir="$1" port="$2"; shift 2
  runuser -u postgres -- env PGOPTIONS="-c client_min_messages=warning" \
    psql -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -d postgres "$@"
}

start_system_cluster() {
  # Reuse the Debian cluster: start it if it is down.
  command -v pg_lsclusters >/dev/null || return 1
  local line
  line="$(pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" '$1 == v {print; exit}')"
  [ -n "$line" ] || return 1
  local name port status
  name="$(awk '{print $2}' <<<"$line")"; port="$(awk '{print $3}' <<<"$line")"
  status="$(awk '{print $4}' <<<"$line")"
  if [ "$status" != online ]; then
    log "starting PostgreSQL cluster $PG_VERSION/$name on port $port"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$name" start \
      || as_root pg_ctlcluster "$PG_VERSION" "$name" start
  fi
  PGPORT_USED="$port"; PGSOCK_USED=/var/run/postgresql
  for _ in $(seq 1 30); do pg_answers 127.0.0.1 "$PGPORT_USED" && return 0; sleep 1; done
  die "PostgreSQL cluster $PG_VERSION/$name did not answer on 127.0.0.1:$port"
}

start_private_cluster() {
  # A private cluster owned by the postgres user, in a git-ignored folder, on 127.0.0.1 only.
  local data="$ROOT/var/pgdata" run="$ROOT/var/pgrun"
  if ! runuser -u postgres -- test -x "$ROOT/var" 2>/dev/null; then
    # The checkout is not reachable by the postgres user (e.g. under /root): keep it in /var/lib.
    data=/var/lib/wangge/pgdata; run=/var/lib/wangge/pgrun
  fi
  as_root mkdir -p "$data" "$run"
  as_root chown postgres:postgres "$data" "$run"
  as_root chmod 700 "$data"
  PGPORT_USED="${WANGGE_PG_PORT:-5432}"
  pg_answers 127.0.0.1 "$PGPORT_USED" && PGPORT_USED=5433
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! pg_answers 127.0.0.1 "$PGPORT_USED"; then
    log "starting the private cluster on 127.0.0.1:$PGPORT_USED"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT_USED -k $run" start >/dev/null
  fi
  PGSOCK_USED="$run"
}

ensure_database() {
  if [ -n "${WANGGE_DATABASE_URL:-}" ]; then
    log "using WANGGE_DATABASE_URL (no local server is managed)"
    return 0
  fi
  PGPORT_USED=""; PGSOCK_USED=""
  if [ "${WANGGE_PG_MODE:-}" = private ]; then
    start_private_cluster
  elif pg_answers 127.0.0.1 5432 && [ -S /var/run/postgresql/.s.PGSQL.5432 ]; then
    log "reusing the PostgreSQL server that answers on 127.0.0.1:5432"
    PGPORT_USED=5432; PGSOCK_USED=/var/run/postgresql
  else
    start_system_cluster || start_private_cluster
  fi
  log "creating role and databases (idempotent)"
  superuser_psql "$PGSOCK_USED" "$PGPORT_USED" <<'SQL'
SELECT 'CREATE ROLE wangge LOGIN CREATEDB PASSWORD ''wangge'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wangge')\gexec
SELECT 'CREATE DATABASE wangge OWNER wangge'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wangge')\gexec
SELECT 'CREATE DATABASE wangge_test OWNER wangge'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wangge_test')\gexec
SELECT 'CREATE DATABASE wangge_test_scratch OWNER wangge'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wangge_test_scratch')\gexec
SQL
  for db in wangge wangge_test wangge_test_scratch; do
    superuser_psql "$PGSOCK_USED" "$PGPORT_USED" -d "$db" \
      -c "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pgrouting;"
  done
  export WANGGE_DATABASE_URL="postgresql+psycopg://wangge:wangge@127.0.0.1:${PGPORT_USED}/wangge"
  export WANGGE_TEST_DATABASE_URL="${WANGGE_TEST_DATABASE_URL:-${WANGGE_DATABASE_URL}_test}"
}

# ---------------------------------------------------------------- main
start=$(date +%s)
if [ "$MODE" = db ]; then
  install_system_packages
  ensure_database
  log "database ready: ${WANGGE_DATABASE_URL}"
  exit 0
fi
install_system_packages
install_python
install_assets
ensure_database
export WANGGE_TEST_DATABASE_URL="${WANGGE_TEST_DATABASE_URL:-${WANGGE_DATABASE_URL}_test}"
log "migrating the database"
"$VENV/bin/wangge" db upgrade
log "set-up took $(( $(date +%s) - start )) s"

case "$MODE" in
  demo)    exec "$VENV/bin/wangge" demo "$@" ;;
  test)    exec "$VENV/bin/python" -m pytest "$@" ;;
  install) log "installed; run: .venv/bin/wangge demo" ;;
  *)       die "unknown mode '$MODE' (use demo, test or install)" ;;
esac
