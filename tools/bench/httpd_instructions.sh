#!/usr/bin/env bash
# Instructions httpd executes per pipelined request, under callgrind: the
# stable measure of the server's own cost on a shared, noisy machine
# (req/s here moves by 20-40% between runs; instruction counts by well
# under 1%).
#
#   tools/bench/httpd_instructions.sh            # 64,000 requests counted
#   REQUESTS=16000 tools/bench/httpd_instructions.sh
#
# httpd (--smp 1, io_uring, sleeping when idle) runs under valgrind; the
# client (pipelined_client.py: GET /hello, 16 requests per write, 4
# connections) warms it up with 10,000 requests, the counters are zeroed,
# REQUESTS more are sent, and the counters dumped. Prints the total and
# the total per request. Port 18099 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

requests=${REQUESTS:-64000}
port=18099
for tool in valgrind callgrind_control curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (tools/bazel installs it)" >&2; exit 1; }
done
tools/bazel build --config=release //http:httpd >/dev/null 2>&1 ||
  { tools/bazel build --config=release //http:httpd; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp bazel-bin/http/httpd "$work/httpd"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$work/httpd" --smp 1 --port $port \
  --reactor-backend io_uring --idle-poll-time-us=0 >"$work/valgrind.log" 2>&1 &
pid=$!
for _ in $(seq 120); do
  curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/valgrind.log" >&2; exit 1; }
  sleep 0.5
done
client=tools/bench/pipelined_client.py
python3 $client 127.0.0.1 $port 10000 4 16 >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
answered=$(python3 $client 127.0.0.1 $port "$requests" 4 16)
callgrind_control -d "$pid" >/dev/null 2>&1
# The dump's file appears once callgrind has written it.
for _ in $(seq 60); do
  dump=$(ls "$work"/cg.out.* 2>/dev/null | head -1 || true)
  [[ -n $dump ]] && grep -q '^totals:\|^summary:' "$dump" && break
  sleep 0.5
done
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
echo "httpd: $total instructions for $answered pipelined requests: $((total / answered)) per request"
