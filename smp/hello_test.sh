#!/bin/bash
# The demo on both backends and on every CPU; bad flags stop it with exit
# status 2 and a message naming the flag; SIGTERM runs its stop path.
set -euo pipefail
hello=smp/hello

check() {
  local out=$1 want=$2
  grep -q -- "$want" <<<"$out" || { echo "missing '$want' in:"; echo "$out"; exit 1; }
}

for backend in io_uring epoll; do
  out=$("$hello" --reactor-backend "$backend" --smp 1)
  check "$out" "1 shard(s), reactor backend $backend"
  check "$out" "continuation: 21 \* 2 = 42"
  check "$out" "coroutine: 40 + 2 = 42"
  check "$out" "timer: tick 3"
  check "$out" "run_blocking: ran on another thread: yes"
  check "$out" "invoke_on_all: hello from shard 0"
  check "$out" "done"
done

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
  out=$("$hello" --smp 2)
  check "$out" "2 shard(s)"
  check "$out" "hello from shard 1"
  check "$out" "map_reduce: the shard ids add up to 1"
  check "$out" "sharded: 204 greetings counted over 2 shard(s)"
  check "$out" "greeter on shard 1 stopped"
fi

# More shards than CPUs, sharing them (--overprovisioned: not pinned, no
# idle polling): 256 shards on whatever this machine has, each with an
# arena sized from its share of --memory.
out=$("$hello" --smp 256 --overprovisioned --memory 8G) || { echo "--smp 256 --overprovisioned failed: $out"; exit 1; }
check "$out" "256 shard(s)"
check "$out" "hello from shard 255"
check "$out" "map_reduce: the shard ids add up to 32640"
check "$out" "sharded: .* greetings counted over 256 shard(s)"
check "$out" "greeter on shard 255 stopped"

expect_refused() {
  local want=$1
  shift
  set +e
  err=$("$hello" "$@" 2>&1 >/dev/null)
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "$*: exit status $rc, want 2 ($err)"; exit 1; }
  grep -q -- "$want" <<<"$err" || { echo "$*: message '$err' does not name $want"; exit 1; }
}
expect_refused "--no-such-flag" --no-such-flag
expect_refused "--smp" --smp 100000
expect_refused "--smp" --smp 100000 --overprovisioned
expect_refused "--smp" --smp $(( $(nproc) + 1 ))
expect_refused "--smp" --smp -1
expect_refused "--smp" --smp=two
expect_refused "--cpuset" --cpuset 0-
expect_refused "--cpuset" --cpuset 99999
expect_refused "--reactor-backend" --reactor-backend kqueue
expect_refused "--task-quota-ms" --task-quota-ms=abc
expect_refused "--idle-poll-time-us" --idle-poll-time-us -1
expect_refused "--idle-poll-time-us" --idle-poll-time-us 2000000
expect_refused "--logger-log-level" --logger-log-level=reactor
expect_refused "--memory" --memory=lots
expect_refused "--memory" --memory=1M
expect_refused "--memory" --memory=4Q
expect_refused "--memory" --memory 99999999999999999999G
expect_refused "--reserve-memory" --reserve-memory=100T

out=$("$hello" --smp 1 --memory 256M)
if grep -q "^memory:" <<<"$out"; then
  check "$out" "limit 256 MiB"
fi

help=$("$hello" --help)
check "$help" "--smp"
check "$help" "--cpuset"
check "$help" "--wait-for-signal"

# SIGTERM reaches the application's stop path, which exits cleanly.
log=$(mktemp)
"$hello" --smp 1 --wait-for-signal >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  grep -q "waiting for SIGINT or SIGTERM" "$log" && break
  sleep 0.05
done
grep -q "waiting for SIGINT or SIGTERM" "$log" || { kill -9 $pid; echo "never got ready:"; cat "$log"; exit 1; }
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 0 ] || { echo "exit status $rc after SIGTERM"; cat "$log"; exit 1; }
check "$(cat "$log")" "stop path: a signal arrived"
rm -f "$log"
echo "hello_test: ok"
