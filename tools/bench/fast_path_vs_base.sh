#!/usr/bin/env bash
# The fast path's cost at HEAD against an earlier commit, in the same run:
# the check that metrics and scheduling groups (issue 15) cost the fast
# path no more than noise.
#
#   tools/bench/fast_path_vs_base.sh            # BASE=cba30c0, before them
#   BASE=<commit> RUNS=7 tools/bench/fast_path_vs_base.sh
#
# Builds, optimized, //core:future_benchmark, //core:reactor_benchmark and
# //http:httpd at BASE (in a git worktree) and at HEAD (this tree, as it is
# committed or not), then makes RUNS paired runs, the order of the pair
# alternating, of:
#   - then_unready_chain/100 and task_schedule_and_run/1000, ns per step;
#   - httpd (--smp 1, io_uring, --idle-poll-time-us=0) serving GET /hello
#     to tools/bench/pipelined_client.py, pipelined (4 connections, 16
#     requests per write) and one at a time (8 connections, depth 1):
#     the server's CPU time per request, from /proc/PID/schedstat.
# Prints each run's HEAD/BASE ratio, then the median ratio with the
# spread. Port 18098 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

base=${BASE:-cba30c0}
runs=${RUNS:-5}
requests=${REQUESTS:-64000}
port=18098
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
work=$(mktemp -d)
worktree=
cleanup() {
  # (httpd_ns runs in a subshell: its server's pid is in a file.)
  [[ -s $work/httpd.pid ]] && kill -KILL "$(cat "$work/httpd.pid")" 2>/dev/null || true
  if [[ -n $worktree ]]; then
    (cd "$worktree" && tools/bazel shutdown >/dev/null 2>&1) || true
    git worktree remove --force "$worktree" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

targets=(//core:future_benchmark //core:reactor_benchmark //http:httpd)
build() {  # build DIR DEST: the targets, optimized, copied to DEST
  local dir=$1 dest=$2
  mkdir -p "$dest"
  (cd "$dir" && tools/bazel build --config=release "${targets[@]}" >"$dest/build.log" 2>&1) ||
    { cat "$dest/build.log" >&2; exit 1; }
  cp "$dir"/bazel-bin/core/future_benchmark "$dir"/bazel-bin/core/reactor_benchmark "$dir"/bazel-bin/http/httpd "$dest/"
}
echo "building BASE ($base) and HEAD ..." >&2
worktree="$work/base_tree"
git worktree add --detach "$worktree" "$base" >/dev/null 2>&1
build "$worktree" "$work/base"
(cd "$worktree" && tools/bazel shutdown >/dev/null 2>&1) || true
build . "$work/head"

# ns per item of one benchmark.
bench_ns() {  # bench_ns BINARY FILTER
  "$1" --benchmark_filter="^$2\$" --benchmark_min_time=0.5 --benchmark_format=json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
b = json.load(sys.stdin)["benchmarks"][0]
print(1e9 / b["items_per_second"])'
}

# Server CPU ns per request of httpd serving pipelined_client.py.
httpd_ns() {  # httpd_ns BINARY CONNECTIONS DEPTH
  "$1" --smp 1 --port $port --reactor-backend io_uring --idle-poll-time-us=0 >"$work/httpd.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$work/httpd.pid"
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/httpd.log" >&2; exit 1; }
    sleep 0.1
  done
  /usr/bin/python3 tools/bench/pipelined_client.py 127.0.0.1 $port 4000 "$2" "$3" >/dev/null  # warm up
  local before after answered
  before=$(awk '{print $1}' "/proc/$pid/task/$pid/schedstat")
  answered=$(/usr/bin/python3 tools/bench/pipelined_client.py 127.0.0.1 $port "$requests" "$2" "$3")
  after=$(awk '{print $1}' "/proc/$pid/task/$pid/schedstat")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  : >"$work/httpd.pid"
  echo $(((after - before) / answered))
}

measure() {  # measure DIR: one line of numbers (exits if one is missing)
  local d=$1 numbers
  numbers=("$(bench_ns "$d/future_benchmark" then_unready_chain/100)"
           "$(bench_ns "$d/reactor_benchmark" task_schedule_and_run/1000)"
           "$(httpd_ns "$d/httpd" 4 16)" "$(httpd_ns "$d/httpd" 8 1)")
  for n in "${numbers[@]}"; do
    [[ -n $n ]] || { echo "a measurement failed in $d" >&2; exit 1; }
  done
  echo "${numbers[*]}"
}

names=("then_unready_chain/100 ns/step" "task_schedule_and_run/1000 ns/task" \
       "httpd pipelined CPU ns/request" "httpd one-at-a-time CPU ns/request")
: >"$work/results"
for run in $(seq "$runs"); do
  if ((run % 2)); then
    b=$(measure "$work/base"); h=$(measure "$work/head")
  else
    h=$(measure "$work/head"); b=$(measure "$work/base")
  fi
  [[ -n $b && -n $h ]] || exit 1
  echo "run $run: base $b | head $h" >&2
  echo "$b | $h" >>"$work/results"
done
/usr/bin/python3 - "$work/results" "$base" "${names[@]}" <<'ENDOFPYTHON'
import statistics, sys
path, base, names = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for line in open(path):
    b, h = line.split("|")
    rows.append(([float(x) for x in b.split()], [float(x) for x in h.split()]))
print("HEAD against %s, %d paired runs (ratio HEAD/BASE: median, min-max):" % (base, len(rows)))
for i, name in enumerate(names):
    ratios = [h[i] / b[i] for b, h in rows]
    print("  %-38s base %9.1f  head %9.1f  ratio %.3f (%.3f-%.3f)" % (
        name, statistics.median(b[i] for b, _ in rows), statistics.median(h[i] for _, h in rows),
        statistics.median(ratios), min(ratios), max(ratios)))
ENDOFPYTHON
