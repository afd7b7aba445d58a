#!/usr/bin/env bash
# Side-by-side benchmark: this product vs restic and borg (Debian packages) on the shared dataset, in one run.
#
#   bash bench/run.sh                 BENCH_SCALE=0.25 (~400 MB), one run
#   BENCH_SCALE=1 RUNS=2 bash bench/run.sh
#   BENCH_TOOLS="product restic" bash bench/run.sh    leave borg out (ratios are against restic)
#
# Steps, each warm (inputs read once and dirty pages written back, untimed, right before): initial backup, no-change backup, backup after the
# ~1 % mutation (../shared/bench/mutate-dataset.sh), full restore (twice per run: in the tool order, then reversed). Tool order rotates between runs. Prints one
# table: seconds, MB/s (dataset bytes / seconds), repository bytes and peak RSS per tool and step, and ratios
# against restic (speed: restic seconds / tool seconds; size and RSS: tool / restic). Never part of the test suite.
#
# This product runs as a user runs it: the real API (with its projection daemon), the real agent process (a long-running
# service, as deployed, with its default settings: the native executable of scripts/publish-agent.sh) and PostgreSQL. Its
# seconds are what a user waits for: request to visible, from the API request ("back up now", "restore") until the API
# lists the recovery point as created or the restore as completed (job pick-up, the job, the commit and the view). The
# agent's job time from its log (fetching the known chunk ids, HTTP uploads, the server's checks and the commit) is its
# own column. Ratios against restic use request to visible. Its peak RSS is the agent's for that step (high-water mark
# reset before the step). Peers are timed and measured as whole processes (GNU time).
# Before the measured steps the product takes one small untimed backup of unrelated data, so the measured steps find
# its processes warm (code compiled) as a long-running server and agent are; that first job's time is printed.
# Work files go to bench/work/ (ignored).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
SHARED="$(cd "$REPO/../shared/bench" && pwd -P)"
SCALE="${BENCH_SCALE:-0.25}"
RUNS="${RUNS:-1}"
TOOLS="${BENCH_TOOLS:-product restic borg}" # a subset, e.g. BENCH_TOOLS="product restic", for a quicker look
WORK="$REPO/bench/work"
PORT="${BENCH_API_PORT:-5190}"
API="http://127.0.0.1:$PORT"
PASS="bench-passphrase-0123456789"
export RESTIC_PASSWORD="$PASS" BORG_PASSPHRASE="$PASS" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || { say "installing $2"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need restic restic
need borg borgbackup
need curl curl
need python3 python3
[[ -x /usr/bin/time ]] || need /usr/bin/time time

say "starting PostgreSQL (and Azurite, which the API checks at start)"
started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
bash scripts/services.sh up >&2
eval "$(bash scripts/services.sh env)"
say "building (Release)"
dotnet build src/Backup.Api -c Release -v quiet -nologo >&2
say "publishing the agent as a native executable (as deployed)"
AGENT_EXE="$(bash scripts/publish-agent.sh)"

API_PID="" AGENT_PID="" WARMUP_BYTES=0
cleanup() {
  [[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null || true
  [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ $started_services == 1 ]]; then bash scripts/services.sh down >&2 || true; fi
}
trap cleanup EXIT

# Read the inputs once (page cache), and write back what earlier steps left dirty (a restore's 1.7 GB, a mutation), so a
# step is not charged for the previous tool's writeback.
warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true; sync; }
now() { date +%s.%N; }
json_field() { { grep -o "\"$1\":\"\?[^\",}]*" || true; } | head -1 | sed 's/.*:"\{0,1\}//'; }
post() { curl -sS -f -X POST "$API$1" -H "@$AUTH" -H 'content-type: application/json' -d "${2:-{\}}"; }
get() { curl -s -H "@$AUTH" "$API$1"; }
bytes_of() { du -sb "$1" | cut -f1; }

RESULTS="$WORK/results.tsv"

record() { # tool step seconds repo_bytes rss_kb [wall_seconds]
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-$3}" >>"$RESULTS"
}

# The agent's own duration of its last job ("... done in 1.23 s"), like a peer's process time.
agent_seconds() { grep -o 'done in [0-9.]* s' "$1" | tail -1 | awk '{print $3}'; }

# ---- this product -------------------------------------------------------------------------------------------
product_start() { # run
  local run=$1
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '+/=\n' >"$WORK/admin.key"; printf 'Authorization: ApiKey %s\n' "$(cat "$WORK/admin.key")" >"$WORK/admin.header")
  AUTH="$WORK/admin.header"
  export Backup__BootstrapAdminKey="$(cat "$WORK/admin.key")"
  export Backup__Schema="bench_$$_$run" Backup__DiskStore="$WORK/product-$run/disk-store" Backup__VaultContainer="bench-$$-$run" Backup__RunDaemon=true
  mkdir -p "$WORK/product-$run"
  (cd src/Backup.Api/bin/Release/net10.0 && exec dotnet Backup.Api.dll --urls "$API" >"$WORK/product-$run/api.log" 2>&1) &
  API_PID=$!
  for _ in $(seq 120); do [[ "$(curl -s "$API/health" 2>/dev/null)" == Healthy ]] && break; sleep 0.5; done
  [[ "$(curl -s "$API/health")" == Healthy ]] || die "the API did not start; see $WORK/product-$run/api.log"
  printf '{"passphrase":"%s"}' "$PASS" | curl -sS -f -X PUT "$API/api/repository/key" -H "@$AUTH" -H 'content-type: application/json' --data-binary @- >/dev/null
  printf '%s\n' "$PASS" >"$WORK/product-$run/passphrase"
  PRODUCT_TOKEN="$(post /api/enrolment-tokens '{"validForMinutes":600}' | json_field token)"
  PRODUCT_GROUP="$(post /api/protection-groups "{\"name\":\"bench $run\"}" | json_field id)"
  PRODUCT_SOURCE=""
}

agent_start() { # run: the agent runs as the service it is, for the whole run
  local run=$1
  (exec "$AGENT_EXE" "--Agent:Server=$API/" "--Agent:EnrolmentToken=$PRODUCT_TOKEN" \
    "--Agent:StateDirectory=$WORK/product-$run/agent-state" "--Agent:MachineName=bench" \
    "--Agent:PassphraseFile=$WORK/product-$run/passphrase" >>"$WORK/product-$run/agent.log" 2>&1) &
  AGENT_PID=$!
  for _ in $(seq 120); do PRODUCT_AGENT="$(get /api/agents | json_field id)"; [[ -n $PRODUCT_AGENT ]] && break; sleep 0.25; done
  [[ -n $PRODUCT_AGENT ]] || die "the agent did not enrol; see $WORK/product-$run/agent.log"
}

# Peak RSS per step of the long-running agent: reset the high-water mark (clear_refs 5) before the step, read VmHWM after.
rss_reset() { echo 5 >"/proc/$AGENT_PID/clear_refs"; }
rss_peak() { awk '/^VmHWM/ {print $2}' "/proc/$AGENT_PID/status"; }

agent_stop() {
  kill -TERM "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
}

product_backup() { # run step data
  local run=$1 step=$2 data=$3
  if [[ -z $PRODUCT_SOURCE ]]; then
    PRODUCT_SOURCE="$(post "/api/protection-groups/$PRODUCT_GROUP/data-sources" "{\"agentId\":\"$PRODUCT_AGENT\",\"kind\":\"Folder\",\"path\":\"$data\"}" | json_field id)"
  fi
  warm "$data"
  rss_reset
  local start end rp point
  start=$(now)
  rp="$(post "/api/data-sources/$PRODUCT_SOURCE/backups" | json_field id)"
  wait_created "$rp"
  end=$(now)
  PRODUCT_RP=$rp
  record product "$step" "$(agent_seconds "$WORK/product-$run/agent.log")" "$(product_repo_bytes "$run")" "$(rss_peak)" \
    "$(awk "BEGIN{print $end - $start}")"
}

# Polls GET $API$1 every 50 ms until the body holds $2 (success) or $3 (failure: dies with $4 and the body). One python
# process with one connection does the polling: a curl per poll (20 a second) took ~12 % of a core, measured with perf
# during a restore, from the two cores the product being measured runs on (the peers are not polled at all).
poll_until() { # path done-text failed-text what
  local body
  body="$(python3 - "$API$1" "$(sed 's/^Authorization: //' "$AUTH")" "$2" "$3" <<'PY'
import http.client, sys, time, urllib.parse
url, auth, done, failed = sys.argv[1:5]
u = urllib.parse.urlsplit(url)
connection = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
while True:
    connection.request("GET", u.path, headers={"Authorization": auth})
    body = connection.getresponse().read().decode()
    if done in body or failed in body:
        print(body)
        sys.exit(0 if done in body else 1)
    time.sleep(0.05)
PY
)" || die "$4: $body"
}

wait_created() { # recovery point id
  poll_until "/api/recovery-points/$1" '"status":"Created"' '"status":"Failed"' "backup failed"
}

# The disk store's bytes less the warm-up's (its packs are not part of the dataset's repository).
product_repo_bytes() { echo $(( $(bytes_of "$WORK/product-$1/disk-store") - WARMUP_BYTES )); }

# One small untimed backup of unrelated data (3 MiB random, 4 MB text) right after the processes start, so the measured
# steps meet them warm (their code compiled), as a long-running server and agent are in use. Its job time is printed
# as the "cold" first job; its packs are left out of the repository bytes.
product_warmup() { # run
  local run=$1 dir="$WORK/product-$1/warmup" source rp
  mkdir -p "$dir"
  python3 - "$dir" <<'PY'
import os, random, sys
d = sys.argv[1]
r = random.Random(2026)
with open(os.path.join(d, "random.bin"), "wb") as f:
    f.write(os.urandom(3 << 20))
words = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(5000)]
with open(os.path.join(d, "text.txt"), "w") as f:
    for _ in range(60000):
        f.write(" ".join(r.choice(words) for _ in range(12)) + "\n")
PY
  source="$(post "/api/protection-groups/$PRODUCT_GROUP/data-sources" "{\"agentId\":\"$PRODUCT_AGENT\",\"kind\":\"Folder\",\"path\":\"$dir\"}" | json_field id)"
  rp="$(post "/api/data-sources/$source/backups" | json_field id)"
  wait_created "$rp"
  WARMUP_BYTES=$(bytes_of "$WORK/product-$run/disk-store")
  say "run $run: warm-up backup (7 MB, untimed) took $(agent_seconds "$WORK/product-$run/agent.log") s in the fresh agent"
}

product_restore() { # run data
  local run=$1 data=$2 target="$WORK/product-$run/restored"
  rm -rf "$target"
  rss_reset
  local start end id
  start=$(now)
  id="$(post "/api/recovery-points/$PRODUCT_RP/restores" "{\"source\":\"Disk\",\"targetPath\":\"$target\"}" | json_field id)"
  poll_until "/api/restores/$id" '"status":"Completed"' '"status":"Failed"' "restore failed"
  end=$(now)
  record product restore "$(agent_seconds "$WORK/product-$run/agent.log")" "$(product_repo_bytes "$run")" "$(rss_peak)" \
    "$(awk "BEGIN{print $end - $start}")"
  python3 "$SHARED/dataset.py" manifest "$data" -o "$WORK/product-$run/expected.manifest" >/dev/null
  python3 "$SHARED/dataset.py" manifest "$target" -o "$WORK/product-$run/restored.manifest" >/dev/null
  python3 "$SHARED/dataset.py" compare "$WORK/product-$run/expected.manifest" "$WORK/product-$run/restored.manifest" >"$WORK/product-$run/compare.txt" 2>&1 \
    || die "the product's restore differs from the dataset: $(tail -5 "$WORK/product-$run/compare.txt")"
}

product_stop() {
  kill "$API_PID" 2>/dev/null || true
  wait "$API_PID" 2>/dev/null || true
  API_PID=""
}

# ---- peers --------------------------------------------------------------------------------------------------
timed() { # out-file cmd... -> runs with GNU time, prints "seconds rss_kb"
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>>"${out}.log" || { cat "${out}.log" >&2; die "$* failed"; }
  cat "$out"
}

peer_backup() { # tool run step data
  local tool=$1 run=$2 step=$3 data=$4 repo="$WORK/$1-$2/repo" r
  warm "$data"
  case $tool in
    restic) r=$(timed "$WORK/restic-$run/$step.time" restic -r "$repo" backup --quiet "$data") ;;
    borg) r=$(timed "$WORK/borg-$run/$step.time" borg create "$repo::$step" "$data") ;;
  esac
  record "$tool" "$step" "${r% *}" "$(bytes_of "$repo")" "${r#* }"
}

peer_restore() { # tool run data
  local tool=$1 run=$2 data=$3 repo="$WORK/$1-$2/repo" target="$WORK/$1-$2/restored" r
  rm -rf "$target"; mkdir -p "$target"
  case $tool in
    restic) r=$(timed "$WORK/restic-$run/restore.time" restic -r "$repo" restore latest --target "$target") ;;
    borg) r=$(cd "$target" && timed "$WORK/borg-$run/restore.time" borg extract "$repo::after-mutation") ;;
  esac
  record "$tool" restore "${r% *}" "$(bytes_of "$repo")" "${r#* }"
}

# ---- the run ------------------------------------------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
  read -ra tools <<<"$TOOLS"
  shift_by=$(( (run - 1) % ${#tools[@]} ))
  tools=("${tools[@]:$shift_by}" "${tools[@]:0:$shift_by}")
  say "run $run: order ${tools[*]}; building the dataset (BENCH_SCALE=$SCALE)"
  data="$WORK/data-$run"
  BENCH_SCALE="$SCALE" bash "$SHARED/make-dataset.sh" "$data" 1 >"$WORK/dataset-$run.json"
  printf 'dataset\t%s\n' "$(bytes_of "$data")" >>"$WORK/dataset-bytes"
  mkdir -p "$WORK/restic-$run" "$WORK/borg-$run"
  restic -r "$WORK/restic-$run/repo" init --quiet >/dev/null
  borg init -e repokey "$WORK/borg-$run/repo" >/dev/null 2>&1
  product_start "$run"
  agent_start "$run"
  product_warmup "$run"
  for step in initial no-change after-mutation; do
    if [[ $step == after-mutation ]]; then bash "$SHARED/mutate-dataset.sh" "$data" 2 >"$WORK/mutation-$run.json"; fi
    for tool in "${tools[@]}"; do
      say "run $run: $tool $step"
      if [[ $tool == product ]]; then product_backup "$run" "$step" "$data"; else peer_backup "$tool" "$run" "$step" "$data"; fi
    done
  done
  # Two restores per tool, the second pass in the reverse order: a tool restoring first in its pass was measured slower
  # than restoring last (product 7.30 and 7.44 s first, 5.18 and 5.50 s last; restic 8.54 first, 7.77-8.24 otherwise), so
  # each tool restores once early and once late, and the table takes the median of all its restores.
  restore_order=("${tools[@]}")
  for pass in 1 2; do
    for tool in "${restore_order[@]}"; do
      say "run $run: $tool restore (pass $pass)"
      warm "$data"
      if [[ $tool == product ]]; then product_restore "$run" "$data"; else peer_restore "$tool" "$run" "$data"; fi
    done
    reversed=()
    for ((i = ${#restore_order[@]} - 1; i >= 0; i--)); do reversed+=("${restore_order[i]}"); done
    restore_order=("${reversed[@]}")
  done
  agent_stop
  product_stop
done

dataset_bytes=$(awk '{print $2}' "$WORK/dataset-bytes" | head -1)
python3 - "$RESULTS" "$dataset_bytes" "$SCALE" "$RUNS" <<'PY'
import sys, collections, statistics
path, data_bytes, scale, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = collections.defaultdict(list)
for line in open(path):
    tool, step, secs, repo, rss, wall = line.rstrip("\n").split("\t")
    rows[(tool, step)].append((float(secs), int(repo), int(rss), float(wall)))
steps = ["initial", "no-change", "after-mutation", "restore"]
tools = ["product", "restic", "borg"]
med = lambda xs: statistics.median(xs)
def get(tool, step):
    r = rows.get((tool, step))
    return None if not r else (med([x[0] for x in r]), med([x[1] for x in r]), max(x[2] for x in r), med([x[3] for x in r]))
print(f"\nDataset {data_bytes/1e6:.0f} MB (BENCH_SCALE={scale}), {runs} run(s), medians; MB/s = dataset bytes / seconds.")
print("product seconds = request to visible: from the API request until the API lists the point created / the restore completed;")
print("'job s' = the agent's own job time. Peers: process time. Speed ratios: restic seconds / tool seconds (request to visible).")
print(f"{'step':<15}{'tool':<9}{'seconds':>9}{'job s':>8}{'MB/s':>9}{'repo MB':>10}{'peak RSS MB':>13}{'speed vs restic':>17}{'size vs restic':>16}{'RSS vs restic':>15}")
for step in steps:
    base = get("restic", step)
    for tool in tools:
        g = get(tool, step)
        if g is None: continue
        job, repo, rss, wall = g
        secs = wall if tool == "product" else job
        base_secs = base[0] if base else None
        jobcol = f"{job:.2f}" if tool == "product" else "-"
        speed = f"{base_secs/secs:.2f}x" if base_secs and secs > 0 else "-"
        size = f"{repo/base[1]:.2f}x" if base and base[1] else "-"
        mem = f"{rss/base[2]:.2f}x" if base and base[2] else "-"
        print(f"{step:<15}{tool:<9}{secs:>9.2f}{jobcol:>8}{data_bytes/1e6/secs:>9.1f}{repo/1e6:>10.1f}{rss/1024:>13.1f}{speed:>17}{size:>16}{mem:>15}")
PY
