#!/usr/bin/env bash
# Packages the shard-scaling checks for a machine with more cores than this
# one and none of Reef's packages: optimized binaries, every shared library
# they load (glibc and its loader included), and run.sh, in bazel-device/
# (ignored by git). On the other machine: `bash bazel-device/run.sh`.
#
# run.sh starts //smp:hello on 16 shards, runs //smp:smp_test, and the
# submit_to ring (2, 4, 8, 16 shards) and allocator benchmarks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tools/bazel build --config=release //smp:smp_benchmark //smp:hello //smp:smp_test \
  //memory:allocator_benchmark
out=bazel-device
rm -rf "$out"
mkdir -p "$out/lib"
for b in smp/smp_benchmark smp/hello smp/smp_test memory/allocator_benchmark; do
  cp "bazel-bin/$b" "$out/"
  ldd "bazel-bin/$b" | awk '/=> \//{print $3}' | xargs -I{} cp -L {} "$out/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$out/lib/"
cat >"$out/run.sh" <<'RUN'
#!/bin/bash
cd "$(dirname "$0")"
L=$PWD/lib
run() { "$L/ld-linux-x86-64.so.2" --library-path "$L" "$@"; }
echo "cpus: $(nproc)"; grep MemTotal /proc/meminfo; ls /sys/devices/system/node | grep node
run ./hello --smp "$(nproc)" 2>&1 | tail -14
run ./smp_test 2>&1 | tail -3
run ./smp_benchmark --benchmark_filter='ring|round_trip_poll|throughput_poll' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1 | grep -E "median|ERROR"
run ./allocator_benchmark --benchmark_filter='pair|cross' --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true 2>&1 | grep -E "median"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
