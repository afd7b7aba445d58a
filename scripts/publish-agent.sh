#!/usr/bin/env bash
# Publishes the protection agent as a native executable (NativeAOT: no JIT, no IL metadata at run time; see README
# "The agent") and prints its path. Needs a C toolchain to link (gcc or clang), installed from apt when missing. Quiet
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
# The project compiles x64 code for x86-64-v3 (AVX2, BMI2); on an older CPU, build for the baseline instead.
isa=()
if [[ $rid == linux-x64 ]] && ! { grep -qw avx2 /proc/cpuinfo && grep -qw bmi2 /proc/cpuinfo; }; then
  isa=(-p:IlcInstructionSet=x86-64-v2)
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
