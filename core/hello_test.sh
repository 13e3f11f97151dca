#!/bin/bash
# The demo runs on both backends, prints what it did, and rejects bad flags
# with exit status 2 and a message naming the flag.
set -euo pipefail
hello=core/hello

for backend in io_uring epoll; do
  out=$("$hello" --reactor-backend "$backend")
  grep -q "reactor up on the $backend backend" <<<"$out" || { echo "no backend line: $out"; exit 1; }
  grep -q "continuation: 21 \* 2 = 42" <<<"$out" || { echo "no continuation line: $out"; exit 1; }
  grep -q "coroutine: 40 + 2 = 42" <<<"$out" || { echo "no coroutine line: $out"; exit 1; }
  grep -q "timer: tick 3" <<<"$out" || { echo "no timer line: $out"; exit 1; }
  grep -q "run_blocking: ran on another thread: yes" <<<"$out" || { echo "no run_blocking line: $out"; exit 1; }
done

expect_refused() {
  local want=$1
  shift
  set +e
  err=$("$hello" "$@" 2>&1 >/dev/null)
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "$*: exit status $rc, want 2"; exit 1; }
  grep -q -- "$want" <<<"$err" || { echo "$*: message '$err' does not name $want"; exit 1; }
}
expect_refused "--no-such-flag" --no-such-flag
expect_refused "--reactor-backend" --reactor-backend kqueue
expect_refused "--task-quota-ms" --task-quota-ms=abc
expect_refused "--task-quota-ms" --task-quota-ms=0
expect_refused "--default-log-level" --default-log-level=loud
expect_refused "--logger-log-level" --logger-log-level=reactor
expect_refused "--blocked-reactor-notify-ms" --blocked-reactor-notify-ms

"$hello" --help | grep -q -- "--task-quota-ms" || { echo "--help does not list --task-quota-ms"; exit 1; }
echo "hello_test: ok"
