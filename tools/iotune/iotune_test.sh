#!/bin/bash
# iotune measures a scratch directory (small file, 2 s) and writes a
# properties file that httpd's --io-properties-file accepts; bad flags and
# directories are refused clearly.
set -euo pipefail
iotune=$PWD/tools/iotune/iotune
httpd=$PWD/http/httpd
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/iotune_test.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

mkdir "$work/eval"
out=$(timeout 60 "$iotune" --smp 1 --evaluation-directory "$work/eval" --properties-file "$work/io.conf" \
  --file-size-mb 16 --duration-s 2 2>&1) || fail "iotune failed: $out"
grep -q "random 4K read:" <<<"$out" || fail "no measurements printed: $out"
for key in mountpoint read_iops read_bandwidth write_iops write_bandwidth; do
  grep -q "^$key " "$work/io.conf" || fail "$key missing from: $(cat "$work/io.conf")"
done
[ -z "$(ls "$work/eval")" ] || fail "the scratch file was left behind: $(ls "$work/eval")"

# httpd takes the file.
"$httpd" --smp 1 --port 0 --io-properties-file "$work/io.conf" >"$work/httpd.log" 2>&1 &
pid=$!
for i in $(seq 100); do
  grep -q "serving on" "$work/httpd.log" && break
  kill -0 "$pid" 2>/dev/null || fail "httpd refused the file: $(cat "$work/httpd.log")"
  sleep 0.1
done
base=$(grep -o "http://[^ ]*/" "$work/httpd.log" | head -1)
[ "$(curl -s --max-time 5 "${base}hello")" = "Hello, world!" ] || fail "httpd does not serve"
kill -TERM "$pid"
wait "$pid" || fail "httpd exited with $?"
pid=

expect_status() {
  local want=$1 says=$2
  shift 2
  set +e
  local err
  err=$("$@" 2>&1)
  local rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "$*: exit status $rc, want $want ($err)"
  grep -q -- "$says" <<<"$err" || fail "$*: '$err' does not say '$says'"
}
expect_status 2 "required" "$iotune" --smp 1 --properties-file "$work/x.conf"
expect_status 2 "--file-size-mb" "$iotune" --smp 1 --evaluation-directory "$work/eval" --properties-file "$work/x.conf" --file-size-mb 1
expect_status 2 "--duration-s" "$iotune" --smp 1 --evaluation-directory "$work/eval" --properties-file "$work/x.conf" --duration-s 0
expect_status 1 "cannot measure" "$iotune" --smp 1 --evaluation-directory "$work/nonexistent" --properties-file "$work/x.conf"
printf 'mountpoint /\nread_iops lots\n' >"$work/bad.conf"
expect_status 2 "io-properties-file" "$httpd" --smp 1 --port 0 --io-properties-file "$work/bad.conf"
echo PASS
