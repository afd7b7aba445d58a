#!/usr/bin/env bash
# The main job on one machine: installs and starts what is missing (PostgreSQL 15, Azurite), builds, starts
# the API, the workers and one local agent, protects a demo folder, takes a backup, waits for the online
# copy in the vault, restores it from the vault into another folder, and prints where to look.
#
#   scripts/demo.sh            run it (processes stay up so you can explore; logs in .local/run/)
#   scripts/demo.sh schedule   instead: the server's clock runs DEMO_SPEED (240) times as fast, and a protection group with a
#                              15-minute sync policy, six recovery points a day kept one day, and an online policy of two
#                              copies a day takes the folder with no further calls; prints what happens (DEMO_WATCH_MINUTES, 10)
#   scripts/demo.sh stop       stop the API, workers and agent this script started, and the services if it started them
#
# Environment: BACKUP_API_PORT (default 5080), plus those of scripts/services.sh.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
RUN="$REPO/.local/run"
DEMO="$REPO/.local/demo"
PORT="${BACKUP_API_PORT:-5080}"
API="http://127.0.0.1:$PORT"
mkdir -p "$RUN"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

stop_processes() {
  for name in agent workers api; do
    local f="$RUN/$name.pid"
    [[ -f $f ]] || continue
    local pid; pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null && grep -q "Backup\." "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" && echo "stopped $name (pid $pid)"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
  done
}

if [[ "${1:-}" == "stop" ]]; then
  stop_processes
  # Only what the demo started: services that were already running (tests, another session) stay up.
  if [[ -f "$RUN/services.started-by-demo" ]]; then
    bash scripts/services.sh down
    rm -f "$RUN/services.started-by-demo"
  fi
  exit 0
fi

command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is required"
if ! command -v curl >/dev/null; then
  say "installing curl"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi

say "starting PostgreSQL and Azurite"
if ! bash scripts/services.sh status >/dev/null 2>&1; then touch "$RUN/services.started-by-demo"; fi
bash scripts/services.sh up
eval "$(bash scripts/services.sh env)"

stop_processes
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use by another process; set BACKUP_API_PORT"; fi
if [[ ${1:-} == schedule ]]; then
  # Each run starts its fast clock at the real now: a store from an earlier run would hold instants from its "future".
  psql -X -q -h 127.0.0.1 -p "$BACKUP_PG_PORT" -U postgres -d backup -c 'drop schema if exists demo_schedule cascade' >/dev/null
  rm -rf "$REPO/.local/disk-store-schedule"
fi

say "building"
dotnet build Backup.sln -c Release -v quiet -nologo
say "publishing the agent as a native executable"
AGENT_EXE="$(bash scripts/publish-agent.sh)"

MODE="${1:-backup}"
[[ $MODE == backup || $MODE == schedule ]] || die "unknown mode '$MODE' (backup, schedule or stop)"
export Backup__Schema=demo Backup__DiskStore="$REPO/.local/disk-store" Backup__VaultContainer=demo-vault
if [[ $MODE == schedule ]]; then
  # A store of its own (the fast clock's instants must not mix with the real-time demo's), and the test-only fast clock
  # for the API and the workers (docs/operations.md, "Running each process alone"); the agent keeps real time and gets its lease in
  # real seconds. A lease of 2 simulated hours is 30 real seconds at 240x.
  SPEED="${DEMO_SPEED:-240}"
  epoch="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  export Backup__Schema=demo_schedule Backup__DiskStore="$REPO/.local/disk-store-schedule" Backup__VaultContainer=demo-schedule-vault
  export Backup__Clock__Speed="$SPEED" Backup__Clock__Start="$epoch" Backup__Clock__Epoch="$epoch" Backup__JobLeases__Duration=02:00:00 Backup__JobLeases__PickupTimeout=1.00:00:00
fi
# The first admin's API key: made on the first run, kept in the git-ignored .local/ (owner-only), given to the API
# alone through its environment, and sent by every call below from a header file (never on a command line). The API
# never logs it.
ADMIN_KEY_FILE="$REPO/.local/bootstrap-admin.key"
AUTH_HEADER="$REPO/.local/bootstrap-admin.header"
if [[ ! -s $ADMIN_KEY_FILE ]]; then (umask 077; head -c 32 /dev/urandom | base64 | tr -d '+/=\n' >"$ADMIN_KEY_FILE"); fi
(umask 077; printf 'Authorization: ApiKey %s\n' "$(cat "$ADMIN_KEY_FILE")" >"$AUTH_HEADER")
start() { # name project args...
  local name=$1 project=$2; shift 2
  cd "$REPO/src/$project/bin/Release/net10.0"
  if [[ $project == Backup.Agent ]]; then
    nohup "$AGENT_EXE" "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  else
    nohup dotnet "$project.dll" "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  fi
  echo $! >"$RUN/$name.pid"
  cd "$REPO"
}
json_field() { { grep -o "\"$1\":\"[^\"]*\"" || true; } | head -1 | cut -d'"' -f4; }
post() { curl -sS -f -X POST "$API$1" -H "@$AUTH_HEADER" -H 'content-type: application/json' -d "${2:-{\}}"; }
get() { curl -s "$API$1" -H "@$AUTH_HEADER"; }

say "starting the API on $API and the workers"
Backup__BootstrapAdminKey="$(cat "$ADMIN_KEY_FILE")" start api Backup.Api --urls "$API"
for _ in $(seq 120); do curl -s -o /dev/null "$API/health" && break; sleep 0.5; done
[[ "$(curl -s "$API/health")" == "Healthy" ]] || die "the API did not become healthy; see $RUN/api.log"
start workers Backup.Workers

say "preparing the demo folder $DEMO/protected"
if [[ ! -d "$DEMO/protected" ]]; then
  mkdir -p "$DEMO/protected/documents/2026" "$DEMO/protected/photos"
  echo "Quarterly report" >"$DEMO/protected/documents/2026/report.txt"
  echo "Ünïcødé names work too" >"$DEMO/protected/documents/résumé – 名字.txt"
  head -c $((24 * 1024 * 1024)) /dev/urandom >"$DEMO/protected/photos/holiday.raw"
  : >"$DEMO/protected/empty.txt"
fi

say "setting the repository passphrase (kept in $DEMO/passphrase, readable by root only)"
mkdir -p "$DEMO"
if [[ ! -s "$DEMO/passphrase" ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 >"$DEMO/passphrase")
fi
if [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "@$AUTH_HEADER" "$API/api/repository/key")" == 404 ]]; then
  # printf is a shell builtin: the passphrase never appears on a command line (ps).
  printf '{"passphrase":"%s"}' "$(cat "$DEMO/passphrase")" |
    curl -sS -f -X PUT "$API/api/repository/key" -H "@$AUTH_HEADER" -H 'content-type: application/json' --data-binary @- >/dev/null
fi

say "enrolling a local agent"
# The one-time token goes to the agent in a file only root reads, not on its command line (any local user reads those in ps).
rm -f "$DEMO/enrolment-token"
(umask 077 && post /api/enrolment-tokens '{"validForMinutes":30}' | json_field token >"$DEMO/enrolment-token")
rm -rf "$DEMO/agent-state"
start agent Backup.Agent "--Agent:Server=$API/" "--Agent:EnrolmentTokenFile=$DEMO/enrolment-token" "--Agent:StateDirectory=$DEMO/agent-state" "--Agent:MachineName=$(hostname)" "--Agent:PassphraseFile=$DEMO/passphrase"
agent=""
# The agent this run enrolled (its saved credential names it): agents enrolled by earlier runs stay listed by the server.
# The file is tested first: a redirection from a file not there yet is reported by the shell before any 2>/dev/null applies.
for _ in $(seq 60); do
  [[ -s "$DEMO/agent-state/credential.json" ]] && agent="$(json_field AgentId <"$DEMO/agent-state/credential.json")"
  [[ -n $agent ]] && break
  sleep 0.5
done
rm -f "$DEMO/enrolment-token" # redeemed (or expiring): of no further use
[[ -n $agent ]] || die "the agent did not enrol; see $RUN/agent.log"

if [[ $MODE == schedule ]]; then
  put_policy() { curl -sS -f -X PUT "$API/api/protection-groups/$1/$2" -H "@$AUTH_HEADER" -H 'If-Match: *' -H 'content-type: application/json' -d "$3" >/dev/null; }
  say "creating a protection group with policies (server clock at ${SPEED}x, started at $epoch)"
  group="$(post /api/protection-groups "{\"name\":\"Scheduled demo $(date +%s)\"}" | json_field id)"
  all_days='["Monday","Tuesday","Wednesday","Thursday","Friday","Saturday","Sunday"]'
  put_policy "$group" short-term-policy "{\"retentionDays\":1,\"synchronisation\":\"Interval\",\"syncIntervalMinutes\":15,\"recoveryPointTimes\":[\"00:00\",\"04:00\",\"08:00\",\"12:00\",\"16:00\",\"20:00\"],\"recoveryPointDays\":$all_days,\"timeZone\":\"UTC\"}"
  put_policy "$group" online-policy '{"backupTimes":["06:00","18:00"],"schedule":"Daily","dailyRetentionDays":7}'
  source="$(post "/api/protection-groups/$group/data-sources" "{\"agentId\":\"$agent\",\"kind\":\"Folder\",\"path\":\"$DEMO/protected\"}" | json_field id)"
  say "watching group $group for ${DEMO_WATCH_MINUTES:-10} minutes: no further calls, only what the policies do"
  echo "  a line when recovery points change (syncs run every 15 simulated minutes in between):"
  echo "  server time   syncs done  points  on disk  in vault  expired from disk"
  count() { { grep -o "$1" || true; } | wc -l; }
  last=""
  deadline=$(( $(date +%s) + 60 * ${DEMO_WATCH_MINUTES:-10} ))
  while (( $(date +%s) < deadline )); do
    points="$(get "/api/recovery-points?dataSourceId=$source&limit=500")"
    state="$(printf '%6d  %7d  %8d  %17d' "$(count '"status":"Created"' <<<"$points")" "$(count '"onDisk":true' <<<"$points")" \
      "$(count '"inVault":true' <<<"$points")" "$(count '"expiredFromDiskAt":"' <<<"$points")")"
    if [[ $state != "$last" ]]; then
      syncs="$(get "/api/jobs?dataSourceId=$source&kind=Synchronisation&state=Succeeded&limit=500")"
      now=$(( $(date -u -d "$epoch" +%s) + ( $(date +%s) - $(date -u -d "$epoch" +%s) ) * SPEED ))
      printf '  %s  %10d  %s\n' "$(date -u -d "@$now" +'%a %H:%M')" "$(count '"kind":"Synchronisation"' <<<"$syncs")" "$state"
      last="$state"
    fi
    sleep 1
  done
  cat <<MSG

What happened is in the catalog (the processes keep running, the clock keeps racing):
  Recovery points   $API/api/recovery-points?dataSourceId=$source   (tier Disk / Vault / Both; expiredFromDiskAt)
  Jobs              $API/api/jobs?dataSourceId=$source              (Synchronisation, Backup, VaultCopy, Retention)
  Compliance        $API/api/compliance?groupId=$group
  Swagger UI        $API/swagger  (Authorize with "ApiKey <key>", key in $ADMIN_KEY_FILE)
  Logs              $RUN/{api,workers,agent}.log
Stop everything:    bash scripts/demo.sh stop
MSG
  exit 0
fi

say "protecting the folder and taking a backup"
group="$(get /api/protection-groups | json_field id)"
[[ -n $group ]] || group="$(post /api/protection-groups '{"name":"Demo servers"}' | json_field id)"
source="$(post "/api/protection-groups/$group/data-sources" "{\"agentId\":\"$agent\",\"kind\":\"Folder\",\"path\":\"$DEMO/protected\"}" | json_field id)"
rp="$(post "/api/data-sources/$source/backups" | json_field id)"

say "waiting for recovery point $rp on disk and in the vault"
for _ in $(seq 240); do
  point="$(get "/api/recovery-points/$rp")"
  [[ "$point" == *'"tier":"Both"'* ]] && break
  [[ "$point" == *'"status":"Failed"'* ]] && die "the backup failed: $point"
  sleep 0.5
done
[[ "$point" == *'"tier":"Both"'* ]] || die "the recovery point did not reach both tiers; see $RUN/*.log"

say "restoring it from the vault into $DEMO/restored"
rm -rf "$DEMO/restored"
restore="$(post "/api/recovery-points/$rp/restores" "{\"source\":\"Vault\",\"targetPath\":\"$DEMO/restored\"}" | json_field id)"
for _ in $(seq 240); do
  state="$(get "/api/restores/$restore")"
  [[ "$state" == *'"status":"Completed"'* || "$state" == *'"status":"Failed"'* ]] && break
  sleep 0.5
done
[[ "$state" == *'"status":"Completed"'* ]] || die "the restore did not complete: $state"
diff -r "$DEMO/protected" "$DEMO/restored" >/dev/null && echo "restored copy is identical to the protected folder"

cat <<MSG

Recovery point (GET $API/api/recovery-points/$rp):
$point

Where to look:
  Swagger UI        $API/swagger  (Authorize with "ApiKey <key>")
  Admin API key     $ADMIN_KEY_FILE
  Recovery points   $API/api/recovery-points
  Health            $API/health
  Disk store        $REPO/.local/disk-store
  Logs              $RUN/{api,workers,agent}.log
Stop everything:    bash scripts/demo.sh stop
MSG
