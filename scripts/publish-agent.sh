#!/usr/bin/env bash
# Publishes the protection agent as a native executable (NativeAOT: no JIT, no IL metadata at run time; see docs/operations.md
# "The agent is a native executable") and prints its path. Needs a C toolchain to link (gcc or clang), installed from apt when missing. Quiet
# on success apart from the path, so a caller can write AGENT="$(bash scripts/publish-agent.sh)".
#
# Environment: AGENT_CONFIGURATION (Release).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
configuration="${AGENT_CONFIGURATION:-Release}"
case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64) rid=linux-arm64 ;;
  *) echo "publish-agent.sh: no native build for $(uname -m)" >&2; exit 1 ;;
esac
if ! command -v gcc >/dev/null && ! command -v clang >/dev/null; then
  echo "publish-agent.sh: installing gcc (the native agent's linker)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null
fi
# Native code for the most this CPU offers, as the JIT would use: x86-64-v4 (AVX-512) where present (the re-read of 917 MiB
# took 1.10-1.31 s instead of 1.57-1.71 s with v3 and 1.27-1.44 s under the JIT: BLAKE3 and the chunker use the wider
# vectors), else the project's x86-64-v3 (AVX2, BMI2), else the x86-64 baseline. An executable built here runs on CPUs
# at least as capable; the runtime refuses to start, saying so, on a lesser one.
has() { local f; for f in "$@"; do grep -qw "$f" /proc/cpuinfo || return 1; done; }
isa=()
if [[ $rid == linux-x64 ]]; then
  if has avx512f avx512bw avx512cd avx512dq avx512vl; then isa=(-p:IlcInstructionSet=x86-64-v4)
  elif ! has avx2 bmi2 fma; then isa=(-p:IlcInstructionSet=x86-64-v2)
  fi
fi
out="$REPO/src/Backup.Agent/bin/$configuration/native"
log="$(mktemp)"
if ! dotnet publish src/Backup.Agent -c "$configuration" -r "$rid" "${isa[@]}" -o "$out" -nologo -v quiet >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "publish-agent.sh: the native agent did not build" >&2
  exit 1
fi
rm -f "$log"
echo "$out/Backup.Agent"
