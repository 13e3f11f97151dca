#!/usr/bin/env bash
# fs against fio, side by side in one run: 4 KiB random reads at depth 32 of
# one 1 GiB file (made here with fio, in a scratch directory, removed at the
# end), through Reef's fs on one shard (DMA, the I/O queue with no disk
# model, io_uring) and through fio --ioengine=io_uring --direct=1, both on
# CPU 0, alternating, RUNS times each.
#
#   tools/bench/fs_vs_fio.sh [DIR]            # DIR: where the file goes (default: a new one under /var/tmp)
#   SECONDS_PER_RUN=10 RUNS=3 SIZE_MB=1024 tools/bench/fs_vs_fio.sh
#
# Prints the median IOPS, p50 and p99 of each and the ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${SECONDS_PER_RUN:-10}
runs=${RUNS:-3}
size_mb=${SIZE_MB:-1024}
depth=32
command -v fio >/dev/null || { echo "needs fio (tools/bazel installs it)" >&2; exit 1; }
tools/bazel build --config=release //fs:random_reads >/dev/null 2>&1 ||
  { tools/bazel build --config=release //fs:random_reads; exit 1; }

dir=${1:-}
made_dir=
if [ -z "$dir" ]; then
  dir=$(mktemp -d /var/tmp/reef_fs_vs_fio.XXXXXX)
  made_dir=$dir
fi
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  [ -n "$made_dir" ] && rm -rf "$made_dir"
  true
}
trap cleanup EXIT
cp bazel-bin/fs/random_reads "$work/random_reads"
data=$dir/fs_vs_fio.data

echo "making a ${size_mb} MiB file in $dir" >&2
fio --name=fill --filename="$data" --rw=write --bs=1M --size="${size_mb}M" --direct=1 --ioengine=io_uring \
  --output=/dev/null

# Prints "iops p50_us p99_us".
run_fs() {
  local out
  out=$(timeout $((seconds + 60)) "$work/random_reads" --smp 1 --cpuset 0 --file "$data" --depth "$depth" \
    --duration-s "$seconds" 2>/dev/null)
  awk '/^iops/ { print $2, $4, $6 }' <<<"$out"
}
run_fio() {
  timeout $((seconds + 60)) taskset -c 0 fio --name=randread --filename="$data" --rw=randread --bs=4k \
    --iodepth="$depth" --ioengine=io_uring --direct=1 --runtime="$seconds" --time_based --numjobs=1 \
    --output-format=json --output="$work/fio.json"
  /usr/bin/python3 - "$work/fio.json" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]["read"]
clat = job["clat_ns"]["percentile"]
print("%.0f %.1f %.1f" % (job["iops"], clat["50.000000"] / 1e3, clat["99.000000"] / 1e3))
EOF
}

fs_results=""
fio_results=""
for run in $(seq "$runs"); do
  r=$(run_fs)
  echo "  run $run fs:  $r" >&2
  fs_results+="$r"$'\n'
  r=$(run_fio)
  echo "  run $run fio: $r" >&2
  fio_results+="$r"$'\n'
done

median() {
  local column=$1 results=$2
  sed '/^$/d' <<<"$results" | awk -v c="$column" '{ print $c }' | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}
fs_iops=$(median 1 "$fs_results")
fio_iops=$(median 1 "$fio_results")
printf '\n| reader | IOPS | p50 | p99 | vs fio |\n|---|---|---|---|---|\n'
printf '| Reef fs (1 shard, I/O queue on, io_uring) | %s | %s µs | %s µs | %.2f× |\n' "$fs_iops" \
  "$(median 2 "$fs_results")" "$(median 3 "$fs_results")" "$(echo "$fs_iops / $fio_iops" | bc -l)"
printf '| fio --ioengine=io_uring --direct=1 | %s | %s µs | %s µs | 1.00× |\n' "$fio_iops" \
  "$(median 2 "$fio_results")" "$(median 3 "$fio_results")"
ratios=$(paste -d' ' <(sed '/^$/d' <<<"$fs_results" | awk '{ print $1 }') <(sed '/^$/d' <<<"$fio_results" | awk '{ print $1 }') |
  awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | sort -g)
printf 'paired ratios (fs/fio, run by run): median %s, min %s, max %s\n' \
  "$(awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }' <<<"$ratios")" "$(head -1 <<<"$ratios")" "$(tail -1 <<<"$ratios")"
echo "(4 KiB random reads, depth $depth, ${seconds} s per run, median of $runs, ${size_mb} MiB file in $dir)"
