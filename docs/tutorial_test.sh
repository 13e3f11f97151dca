#!/bin/bash
# The tutorial's programs run and succeed (each checks its own results),
# and the tutorial's code blocks are still the programs' code.
set -uo pipefail
fail() {
  echo "FAIL: $*"
  exit 1
}
python3 docs/check_snippets.py docs/tutorial.md || fail "docs/tutorial.md differs from docs/tutorial/ (above)"
run() {
  local out rc
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || fail "$*: exit status $rc: $out"
  echo "$out"
}
expect() { grep -q -- "$2" <<<"$1" || fail "'$2' not in: $1"; }
expect "$(run docs/step1_futures)" "first future: 42"
expect "$(run docs/step2_coroutines)" "sum 42, ports 443 and 8080"
expect "$(run docs/step3_concurrency)" "two 30, many 550"
shards=2
[ "$(nproc)" -ge 2 ] || shards=1
expect "$(run docs/step4_shards --smp $shards)" "$shards shard(s)"
expect "$(run docs/step5_http --smp $shards)" "Hello, reef!"
echo PASS
