#!/usr/bin/env bash
# Local services for development, tests and CI: a project-local PostgreSQL 15
# cluster and an Azurite blob emulator. Runs as root on Debian; nothing here is
# meant for production.
#
#   scripts/services.sh up       start both (installs them if missing); idempotent
#   scripts/services.sh down     stop both (only the processes this repo started)
#   scripts/services.sh status   print whether each is running (exit 0 = both up)
#   scripts/services.sh env      print export lines: eval "$(scripts/services.sh env)"
#   scripts/services.sh pg-down  stop PostgreSQL alone; pg-up starts it again (the agent's outage test)
#
# Environment:
#   BACKUP_PG_PORT         PostgreSQL TCP port on 127.0.0.1 (default 55432)
#   BACKUP_AZURITE_PORT    Azurite blob port on 127.0.0.1    (default 10100)
#   BACKUP_AZURITE_VERSION npm version of azurite to install (default 3.35.0;
#                          3.36+ needs Node >= 21/22)
#
# State lives in $REPO/.local/ (git-ignored). The PostgreSQL cluster is in
# $REPO/.local/pg unless the `postgres` OS user cannot reach that directory
# (e.g. the clone sits under a mode-700 directory such as /root) or the socket
# path would be too long; then it is in /var/tmp/backup-pg-<hash of repo path>.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$REPO/.local"

PG_BIN=/usr/lib/postgresql/15/bin # never /usr/local/bin/pg_ctl or PATH lookups
PG_PORT="${BACKUP_PG_PORT:-55432}"
AZ_PORT="${BACKUP_AZURITE_PORT:-10100}"
AZ_VERSION="${BACKUP_AZURITE_VERSION:-3.35.0}"

PG_BASE_INREPO="$LOCAL/pg"
PG_BASE_FALLBACK="/var/tmp/backup-pg-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"

AZ_NODE_DIR="$LOCAL/node"
AZ_BIN="$AZ_NODE_DIR/node_modules/.bin/azurite-blob"
AZ_DATA="$LOCAL/azurite"
AZ_LOG="$LOCAL/azurite.log"
AZ_PID_FILE="$LOCAL/azurite.pid"

# Well-known Azurite development account (public, documented by Microsoft).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { printf '%s\n' "$*" >&2; }
die() { printf 'services.sh: %s\n' "$*" >&2; exit 1; }

check_port_var() { # name value
  [[ "$2" =~ ^[0-9]+$ ]] && ((10#$2 >= 1 && 10#$2 <= 65535)) || die "$1 must be a TCP port number, got '$2'"
}

# --------------------------------------------------------------------------
# generic helpers

# true if something accepts TCP connections on 127.0.0.1:$1
tcp_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# true if anything listens on TCP port $1 (any address)
port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && return 0
  fi
  tcp_open "$port"
}

port_busy_msg() { # port envvar
  echo "port $1 is in use by another process; set $2 to a free port (or stop that process)"
}

# Closes every fd above 2 in the current (sub)shell. Used before starting the
# servers so they inherit neither our lock fd nor a caller's pipe (which would
# keep e.g. `... | tee` or a CI log reader waiting for EOF forever).
close_extra_fds() {
  local f n
  for f in /proc/"$BASHPID"/fd/*; do
    n=${f##*/}
    if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 2)); then
      eval "exec $n>&-" 2>/dev/null || true
    fi
  done
}

# run a command as the postgres OS user from a directory it can enter
as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# the process-id on the first line of a file, or nothing
pid_from_file() {
  [[ -r "$1" ]] || return 0
  local pid
  pid="$(head -n1 "$1" 2>/dev/null | tr -d '[:space:]')"
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# Serialises concurrent up/down runs. fd 9 must not leak into the servers we
# start (they would hold the lock forever): see close_extra_fds.
with_lock() {
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/services.lock"
  if ! flock -n 9; then
    log "services.sh: waiting for another services.sh run (lock $LOCAL/services.lock)…"
    flock -w 600 9 || die "timed out waiting for the lock $LOCAL/services.lock"
  fi
}

# --------------------------------------------------------------------------
# PostgreSQL

# Prints the base dir of an existing cluster of this repo, or nothing.
pg_base_existing() {
  if [[ -f "$PG_BASE_INREPO/data/PG_VERSION" ]]; then
    echo "$PG_BASE_INREPO"
  elif [[ -f "$PG_BASE_FALLBACK/data/PG_VERSION" ]]; then
    echo "$PG_BASE_FALLBACK"
  fi
}

# Chooses (and creates, owned by postgres) the base dir for a new cluster.
pg_base_choose() {
  local base=$PG_BASE_INREPO
  # Unix socket paths are limited to 107 bytes.
  local sock="$base/run/.s.PGSQL.$PG_PORT.lock"
  if ((${#sock} <= 100)); then
    mkdir -p "$base"
    chown postgres:postgres "$base"
    chmod 700 "$base"
    if as_postgres test -w "$base" -a -x "$base" 2>/dev/null; then
      echo "$base"
      return
    fi
    rmdir "$base" 2>/dev/null || true
    log "postgres: $REPO is not reachable by the postgres user; using $PG_BASE_FALLBACK"
  else
    log "postgres: repo path too long for a Unix socket; using $PG_BASE_FALLBACK"
  fi
  base=$PG_BASE_FALLBACK
  mkdir -p "$base"
  chown postgres:postgres "$base"
  chmod 700 "$base"
  as_postgres test -w "$base" -a -x "$base" || die "postgres user cannot write $base"
  echo "$base"
}

# pid of the running postmaster of data dir $1, or nothing. Checks that the pid
# really is a postgres process working in that directory (pids get reused).
pg_pid() {
  local data=$1 pid cwd
  pid="$(pid_from_file "$data/postmaster.pid")"
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 0
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  [[ "$cwd" == "$(cd "$data" 2>/dev/null && pwd -P)" ]] || return 0
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]] || return 0
  echo "$pid"
}

# port line (4th) of postmaster.pid
pg_running_port() {
  sed -n 4p "$1/postmaster.pid" 2>/dev/null | tr -d '[:space:]'
}

pg_install() {
  [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" && -x "$PG_BIN/psql" ]] && return 0
  log "postgres: installing postgresql-15 (apt)…"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  [[ -x "$PG_BIN/initdb" ]] || die "postgresql-15 installed but $PG_BIN/initdb is missing"
}

pg_write_conf() { # data base
  local data=$1 base=$2 conf="$1/backup-dev.conf" ram_mb buffers_mb
  # Shared buffers: a quarter of the machine's memory, at least 128 MB (PostgreSQL's default) and at most 4 GB. The
  # default alone keeps only 128 MB of a year's views in PostgreSQL's cache: a projection rebuild at 10M events then ran at
  # half the rate (bench/catalog.sh; docs/operations.md "PostgreSQL settings" has the figures and the settings for a production server).
  ram_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo 2>/dev/null || echo 0)
  buffers_mb=$(( ram_mb / 4 )); (( buffers_mb < 128 )) && buffers_mb=128; (( buffers_mb > 4096 )) && buffers_mb=4096
  # Written on every start so a changed BACKUP_PG_PORT takes effect.
  cat >"$conf" <<EOF
# Managed by scripts/services.sh; rewritten on every 'up'. Dev/test only.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$base/run'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
shared_buffers = ${buffers_mb}MB
# Fewer checkpoints, so fewer full-page images when views are rewritten all over their tables (a rebuild); lz4 is cheap.
max_wal_size = 8GB
checkpoint_timeout = 30min
wal_compression = lz4
# Views over 2 KB (a data source's compliance head) are compressed whenever they are written: lz4 instead of pglz, which took
# a fifth of the backend's time in a compliance rebuild.
default_toast_compression = lz4
EOF
  chown postgres:postgres "$conf"
  chmod 600 "$conf"
  if ! grep -q "^include_if_exists = 'backup-dev.conf'" "$data/postgresql.conf"; then
    printf "\ninclude_if_exists = 'backup-dev.conf'\n" >>"$data/postgresql.conf"
  fi
}

pg_up() {
  local base data pid port
  base="$(pg_base_existing)"
  if [[ -n "$base" ]]; then
    data="$base/data"
    pid="$(pg_pid "$data")"
    if [[ -n "$pid" ]]; then
      port="$(pg_running_port "$data")"
      [[ "$port" == "$PG_PORT" ]] ||
        die "postgres of this repo is already running on port $port (pid $pid), not $PG_PORT; run 'scripts/services.sh down' first or set BACKUP_PG_PORT=$port"
      log "postgres: reused pid $pid on 127.0.0.1:$PG_PORT"
      pg_ensure_db
      return
    fi
  fi

  port_in_use "$PG_PORT" && die "$(port_busy_msg "$PG_PORT" BACKUP_PG_PORT)"
  pg_install

  if [[ -z "$base" ]]; then
    base="$(pg_base_choose)"
    data="$base/data"
    log "postgres: initdb in $data"
    local locale=C
    locale -a 2>/dev/null | grep -qix 'c.utf-\?8' && locale=C.UTF-8
    # trust auth: dev/test cluster only, listening on 127.0.0.1 only.
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
      --locale="$locale" >"$base/initdb.log" 2>&1 ||
      { tail -n 30 "$base/initdb.log" >&2; die "initdb failed (log: $base/initdb.log)"; }
  fi

  if ! as_postgres test -r "$data/PG_VERSION"; then
    die "postgres user cannot reach $data (a parent directory is not traversable?); run 'scripts/services.sh down', remove $base and retry"
  fi

  # Stale lock file from a killed server (e.g. machine restarted): pg_pid
  # already proved no postgres of ours runs there.
  if [[ -f "$data/postmaster.pid" ]]; then
    log "postgres: removing stale $data/postmaster.pid"
    rm -f "$data/postmaster.pid"
  fi

  mkdir -p "$base/run"
  # Same for socket lock files left in our private socket dir.
  rm -f "$base/run"/.s.PGSQL.*
  chown postgres:postgres "$base/run"
  chmod 700 "$base/run"
  touch "$base/postgres.log"
  chown postgres:postgres "$base/postgres.log"
  pg_write_conf "$data" "$base"

  if ! (close_extra_fds && as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$base/postgres.log" -w -t 60 start) </dev/null >/dev/null 2>&1; then
    tail -n 30 "$base/postgres.log" >&2 || true
    die "postgres failed to start on 127.0.0.1:$PG_PORT (log: $base/postgres.log)"
  fi
  log "postgres: started on 127.0.0.1:$PG_PORT (data $data)"
  pg_ensure_db
}

pg_psql() {
  PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

pg_ensure_db() {
  local exists
  exists="$(pg_psql -d postgres -tAc "select 1 from pg_database where datname = 'backup'")" ||
    die "cannot connect to postgres on 127.0.0.1:$PG_PORT"
  if [[ "$exists" != 1 ]]; then
    pg_psql -d postgres -c 'create database backup' >/dev/null
    log "postgres: created database backup"
  fi
}

pg_down() {
  local base data pid
  base="$(pg_base_existing)"
  if [[ -z "$base" ]]; then
    log "postgres: not initialised"
    return
  fi
  data="$base/data"
  pid="$(pg_pid "$data")"
  if [[ -z "$pid" ]]; then
    log "postgres: not running"
    return
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
    tail -n 20 "$base/postgres.log" >&2 || true
    log "services.sh: pg_ctl stop failed for $data"
    return 1
  fi
  log "postgres: stopped (was pid $pid)"
}

pg_status() {
  local base data pid
  base="$(pg_base_existing)"
  if [[ -z "$base" ]]; then
    echo "postgres: not initialised (would use $PG_BASE_INREPO or $PG_BASE_FALLBACK)"
    return 1
  fi
  data="$base/data"
  pid="$(pg_pid "$data")"
  if [[ -n "$pid" ]]; then
    echo "postgres: running, pid $pid, 127.0.0.1:$(pg_running_port "$data"), data $data"
  else
    echo "postgres: stopped, data $data"
    return 1
  fi
}

# --------------------------------------------------------------------------
# Azurite

# pid of our running azurite, or nothing (checks the pid still is azurite-blob
# with our --location, so a reused pid is never mistaken for it).
az_pid() {
  local pid cmd
  pid="$(pid_from_file "$AZ_PID_FILE")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *azurite-blob* && "$cmd" == *" --location $AZ_DATA "* ]] || return 0
  echo "$pid"
}

az_running_port() {
  local pid=$1
  tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--blobPort$/{n;p;q}'
}

az_install() {
  local have=""
  if [[ -x "$AZ_BIN" ]]; then
    have="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$AZ_NODE_DIR/node_modules/azurite/package.json" 2>/dev/null | head -n1)"
    [[ "$have" == "$AZ_VERSION" ]] && return 0
  fi
  command -v node >/dev/null 2>&1 || die "node is not installed (needed for azurite)"
  command -v npm >/dev/null 2>&1 || die "npm is not installed (needed for azurite)"
  log "azurite: installing azurite@$AZ_VERSION into $AZ_NODE_DIR…"
  mkdir -p "$AZ_NODE_DIR"
  [[ -f "$AZ_NODE_DIR/package.json" ]] ||
    printf '{\n  "name": "backup-local-services",\n  "private": true\n}\n' >"$AZ_NODE_DIR/package.json"
  if ! (cd "$AZ_NODE_DIR" && npm install --prefix "$AZ_NODE_DIR" --no-audit --no-fund \
    --loglevel=error --save-exact "azurite@$AZ_VERSION") >"$LOCAL/npm-install.log" 2>&1; then
    tail -n 30 "$LOCAL/npm-install.log" >&2
    die "npm install azurite@$AZ_VERSION failed (log: $LOCAL/npm-install.log)"
  fi
  [[ -x "$AZ_BIN" ]] || die "azurite installed but $AZ_BIN is missing"
}

az_up() {
  local pid port
  pid="$(az_pid)"
  if [[ -n "$pid" ]]; then
    port="$(az_running_port "$pid")"
    [[ "$port" == "$AZ_PORT" ]] ||
      die "azurite of this repo is already running on port $port (pid $pid), not $AZ_PORT; run 'scripts/services.sh down' first or set BACKUP_AZURITE_PORT=$port"
    log "azurite: reused pid $pid on 127.0.0.1:$AZ_PORT"
    return
  fi
  rm -f "$AZ_PID_FILE"
  port_in_use "$AZ_PORT" && die "$(port_busy_msg "$AZ_PORT" BACKUP_AZURITE_PORT)"
  az_install
  mkdir -p "$AZ_DATA"

  # Own session (like the postmaster), so signals to the caller's process
  # group do not reach it. stdin/stdout/stderr are all redirected so callers
  # capturing our output (e.g. $(services.sh up)) do not wait for azurite.
  # The inner shell writes its own pid and then execs azurite, so the pid file
  # holds azurite's pid whether or not setsid forks.
  printf '\n==== %s azurite-blob starting on 127.0.0.1:%s\n' "$(date -Is)" "$AZ_PORT" >>"$AZ_LOG"
  rm -f "$AZ_PID_FILE"
  (
    close_extra_fds
    exec nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$AZ_PID_FILE" \
      "$AZ_BIN" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --location "$AZ_DATA" \
      --skipApiVersionCheck --loose --silent --disableTelemetry
  ) </dev/null >>"$AZ_LOG" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do # pid file appears within milliseconds
    pid="$(pid_from_file "$AZ_PID_FILE")"
    [[ -n "$pid" ]] && break
    sleep 0.1
  done
  [[ -n "$pid" ]] || { tail -n 30 "$AZ_LOG" >&2 || true; die "azurite did not start (log: $AZ_LOG)"; }

  local deadline=$((SECONDS + 60))
  until tcp_open "$AZ_PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$AZ_LOG" >&2 || true
      rm -f "$AZ_PID_FILE"
      die "azurite exited during startup (log: $AZ_LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$AZ_LOG" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$AZ_PID_FILE"
      die "azurite did not open 127.0.0.1:$AZ_PORT within 60 s (log: $AZ_LOG)"
    fi
    sleep 0.3
  done
  log "azurite: started pid $pid on 127.0.0.1:$AZ_PORT"
}

az_down() {
  local pid i
  pid="$(az_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$AZ_PID_FILE"
    log "azurite: not running"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do # up to 20 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "azurite: pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
  fi
  rm -f "$AZ_PID_FILE"
  log "azurite: stopped (was pid $pid)"
}

az_status() {
  local pid
  pid="$(az_pid)"
  if [[ -n "$pid" ]]; then
    echo "azurite: running, pid $pid, 127.0.0.1:$(az_running_port "$pid"), data $AZ_DATA"
  else
    echo "azurite: stopped"
    return 1
  fi
}

# --------------------------------------------------------------------------

# single-quote a value for eval
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

print_env() {
  local pg="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=backup;Pooling=true"
  local blob="DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT;"
  echo "export BACKUP_PG_PORT=$(sq "$PG_PORT")"
  echo "export BACKUP_AZURITE_PORT=$(sq "$AZ_PORT")"
  echo "export BACKUP_PG=$(sq "$pg")"
  echo "export BACKUP_AZURITE=$(sq "$blob")"
  echo "export ConnectionStrings__Marten=$(sq "$pg")"
  echo "export ConnectionStrings__Vault=$(sq "$blob")"
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/services.sh up|down|status|env
  up      start PostgreSQL (127.0.0.1:$BACKUP_PG_PORT, default 55432) and
          Azurite blob (127.0.0.1:$BACKUP_AZURITE_PORT, default 10100);
          installs them when missing; reuses running instances
  down    stop both
  status  show whether each runs (exit 0 only when both run)
  env     print export lines; use: eval "$(scripts/services.sh env)"
  pg-down, pg-up
          stop or start PostgreSQL alone (an outage in the agent's end-to-end test)
EOF
}

main() {
  check_port_var BACKUP_PG_PORT "$PG_PORT"
  check_port_var BACKUP_AZURITE_PORT "$AZ_PORT"
  [[ "$PG_PORT" != "$AZ_PORT" ]] || die "BACKUP_PG_PORT and BACKUP_AZURITE_PORT must differ"
  case "${1:-}" in
    up)
      [[ $EUID -eq 0 ]] || die "must run as root (it runs postgres via runuser)"
      with_lock
      # Fail on a busy Azurite port before starting anything (pg_up checks its own).
      [[ -n "$(az_pid)" ]] || ! port_in_use "$AZ_PORT" || die "$(port_busy_msg "$AZ_PORT" BACKUP_AZURITE_PORT)"
      pg_up
      az_up
      ;;
    down)
      [[ $EUID -eq 0 ]] || die "must run as root"
      with_lock
      local rc=0
      pg_down || rc=$?
      az_down || rc=$?
      return "$rc"
      ;;
    pg-down | pg-up)
      [[ $EUID -eq 0 ]] || die "must run as root (it runs postgres via runuser)"
      with_lock
      if [[ $1 == pg-down ]]; then pg_down; else pg_up; fi
      ;;
    status)
      local rc=0
      pg_status || rc=3
      az_status || rc=3
      return "$rc"
      ;;
    env) print_env ;;
    -h | --help | help) usage ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
