#!/usr/bin/env bash
# Scale benchmark (issue 5): AGENTS (200) in-process agent clients × SOURCES (5) data sources against the real API and 1, then
# 3, worker processes (Release builds), with the server's clock running SPEED (240) times real time so HOURS (24) simulated
# hours of 15-minute schedules pass in HOURS×3600/SPEED real seconds (6 min by default, per worker count).
#
#   bash bench/scale.sh                      1 and 3 workers, defaults above
#   WORKERS="3" HOURS=6 bash bench/scale.sh  one run
#
# Schedules: 12 groups, group g taking recovery points at g×15 min + every 3 h (8 a day, UTC), so every 15-minute slot is due
# for one twelfth of the data sources (~83 at the defaults). Each agent polls every POLL (5) real seconds and takes a job
# as a small incremental backup over the real protocol (one new 4 KiB pack, commit with catalog items).
# Reports per worker count: due instants expected (from the calendar) and requested in the window, duplicates, events
# appended per second, scheduler lag = BackupRequested appended − due instant in real seconds (p50 / p99 / max), and
# dispatch → claim (includes the agents' poll interval). The clocks (Backup:Clock) are a test-only setting: see docs/operations.md.
# Work files go to bench/work/scale/ (ignored). Never part of the test suite.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
AGENTS="${AGENTS:-200}" SOURCES="${SOURCES:-5}" SPEED="${SPEED:-240}" HOURS="${HOURS:-24}" POLL="${POLL:-5}"
WORKER_COUNTS="${WORKERS:-1 3}" SETUP_SECONDS="${SETUP_SECONDS:-60}" PORT="${SCALE_API_PORT:-5192}"
WORK="$REPO/bench/work/scale"
API="http://127.0.0.1:$PORT"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

started_services=0
bash scripts/services.sh status >/dev/null 2>&1 || started_services=1
bash scripts/services.sh up >&2
eval "$(bash scripts/services.sh env)"
say "building (Release)"
for p in src/Backup.Api src/Backup.Workers bench/Backup.ScaleBench; do dotnet build "$p" -c Release -v quiet -nologo >&2; done

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $started_services == 1 ]]; then bash scripts/services.sh down >&2 || true; fi
}
trap cleanup EXIT

mkdir -p "$WORK"
RESULTS="$WORK/results-$(date +%Y%m%dT%H%M%S).tsv"
for workers in $WORKER_COUNTS; do
  run="$WORK/w$workers"; rm -rf "$run"; mkdir -p "$run"
  schema="scale_w${workers}_$$"
  key="$(head -c 24 /dev/urandom | base64 | tr -d '+/=\n')"
  # Simulated time 2026-06-01T00:00Z falls SETUP_SECONDS after now: set-up (enrolment, groups, data sources) happens before it.
  epoch="$(date -u -d "+${SETUP_SECONDS} seconds" +%Y-%m-%dT%H:%M:%SZ)"
  export Backup__Clock__Speed="$SPEED" Backup__Clock__Start="2026-06-01T00:00:00Z" Backup__Clock__Epoch="$epoch"
  export Backup__Schema="$schema" Backup__DiskStore="$run/disk" Backup__VaultContainer="scale-w$workers-$$" Backup__BootstrapAdminKey="$key"
  export Backup__JobLeases__Duration="06:00:00" Logging__LogLevel__Default=Warning DOTNET_ENVIRONMENT=Production
  say "$workers worker(s): schema $schema, simulated day starts at $epoch (real)"
  (cd src/Backup.Api/bin/Release/net10.0 && exec dotnet Backup.Api.dll --urls "$API" > "$run/api.log" 2>&1) & PIDS+=($!)
  for _ in $(seq 120); do [[ "$(curl -s "$API/health")" == Healthy ]] && break; sleep 0.5; done
  for w in $(seq "$workers"); do
    (cd src/Backup.Workers/bin/Release/net10.0 && exec dotnet Backup.Workers.dll > "$run/worker-$w.log" 2>&1) & PIDS+=($!)
  done
  load0="$(cut -d' ' -f1 /proc/loadavg)"
  set +e
  dotnet bench/Backup.ScaleBench/bin/Release/net10.0/Backup.ScaleBench.dll --api "$API/" --admin-key "$key" --postgres "$BACKUP_PG" \
    --schema "$schema" --agents "$AGENTS" --sources "$SOURCES" --speed "$SPEED" --hours "$HOURS" --poll "$POLL" \
    --start 2026-06-01T00:00:00Z --epoch "$epoch" --workers "$workers" > "$run/row.tsv" 2> >(tee "$run/bench.log" >&2)
  status=$?
  set -e
  printf '%s\t%s\n' "$(cat "$run/row.tsv")" "$(cut -d' ' -f1 /proc/loadavg)" >> "$RESULTS"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  psql "host=127.0.0.1 port=$BACKUP_PG_PORT user=postgres dbname=backup" -qc "drop schema \"$schema\" cascade" >/dev/null 2>&1 || true
  [[ $status == 0 ]] || say "run with $workers worker(s) missed or duplicated due instants (exit $status)"
done

say "results ($RESULTS)"
{
  printf 'workers\tagents\tsources\tspeed\thours\tdue\trequested\tduplicates\tevents/s\tlag p50 s\tlag p99 s\tlag max s\tclaim p50 s\tclaim p99 s\tclaimed\tagent errors\tload\n'
  cat "$RESULTS"
} | column -t -s $'\t'
