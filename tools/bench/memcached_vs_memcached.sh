#!/usr/bin/env bash
# Reef's memcached against Debian's, side by side in one run.
#
#   tools/bench/memcached_vs_memcached.sh              # 10 s per run, 5 runs each
#   DURATION=3 RUNS=1 tools/bench/memcached_vs_memcached.sh
#   MEMORY=0 tools/bench/memcached_vs_memcached.sh     # throughput only
#
# Throughput: each server alone on CPU 0 (Debian's `memcached -t 1` under
# taskset; ours with --smp 1 --cpuset 0), the two caches with -m 1024 so
# that nothing is evicted, driven from CPU 1 by memcaslap (Debian's libmemcached-tools:
# one thread, CONCURRENCY connections, 90% get / 10% set, 64-byte keys,
# 1 KiB values), once with single gets and once with multi-gets of 16 keys
# (-d 16, the pipelined run). A third server shows what the kernel allows:
# memcached_minimal_responder.c (one thread, epoll, a fixed value for every
# key, no table), the floor under any server's CPU per operation here. Runs
# rotate between the servers so that a shared machine's drift hits all
# alike. Prints per server and mode the
# median and spread (min-max) over RUNS runs of ops/s and of ops per server
# CPU-second (the server's user+system time from /proc during the run:
# with two cores the client may saturate before the server does, and then
# ops per CPU-second is the measure of the server), and ours over theirs:
# the median (min-max) of each run's ratio to the run of theirs beside it,
# and the same for the minimal responder.
#
# Memory: tools/bench/memcached_memory.py's size-shifting phases (100-byte
# values to the limit, then 1000-byte, then 300-byte) against each server
# with -m 64: items held and the fraction of the limit holding live data
# after each phase, and ours over theirs after the last.
#
# Ports 18111-18113 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

duration=${DURATION:-10}
runs=${RUNS:-5}
concurrency=${CONCURRENCY:-64}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
python=/usr/bin/python3

for tool in memcached memcaslap taskset cc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (tools/install_host_tools.sh installs it)" >&2; exit 1; }
done

tools/bazel build --config=release //apps/memcached >/dev/null 2>&1 ||
  { tools/bazel build --config=release //apps/memcached; exit 1; }
work=$(mktemp -d)
# Servers are started in subshells (`$(run ...)`): their pids go to a
# file, which the cleanup reads.
cleanup() {
  if [ -f "$work/pids" ]; then
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$work/pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cp bazel-bin/apps/memcached/memcached "$work/reef-memcached"
cc -O2 -o "$work/minimal" tools/bench/memcached_minimal_responder.c

cat >"$work/load.cfg" <<EOF
key
64 64 1
value
1024 1024 1
cmd
0 0.1
1 0.9
EOF

# start NAME MEMORY_MB: starts a server on its port; sets `pid` and `port`.
start() {
  local name=$1 memory=$2
  if [ "$name" == memcached ]; then
    port=18111
    taskset -c "$server_cpu" memcached -u nobody -l 127.0.0.1 -p $port -U 0 -t 1 -m "$memory" -c 4096 \
      >"$work/$name.log" 2>&1 &
  elif [ "$name" == minimal ]; then
    port=18113
    taskset -c "$server_cpu" "$work/minimal" $port >"$work/$name.log" 2>&1 &
  else
    port=18112
    "$work/reef-memcached" --smp 1 --cpuset "$server_cpu" -l 127.0.0.1 -p $port -m "$memory" -c 4096 \
      >"$work/$name.log" 2>&1 &
  fi
  pid=$!
  echo "$pid" >>"$work/pids"
  for _ in $(seq 100); do
    "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME MODE: one memcaslap run against a fresh server; prints
# "ops/s ops-per-server-cpu-s".
run() {
  local name=$1 mode=$2 division=1
  [ "$mode" == multiget ] && division=16
  start "$name" 1024
  # Warm up: the keys memcaslap uses get set.
  taskset -c "$client_cpu" memcaslap -s "127.0.0.1:$port" -T 1 -c "$concurrency" -F "$work/load.cfg" \
    -t 1s >/dev/null 2>&1 || true
  local before after ticks_per_s
  ticks_per_s=$(getconf CLK_TCK)
  before=$(cpu_ticks "$pid")
  taskset -c "$client_cpu" memcaslap -s "127.0.0.1:$port" -T 1 -c "$concurrency" -F "$work/load.cfg" \
    -d "$division" -t "${duration}s" >"$work/run.out" 2>&1
  after=$(cpu_ticks "$pid")
  stop
  local ops
  ops=$(awk '/^Run time:/ {for (i = 1; i <= NF; i++) if ($i == "Ops:") print $(i + 1)}' "$work/run.out")
  [ -n "$ops" ] || { cat "$work/run.out" >&2; echo "memcaslap printed no result" >&2; exit 1; }
  "$python" -c "
ops, cpu = $ops, ($after - $before) / $ticks_per_s
print('%.0f %.0f' % (ops / $duration, ops / cpu if cpu > 0 else 0))"
}

declare -A results
for mode in get multiget; do
  for ((r = 1; r <= runs; r++)); do
    for name in memcached reef minimal; do
      line=$(run "$name" "$mode")
      results[$name,$mode]+="$line;"
      echo "run $r $mode $name: ops/s, ops per server CPU-second: $line" >&2
    done
  done
done

"$python" - "$duration" "$runs" "$concurrency" "${results[memcached,get]}" "${results[reef,get]}" \
  "${results[minimal,get]}" "${results[memcached,multiget]}" "${results[reef,multiget]}" \
  "${results[minimal,multiget]}" <<'PY'
import statistics, sys
duration, runs, concurrency = sys.argv[1:4]
def parse(text):
    rows = [tuple(float(x) for x in r.split()) for r in text.split(";") if r.strip()]
    return [r[0] for r in rows], [r[1] for r in rows]
def show(values):
    return "%10.0f (%.0f-%.0f)" % (statistics.median(values), min(values), max(values))
print("memcaslap, 1 client thread, %s connections, 90%% get / 10%% set, 64-byte keys, 1 KiB values, "
      "%s s per run, medians of %s runs (min-max)" % (concurrency, duration, runs))
print("%-9s %-10s %28s %28s" % ("mode", "server", "ops/s", "ops per server CPU-s"))
for i, mode in enumerate(("get", "multiget")):
    theirs, ours, floor = (parse(sys.argv[4 + 3 * i + k]) for k in range(3))
    for name, (ops, per_cpu) in (("memcached", theirs), ("reef", ours), ("minimal", floor)):
        print("%-9s %-10s %28s %28s" % (mode, name, show(ops), show(per_cpu)))
    # Each run against memcached's run of the same round: the median of
    # those ratios (and their spread) is the comparison.
    for name, runs_of in (("reef/memc", ours), ("min/memc", floor)):
        paired = [[o / t for o, t in zip(runs_of[k], theirs[k])] for k in (0, 1)]
        print("%-9s %-10s %28s %28s" % (mode, name, "%.2fx (%.2f-%.2f)" % (
            statistics.median(paired[0]), min(paired[0]), max(paired[0])), "%.2fx (%.2f-%.2f)" % (
            statistics.median(paired[1]), min(paired[1]), max(paired[1]))))
PY

echo
[ "${MEMORY:-1}" == 1 ] || exit 0
echo "Size-shifting memory test (-m 64):"
for name in memcached reef; do
  start "$name" 64
  "$python" tools/bench/memcached_memory.py 127.0.0.1 "$port" "$name" | tee -a "$work/memory.out"
  stop
done
"$python" - "$work/memory.out" <<'PY'
import sys
last = {}
for line in open(sys.argv[1]):
    if "last_phase_items=" in line:
        name, value = line.split()
        last[name] = int(value.split("=")[1])
print("items after the last phase, reef over memcached: %.2fx" % (last["reef"] / last["memcached"]))
PY
