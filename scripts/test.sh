#!/usr/bin/env bash
# The whole test suite, the way CI runs it: installs and starts what is missing (PostgreSQL 15 from apt,
# Azurite from npm), restores and builds, runs every test project against the real services, and ends with
# one line "N passed, N failed". Services this script started are stopped again at the end.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

command -v dotnet >/dev/null || { echo "test.sh: the .NET SDK (dotnet) is required" >&2; exit 1; }

started=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started=1; fi
bash scripts/services.sh up
if [[ $started == 1 ]]; then trap 'bash scripts/services.sh down || true' EXIT; fi
eval "$(bash scripts/services.sh env)"

dotnet restore Backup.sln
dotnet build Backup.sln --no-restore -c Release
# The agent as it is deployed: a native executable, which the tests that start agent processes then run.
BACKUP_AGENT_EXECUTABLE="$(bash scripts/publish-agent.sh)"
export BACKUP_AGENT_EXECUTABLE
echo "native agent: $BACKUP_AGENT_EXECUTABLE"

log="$(mktemp)"
set +e
dotnet test --solution Backup.sln --no-build -c Release 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Microsoft.Testing.Platform prints one summary per test run: add them up.
passed=$(grep -E '^\s+succeeded: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -E '^\s+failed: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
if [[ $status != 0 ]]; then
  # Repeat each failed test with its message last, where a CI log's tail shows it: the names first, then each one's
  # report cut to its head, every line naming an exception (a schema error's cause sits after pages of DDL) and its tail.
  echo "=== failed tests ==="
  grep -E '^failed ' "$log" || true
  awk 'function flush(   i, n) {
         if (count == 0) return
         for (i = 1; i <= count; i++)
           if (i <= 15 || i > count - 15 || lines[i] ~ /Exception|^ *----/) { if (i > n + 1) print "  [...]"; print lines[i]; n = i }
         count = 0
       }
       /^failed /{flush(); show=1; print; next} /^[^ ]/{flush(); show=0} show {lines[++count]=$0} END {flush()}' "$log" | head -400
fi
rm -f "$log"
if [[ $status != 0 && $failed == 0 ]]; then failed=1; fi
if [[ $started == 1 ]]; then
  trap - EXIT
  bash scripts/services.sh down || true
fi
echo "$passed passed, $failed failed"
exit "$status"
