#!/usr/bin/env bash
# Data-plane primitives in MB/s per core (BenchmarkDotNet, Release), next to openssl and zstd on the same file.
# Usage: bash bench/primitives.sh            (a few minutes; never part of the test suite)
# MB = 10^6 bytes. Every figure is one thread over the same 64 MiB input (half random, half text-like).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/bench/data/primitives-64MiB.bin"
project="$root/bench/Backup.Benchmarks/Backup.Benchmarks.csproj"
artifacts="$root/bench/BenchmarkDotNet.Artifacts"

need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; apt-get install -y "$2" >/dev/null; }; }
need zstd zstd
need openssl openssl

dotnet build "$project" -c Release -v q -nologo >/dev/null
dll="$root/bench/Backup.Benchmarks/bin/Release/net10.0/Backup.Benchmarks.dll"
[[ -f "$data" ]] || dotnet "$dll" --make-data "$data"
bytes=$(stat -c %s "$data")

# In-process toolchain: BenchmarkDotNet's generated project would inherit this repo's build props.
mkdir -p "$artifacts"
BACKUP_BENCH_DATA="$data" dotnet "$dll" --filter '*' --job short --inProcess \
  --exporters csv --artifacts "$artifacts" "$@" >"$artifacts/run.log" 2>&1 || { tail -50 "$artifacts/run.log"; exit 1; }
csv=$(ls -t "$artifacts"/results/*-report.csv | head -1)

# Best of 5 warm runs (the file is in the page cache after the first read); includes process start.
best_mbps() {
  local best=0 start end mbps
  cat "$data" >/dev/null
  for _ in 1 2 3 4 5; do
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    mbps=$(awk -v b="$bytes" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", b / 1e6 / (e - s) }')
    (( mbps > best )) && best=$mbps
  done
  echo "$best"
}
openssl_sha=$(best_mbps openssl dgst -sha256 "$data")
zstd_l3=$(best_mbps zstd -3 -T1 -q -c "$data")
zstd_l2=$(best_mbps zstd -2 -T1 -q -c "$data")
zstd_l3_1m=$(best_mbps zstd -3 -T1 -q -c --no-check -B1048576 "$data")
# `openssl enc` refuses AEAD ciphers, so GCM (and SHA-256 for comparison) come from `openssl speed` on 1 MiB
# buffers in memory; its figures are in 1000s of bytes per second.
speed_mbps() { openssl speed -seconds 3 -bytes 1048576 -evp "$1" 2>/dev/null | tail -1 | awk '{ sub(/k$/, "", $NF); printf "%.0f", $NF / 1000 }'; }
openssl_gcm=$(speed_mbps aes-256-gcm)
openssl_sha_mem=$(speed_mbps sha256)
ratio=$(zstd -3 -T1 -q -c "$data" | wc -c | awk -v b="$bytes" '{ printf "%.2f", b / $1 }')

python3 - "$csv" "$openssl_sha" "$zstd_l3" "$zstd_l2" "$zstd_l3_1m" "$openssl_gcm" "$openssl_sha_mem" "$ratio" "$(nproc)" \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import csv, sys
path, sha, zl3, zl2, zl3b, gcm, sha_mem, ratio, cores, cpu, load = sys.argv[1:]
rows = {r["Method"]: r for r in csv.DictReader(open(path))}
def ours(name):
    r = rows.get(name)
    return r["MB/s"] if r else "-"
table = [
    ("FastCDC cut points (512K/1M/8M)", ours("'FastCDC cut points'"), "", ""),
    ("FastCDC chunker over a stream", ours("'FastCDC chunker over a stream'"), "", ""),
    ("keyed BLAKE3 (chunk ids)", ours("'keyed BLAKE3 chunk ids'"), "", ""),
    ("SHA-256", ours("'SHA-256 (per chunk)'"), sha, "openssl dgst -sha256 (file, incl. start-up)"),
    ("SHA-256 (in memory)", "", sha_mem, "openssl speed -evp sha256, 1 MiB buffers"),
    ("zstd level 3 compress", ours("'zstd L3 compress (per chunk)'"), zl3, "zstd -3 -T1 (whole file)"),
    ("zstd level 3, 1 MiB blocks", "", zl3b, "zstd -3 -T1 -B1048576"),
    ("zstd level 2 (the agent's default)", ours("'zstd L2 compress (per chunk)'"), zl2, "zstd -2 -T1 (whole file)"),
    ("AES-256-GCM seal", ours("'AES-256-GCM seal (per chunk)'"), gcm, "openssl speed -evp aes-256-gcm, 1 MiB buffers"),
    ("envelope seal (zstd-or-raw + GCM)", ours("'envelope seal (zstd-or-raw + AES-GCM)'"), "", ""),
    ("envelope open (GCM + unzstd + id)", ours("'envelope open (AES-GCM + unzstd + id check)'"), "", ""),
]
print(f"CPU: {cpu} ({cores} cores), load average {load}; one thread; MB = 10^6 bytes;")
print(f"input 64 MiB, half random, half text (zstd -3 ratio {ratio}:1); ours: BenchmarkDotNet short job, mean")
print(f"{'primitive':38} {'this product MB/s':>18} {'reference MB/s':>15}  reference")
for a, o, b, c in table:
    print(f"{a:38} {o:>18} {b:>15}  {c}")
PY
