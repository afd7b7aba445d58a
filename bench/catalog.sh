#!/usr/bin/env bash
# Catalog benchmark (issue 6): a year of backups of 2,000 data sources (~10 million events) in the real PostgreSQL, then
# projection rebuild rate and the latency of the catalog's queries through the real API under 8 concurrent clients.
# Never part of the test suite.
#
#   bash bench/catalog.sh                    EVENTS=10000000 into schema catbench: load (resumes), rebuild, measure, report
#   EVENTS=200000 SCHEMA=catbench_small bash bench/catalog.sh     a small run to try it (~2 min)
#   bash bench/catalog.sh load|rebuild|measure|report             one step (each needs the ones before it)
#   bash bench/catalog.sh drop                                    drops the schema (and its progress)
#
# EVENTS (default 10,000,000) sets the size: EVENTS/5,000 data sources, each with a year of history (see YearOfBackups.cs
# for the shape). The load appends in batches of BATCH (2,000) consecutive events with Marten's Quick append, committing a
# progress row with each batch: interrupt it (Ctrl-C, kill, reboot) and run again to continue where it stopped; a schema
# keeps the EVENTS it was started with. APPEND=timestamps stamps mt_events.timestamp with each event's simulated time
# (QuickWithServerTimestamps) instead of the load time. Rebuild: the async projections one after another with the daemon's
# rebuild API (REBUILD_AGAIN=1 redoes those already rebuilt; PROJECTIONS=a,b names others). Measure: the Release API
# (no daemon) against the schema, CLIENTS (8) concurrent clients, REQUESTS (400) per query after a warm-up. Results are
# kept in the schema (catbench_results) and printed as one table; logs go to bench/work/catalog/ (ignored).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
EVENTS="${EVENTS:-10000000}"
SCHEMA="${SCHEMA:-catbench}"
BATCH="${BATCH:-2000}"
CLIENTS="${CLIENTS:-8}"
REQUESTS="${REQUESTS:-400}"
PORT="${CATBENCH_API_PORT:-5191}"
WORK="$REPO/bench/work/catalog"
STEP="${1:-all}"
mkdir -p "$WORK"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench/catalog.sh: %s\n' "$*" >&2; exit 1; }
[[ $SCHEMA =~ ^[a-z_][a-z0-9_]*$ ]] || die "SCHEMA must be a plain lower-case identifier"

# PostgreSQL and Azurite may be shared (another checkout's): use them when they answer on the configured ports, start them
# (scripts/services.sh up) only when nothing answers.
eval "$(bash scripts/services.sh env)"
if ! pg_isready -q -h 127.0.0.1 -p "$BACKUP_PG_PORT" || ! curl -s -o /dev/null "http://127.0.0.1:$BACKUP_AZURITE_PORT/"; then
  say "starting PostgreSQL and Azurite"; bash scripts/services.sh up >&2; eval "$(bash scripts/services.sh env)"
fi

bench() { dotnet "$REPO/bench/Backup.CatalogBench/bin/Release/net10.0/Backup.CatalogBench.dll" "$@" --schema "$SCHEMA"; }
build() {
  say "building (Release)"
  dotnet build bench/Backup.CatalogBench -c Release -v quiet -nologo >&2
  dotnet build src/Backup.Api -c Release -v quiet -nologo >&2
}

step_load() {
  say "load: EVENTS=$EVENTS into schema $SCHEMA (resumes where a previous run stopped)"
  bench load --events "$EVENTS" --batch "$BATCH" --append "${APPEND:-quick}"
}

step_rebuild() {
  say "rebuild: async projections with the daemon's rebuild API"
  bench rebuild --again "$([[ ${REBUILD_AGAIN:-0} == 1 ]] && echo true || echo false)" --projections "${PROJECTIONS:-}"
}

API_PID=""
stop_api() { if [[ -n $API_PID ]]; then kill "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true; API_PID=""; fi; }
trap stop_api EXIT

step_measure() {
  local key api="http://127.0.0.1:$PORT"
  key="$(head -c 24 /dev/urandom | base64 | tr -d '+/=\n')"
  say "measure: Release API on $api against schema $SCHEMA, $CLIENTS clients, $REQUESTS requests per query"
  # As deployed: the API without the daemon (the workers run it), its own disk store and vault container.
  (cd src/Backup.Api/bin/Release/net10.0 && exec env Backup__Schema="$SCHEMA" Backup__BootstrapAdminKey="$key" Backup__RunDaemon=false \
    Backup__DiskStore="$WORK/disk-store" Backup__VaultContainer="catbench-${SCHEMA//_/-}" Logging__LogLevel__Default=Warning \
    dotnet Backup.Api.dll --urls "$api" >"$WORK/api.log" 2>&1) &
  API_PID=$!
  # Up to 10 minutes: at start the API applies schema changes (a new index over a year of views takes a while).
  for _ in $(seq 1200); do [[ "$(curl -s "$api/health" 2>/dev/null)" == Healthy ]] && break; kill -0 "$API_PID" 2>/dev/null || break; sleep 0.5; done
  [[ "$(curl -s "$api/health")" == Healthy ]] || die "the API did not start; see $WORK/api.log"
  bench measure --url "$api" --key "$key" --clients "$CLIENTS" --requests "$REQUESTS" --items "${ITEMS_QUERY:-}"
  stop_api
  bench size
}

# Each step's output also goes to its log (process substitution, so the API's pid stays in this shell for the trap).
case $STEP in
  all) build; step_load > >(tee -a "$WORK/load.log") 2>&1; step_rebuild > >(tee -a "$WORK/rebuild.log") 2>&1
       step_measure > >(tee -a "$WORK/measure.log") 2>&1; bench report ;;
  load) build; step_load > >(tee -a "$WORK/load.log") 2>&1 ;;
  rebuild) build; step_rebuild > >(tee -a "$WORK/rebuild.log") 2>&1 ;;
  measure) build; step_measure > >(tee -a "$WORK/measure.log") 2>&1; bench report ;;
  report) bench report ;;
  drop) psql "host=127.0.0.1 port=$BACKUP_PG_PORT user=postgres dbname=backup" -q -c "drop schema if exists $SCHEMA cascade" 2>&1 | grep -v '^DETAIL\|^drop cascades' || true ;;
  *) die "unknown step $STEP (all, load, rebuild, measure, report, drop)" ;;
esac
