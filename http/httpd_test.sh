#!/bin/bash
# End to end: the real httpd binary on 127.0.0.1, on both reactor backends,
# driven by clients nobody here wrote: curl (GET, POST, chunked upload,
# keep-alive reuse, a 1 GiB streamed echo in bounded memory, 100 MB echoed
# byte for byte), Python's http.client, a short wrk run, raw malformed and
# smuggling requests over a socket, clients that half-close, reset, or
# connect and say nothing, and a bounded slowhttptest (slowloris) during
# which a normal request is still answered. Every client has a timeout;
# the server is stopped with SIGTERM and must log "stopped".
#
# With the argument "native": the same checks against httpd on the native
# stack, on a TAP interface whose kernel side is in a network namespace
# the test makes (and removes, pass or fail), the clients running in the
# namespace: Linux's TCP is the peer. Then the 100 MB echo again with
# nftables in the namespace dropping 5% of the packets each way.
#
# With "dpdk_tap" or "dpdk_af_packet": the same checks against httpd on
# the native stack over DPDK (--dpdk-pmd, no hugepages): a net_tap port
# whose kernel interface is in the namespace, or a net_af_packet port on
# one end of a veth pair whose other end is in the namespace (its
# checksum and segmentation offloads off: af_packet hands frames over as
# the kernel left them). On 2 shards the port has 2 queue pairs, and the
# log's per-shard counts must show both shards served. The device is
# polled, whatever the reactor backend: one backend runs.
#
# Every check that fails says which one and why (no `set -e`: a command
# that fails is caught by the check around it, never by the shell exiting
# silently). Timeouts are generous: the test runs beside the whole suite
# on two cores, and under the sanitizers.
set -uo pipefail
httpd=$PWD/http/httpd
python=/usr/bin/python3
mode=${1:-posix}
# The modes whose clients run in a namespace, against the native stack.
native=
[[ "$mode" == native || "$mode" == dpdk_* ]] && native=1
work=$(mktemp -d)
pid=
ns=
veth=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
  [ -n "$veth" ] && ip link del "$veth" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# How the clients run: here, or in the namespace (native mode).
run=()

# The size of the streamed echo (ECHO_BYTES overrides; 1 GiB by default,
# 512 MiB on the native stack, whose clients share the two cores with it
# through a TAP interface).
if [ -n "$native" ]; then
  echo_bytes=${ECHO_BYTES:-536870912}
else
  echo_bytes=${ECHO_BYTES:-1073741824}
fi
# Under a sanitizer, the native stack's big transfers shrink (the
# sanitized stack is several times slower; the unsanitized runs carry
# the full sizes).
if [ -n "$native" ] && [ -n "${REEF_SANITIZED:-}" ]; then
  echo_bytes=${ECHO_BYTES:-134217728}
  EXACT_BYTES=${EXACT_BYTES:-20000000}
fi

fail() {
  echo "FAIL: $*"
  if [ -f "$work/httpd.log" ]; then
    echo "--- httpd log (last 50 lines):"
    tail -50 "$work/httpd.log"
  fi
  exit 1
}
expect_eq() { [ "$1" == "$2" ] || fail "$3: got '$1', want '$2'"; }
expect_has() { grep -q -- "$2" <<<"$1" || fail "$3: '$2' not in: $1"; }
# Runs a command; if it fails, fails the test naming the check, the command,
# its exit status and what it printed.
must() {
  local what=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || fail "$what: '$*' exited with status $rc: ${out:0:2000}"
}

if [ -n "$native" ]; then
  ns=reef-httpd-$$
  tap=rhttp$$
  must "make the namespace" ip netns add "$ns"
  must "loopback up" ip -n "$ns" link set lo up
  run=(ip netns exec "$ns")
fi
if [ "$mode" == native ]; then
  must "make the TAP" ip -n "$ns" tuntap add dev "$tap" mode tap multi_queue
  must "address the TAP" ip -n "$ns" addr add 10.77.0.1/24 dev "$tap"
  must "TAP up" ip -n "$ns" link set "$tap" up
fi
if [ "$mode" == dpdk_af_packet ]; then
  veth=rhv$$
  ethtool=$(command -v ethtool || echo /usr/sbin/ethtool)
  must "make the veth pair" ip link add "$veth" type veth peer name "${veth}n" netns "$ns"
  must "veth up" ip link set "$veth" up
  must "address the namespace's end" ip -n "$ns" addr add 10.77.0.1/24 dev "${veth}n"
  must "the namespace's end up" ip -n "$ns" link set "${veth}n" up
  must "the namespace's end sends finished frames" ip netns exec "$ns" "$ethtool" -K "${veth}n" tx off tso off gso off
fi
# DPDK's arguments: no hugepages, memory for the pools of two queues.
dpdk_args="--no-huge -m 512 --no-pci --no-telemetry --log-level=lib.eal:warning"

# Starts httpd with the given flags on a port the stack picks; sets $pid
# and $base.
start_httpd() {
  # Emptied here, before httpd starts: the wait below must not find the
  # previous run's start line in it (under load the new process may open
  # and truncate the file only after the first look).
  : >"$work/httpd.log" || fail "cannot write $work/httpd.log"
  # The shard count asked for: a queue pair per shard.
  local queues=1 previous=
  for a in "$@"; do
    [ "$previous" == --smp ] && queues=$a
    previous=$a
  done
  if [ "$mode" == native ]; then
    # (`ip netns exec` becomes httpd: $! is httpd itself.)
    ip netns exec "$ns" "$httpd" --network-stack native --tap-device "$tap" --host-ipv4-addr 10.77.0.2/24 \
      --address 0.0.0.0 --port 0 "$@" >>"$work/httpd.log" 2>&1 &
  elif [ "$mode" == dpdk_tap ]; then
    # (DPDK makes the interface in the namespace httpd runs in.)
    ip netns exec "$ns" "$httpd" --network-stack native --dpdk-pmd \
      --dpdk-args "$dpdk_args --vdev=net_tap0,iface=$tap" --host-ipv4-addr 10.77.0.2/24 \
      --address 0.0.0.0 --port 0 "$@" >>"$work/httpd.log" 2>&1 &
  elif [ "$mode" == dpdk_af_packet ]; then
    "$httpd" --network-stack native --dpdk-pmd \
      --dpdk-args "$dpdk_args --vdev=net_af_packet0,iface=$veth,qpairs=$queues" --host-ipv4-addr 10.77.0.2/24 \
      --address 0.0.0.0 --port 0 "$@" >>"$work/httpd.log" 2>&1 &
  else
    "$httpd" --port 0 "$@" >>"$work/httpd.log" 2>&1 &
  fi
  pid=$!
  local i
  for i in $(seq 300); do
    if grep -q "serving on http://" "$work/httpd.log"; then
      base=$(grep -o "http://[^ ]*/" "$work/httpd.log" | head -1)
      base=${base%/}
      if [ "$mode" == dpdk_tap ]; then
        # The interface is new with each httpd: the kernel's side
        # addressed and up.
        must "address the DPDK TAP" ip -n "$ns" addr add 10.77.0.1/24 dev "$tap"
        must "DPDK TAP up" ip -n "$ns" link set "$tap" up
      fi
      if [[ "$mode" == dpdk_* ]]; then
        local out diag
        if ! out=$("${run[@]}" ping -c 2 -i 0.2 -W 5 10.77.0.2 2>&1); then
          # What the kernel's side saw, and the port's counts (httpd logs
          # them as it stops).
          diag=$(ip -n "$ns" neigh 2>&1; ip -n "$ns" -s link 2>&1)
          kill -TERM "$pid"
          sleep 3
          fail "ping the stack on DPDK: $out; $diag"
        fi
      fi
      return
    fi
    kill -0 "$pid" 2>/dev/null || fail "httpd $* exited at start"
    sleep 0.1
  done
  fail "httpd $* did not start serving in 30 s"
}

stop_httpd() {
  kill -TERM "$pid" || fail "httpd (pid $pid) was gone before SIGTERM"
  local i
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "httpd did not stop within 30 s of SIGTERM"
  wait "$pid"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "httpd exited with status $rc"
  pid=
  grep -q "httpd - stopped" "$work/httpd.log" || fail "no 'stopped' line in the log"
}

curl_() { "${run[@]}" curl --silent --show-error --max-time 30 "$@"; }

check_curl() {
  echo "  curl"
  expect_eq "$(curl_ "$base/hello")" "Hello, world!" "GET /hello"
  expect_has "$(curl_ "$base/")" "Reef httpd" "GET /"
  local json
  json=$(curl_ -i "$base/json")
  expect_has "$json" "Content-Type: application/json" "GET /json"
  expect_has "$json" '"message":"Hello, world!"' "GET /json"
  expect_has "$json" "Server: Reef" "GET /json"
  expect_has "$json" "Date: " "GET /json"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' "$base/no/such/page")" 404 "GET of an unknown path"
  local head
  head=$(curl_ -i -X DELETE "$base/hello")
  expect_has "$head" "HTTP/1.1 405" "DELETE /hello"
  expect_has "$head" "Allow: GET, HEAD" "DELETE /hello"
  expect_eq "$(curl_ -I -o /dev/null -w '%{http_code}' "$base/hello")" 200 "HEAD /hello"

  # POST: a small body, then a 1 MiB one sent chunked.
  expect_eq "$(curl_ --data-binary 'ping pong' "$base/echo")" "ping pong" "POST /echo"
  head -c 1048576 /dev/urandom >"$work/upload" || fail "could not make a 1 MiB upload"
  must "chunked POST /echo" curl_ -H 'Transfer-Encoding: chunked' --data-binary @"$work/upload" -o "$work/echoed" \
    "$base/echo"
  cmp -s "$work/upload" "$work/echoed" || fail "chunked POST /echo did not come back intact"

  # Keep-alive: curl reuses the connection for a second URL.
  local verbose
  verbose=$(curl_ -v "$base/hello" "$base/json" 2>&1 >/dev/null)
  expect_has "$verbose" "Re-using existing connection" "keep-alive"
}

check_python() {
  echo "  python"
  if ! timeout 60 "${run[@]}" "$python" - "$base" <<'EOF'
import http.client, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
for _ in range(3):                     # one connection, several requests
    conn.request("GET", "/hello")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"Hello, world!\n", r.status
conn.request("POST", "/echo", body=b"x" * 100000, headers={"Content-Type": "text/plain"})
r = conn.getresponse()
assert r.status == 200 and r.getheader("Content-Type") == "text/plain"
assert r.read() == b"x" * 100000
conn.request("GET", "/missing")
r = conn.getresponse()
assert r.status == 404, r.status
r.read()
conn.request("GET", "/json")             # still usable after a 404
r = conn.getresponse()
assert r.status == 200 and b"Reef" in r.read()
conn.close()
# HTTP/1.0 without keep-alive: the server closes after the reply.
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
conn.request("GET", "/hello")
r = conn.getresponse()
assert r.status == 200 and r.read() == b"Hello, world!\n" and r.will_close
EOF
  then
    fail "http.client checks"
  fi
}

# Raw requests a browser would never send: each must get the status named
# and a closed connection, and the server must go on serving.
check_raw() {
  echo "  raw"
  if ! timeout 120 "${run[@]}" "$python" - "$base" <<'EOF'
import socket, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])

def exchange(data):
    s = socket.create_connection((url.hostname, url.port), timeout=30)
    s.sendall(data)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break              # the server closed: what we want after an error
        got += chunk
    s.close()
    return got

cases = [
    (b"garbage\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
    # Smuggling: both framings, differing lengths, an unknown coding.
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),    # chunked must be last
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    # A malformed chunk of a buffered body (/hello has no streaming route).
    (b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"\x00\xff\xfe binary \x01\r\n\r\n", 400),
]
for data, want in cases:
    got = exchange(data)
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else None
    assert status == want, (data[:60], got[:200])
    assert b"Connection: close" in got, got[:200]

# A malformed chunk of a streamed body (POST /echo streams): the reply has
# begun, so it is cut short (no last chunk) and the connection closes; the
# request after it is never read.
got = exchange(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\nzz\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
assert not got.endswith(b"0\r\n\r\n") and b"Hello" not in got, got

# A smuggled second request must not be answered: one reply, then close.
got = exchange(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
assert got.count(b"HTTP/1.1 ") == 1 and b"Hello" not in got, got

# Pipelining: three requests in one write, three replies in order.
got = exchange(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nfirst"
               b"GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
assert got.count(b"HTTP/1.1 200") == 3, got
assert got.index(b"Hello, world!") < got.index(b"first") < got.index(b'"server":"Reef"'), got
EOF
  then
    fail "raw malformed/smuggling requests"
  fi
  expect_eq "$(curl_ "$base/hello")" "Hello, world!" "GET /hello after bad requests"
}

check_wrk() {
  echo "  wrk"
  local out rc
  out=$(timeout 60 "${run[@]}" wrk -t1 -c8 -d1s --timeout 10s "$base/hello" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || fail "wrk exited with status $rc: $out"
  expect_has "$out" "Requests/sec" "wrk"
  grep -q "Non-2xx" <<<"$out" && fail "wrk saw non-2xx replies: $out"
  grep -q "Socket errors" <<<"$out" && fail "wrk saw socket errors: $out"
  local requests
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  [ "$requests" -gt 0 ] || fail "wrk got no replies: $out"
}

# Slowloris: 40 connections that never finish their heads. With a 2 s
# header timeout the server closes them all well before slowhttptest's 6 s
# run ends, and answers a normal request while they are open.
check_slowloris() {
  echo "  slowloris"
  timeout 60 "${run[@]}" slowhttptest -c 40 -H -i 1 -r 40 -l 6 -p 2 -u "$base/hello" >"$work/slow.out" 2>&1 &
  local slow=$!
  sleep 1
  expect_eq "$(curl_ "$base/hello")" "Hello, world!" "GET /hello during slowloris"
  wait "$slow"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "slowhttptest exited with status $rc: $(cat "$work/slow.out")"
  grep -q "No open connections left" "$work/slow.out" ||
    fail "the server did not close the slow connections: $(tail -5 "$work/slow.out")"
  expect_eq "$(curl_ "$base/hello")" "Hello, world!" "GET /hello after slowloris"
}

# Static files: a directory with a page, a large file, a subdirectory, a
# link inside and a link leading out to a secret.
www=$work/www
{
  mkdir -p "$www/sub" &&
    echo '<h1>hi</h1>' >"$www/index.html" &&
    head -c 3000000 /dev/urandom >"$www/big.bin" &&
    echo "a" >"$www/sub/a.txt" &&
    echo "the secret" >"$work/secret.txt" &&
    ln -s "$work/secret.txt" "$www/escape" &&
    ln -s index.html "$www/inside" &&
    mkdir -p "$work/www2" &&                  # a sibling whose name starts like the root's
    echo "the secret" >"$work/www2/x" &&
    ln -s "$work/www2/x" "$www/sibling"
} || fail "could not build the static directory under $work"

check_static() {
  echo "  static"
  local head
  head=$(curl_ -i "$base/file/index.html")
  expect_has "$head" "HTTP/1.1 200" "GET /file/index.html"
  expect_has "$head" "Content-Type: text/html" "GET /file/index.html"
  expect_has "$head" "Content-Length: 12" "GET /file/index.html"
  expect_has "$head" "<h1>hi</h1>" "GET /file/index.html"
  local modified
  modified=$(grep -i '^Last-Modified:' <<<"$head" | cut -d' ' -f2- | tr -d '\r')
  [ -n "$modified" ] || fail "no Last-Modified: $head"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $modified" "$base/file/index.html")" 304 \
    "If-Modified-Since, the file's own time"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' -H "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT" \
    "$base/file/index.html")" 200 "If-Modified-Since, a time before the file's"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' -H "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT" \
    "$base/file/index.html")" 304 "If-Modified-Since, a time after the file's"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' -H "If-Range: \"x\"" -r 0-1 "$base/file/index.html")" 200 \
    "Range with If-Range: the whole file"
  must "GET /file/big.bin" curl_ -o "$work/big.out" "$base/file/big.bin"
  cmp -s "$www/big.bin" "$work/big.out" || fail "/file/big.bin did not come back intact"
  expect_has "$(curl_ -I "$base/file/big.bin")" "Content-Length: 3000000" "HEAD /file/big.bin"
  # Ranges.
  must "GET /file/big.bin, Range 100-199" curl_ -r 100-199 -o "$work/part" -D "$work/part.head" "$base/file/big.bin"
  expect_has "$(cat "$work/part.head")" "HTTP/1.1 206" "Range 100-199"
  expect_has "$(cat "$work/part.head")" "Content-Range: bytes 100-199/3000000" "Range 100-199"
  cmp -s "$work/part" <(tail -c +101 "$www/big.bin" | head -c 100) || fail "Range 100-199: wrong bytes"
  must "GET /file/big.bin, Range -10" curl_ -r -10 -o "$work/tail" "$base/file/big.bin"
  cmp -s "$work/tail" <(tail -c 10 "$www/big.bin") || fail "Range -10: wrong bytes"
  expect_eq "$(curl_ -o /dev/null -w '%{http_code}' -r 5000000- "$base/file/big.bin")" 416 "Range past the end"
  # Ways out of the root, and things that are not files.
  local path code
  for path in "/file/escape:403" "/file/sibling:403" "/file/inside:200" "/file/sub:404" "/file/sub/a.txt:200" "/file/missing:404" \
    "/file/:404" "/file/../secret.txt:404" "/file/%2e%2e/secret.txt:404" "/file/..%2Fsecret.txt:400" \
    "/file/sub/..%2F..%2Fsecret.txt:400" "/file/sub/../../secret.txt:404"; do
    code=$(curl_ --path-as-is -o "$work/body" -w '%{http_code}' "$base${path%:*}")
    expect_eq "$code" "${path##*:}" "GET ${path%:*}"
    grep -q "the secret" "$work/body" && fail "GET ${path%:*} showed the secret"
  done
  true
}

# Clients that do odd things with the connection itself: one half-closes
# after its request (the reply still comes), one resets in the middle of
# a body (the server goes on), one connects and says nothing (the server
# closes it at --idle-timeout-ms).
check_connections() {
  echo "  connections"
  if ! timeout 60 "${run[@]}" "$python" - "$base" <<'EOF'
import socket, struct, sys, time, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
address = (url.hostname, url.port)

def read_all(s):
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return got
        got += chunk

s = socket.create_connection(address, timeout=30)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
s.shutdown(socket.SHUT_WR)
got = read_all(s)
assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"Hello, world!\n"), got
s.close()

s = socket.create_connection(address, timeout=30)
s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()

s = socket.create_connection(address, timeout=30)
start = time.monotonic()
got = read_all(s)
assert got == b"", got
assert time.monotonic() - start < 25, time.monotonic() - start
s.close()
EOF
  then
    fail "half-closing, resetting and silent clients"
  fi
  expect_eq "$(curl_ "$base/hello")" "Hello, world!" "GET /hello after the odd clients"
}

# A large random upload echoed byte for byte (EXACT_BYTES overrides its
# size, 100 MB by default).
exact_bytes=${EXACT_BYTES:-100000000}
check_exact_echo() {
  echo "  exact_echo${1:+ ($1)}"
  head -c "$exact_bytes" /dev/urandom >"$work/exact.in" || fail "could not make $exact_bytes random bytes"
  must "POST /echo of $exact_bytes bytes${1:+ ($1)}" "${run[@]}" curl --silent --show-error --max-time 600 -X POST \
    -H 'Expect:' -T "$work/exact.in" -o "$work/exact.out" "$base/echo"
  cmp -s "$work/exact.in" "$work/exact.out" || fail "POST /echo of $exact_bytes bytes${1:+ ($1)}: not echoed intact"
  rm -f "$work/exact.in" "$work/exact.out"
}

# A large upload echoed as it streams: the whole body comes back, and the
# server's peak memory stays bounded (it never holds the body).
check_big_echo() {
  echo "  big_echo"
  local before after got rc
  before=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  got=$(head -c "$echo_bytes" /dev/zero | "${run[@]}" curl --silent --show-error --max-time 600 -X POST -T - -H 'Expect:' \
    "$base/echo" | wc -c)
  rc=$?
  [ "$rc" -eq 0 ] || fail "streamed POST /echo of $echo_bytes bytes: the pipeline exited with status $rc"
  expect_eq "$got" "$echo_bytes" "streamed POST /echo: bytes echoed"
  after=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  # 256 MiB of growth at most, whatever the body's size (an echo that
  # buffered the body would need all of it). Not under a sanitizer, whose
  # quarantine keeps freed memory on purpose.
  if [ -z "${REEF_SANITIZED:-}" ]; then
    [ $((after - before)) -lt 262144 ] ||
      fail "streamed POST /echo of $echo_bytes bytes: peak memory grew from $before kB to $after kB"
  fi
}

backends="io_uring epoll"
[[ "$mode" == dpdk_* ]] && backends=io_uring
for backend in $backends; do
  for shards in 1 2; do
    [ "$shards" -le "$(nproc)" ] || continue
    echo "--- $backend, $shards shard(s)"
    start_httpd --reactor-backend "$backend" --smp "$shards" --header-timeout-ms 2000 --idle-timeout-ms 3000       --static-dir "$www"
    expect_has "$(cat "$work/httpd.log")" "with $shards shard(s), reactor backend $backend" "start line"
    check_curl
    check_python
    check_raw
    check_connections
    check_wrk
    check_static
    if [ "$shards" -eq 1 ]; then
      check_slowloris
      check_big_echo
      check_exact_echo
    fi
    stop_httpd
    if [[ "$mode" == dpdk_* ]]; then
      # Both shards served (their queue pairs, or frames forwarded).
      for s in $(seq 0 $((shards - 1))); do
        served=$(grep -o "shard $s served [0-9]* requests" "$work/httpd.log" | grep -o "[0-9]* requests" | grep -o "[0-9]*")
        [ "${served:-0}" -gt 0 ] || fail "shard $s of $shards served no request"
      done
      grep -q "dpdk - port 0: received" "$work/httpd.log" || fail "no statistics line of the DPDK port at exit"
    fi
  done
done
if [ "$mode" == dpdk_af_packet ]; then
  # A start-up that cannot succeed ends with its reason and status 1
  # before any shard runs (no crash, no core); a malformed DPDK flag, with
  # status 2 at parse time.
  echo "--- DPDK start-up failures"
  expect_start_fails() {
    local want=$1 status=$2
    shift 2
    local err rc
    err=$(timeout 60 "$httpd" --smp 1 --network-stack native --port 0 "$@" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" -eq "$status" ] || fail "httpd $*: exit status $rc, want $status (${err: -2000})"
    grep -q -- "$want" <<<"$err" || fail "httpd $*: '$want' not in: ${err: -2000}"
  }
  expect_start_fails "DPDK's EAL did not start" 1 --dpdk-pmd --dpdk-args "$dpdk_args --vdev=net_nosuch0"
  expect_start_fails "DPDK port 3: no such port (there are 1)" 1 --dpdk-pmd --dpdk-port-index 3 \
    --dpdk-args "$dpdk_args --vdev=net_null0"
  expect_start_fails "there is no DPDK port" 1 --dpdk-pmd --dpdk-args "$dpdk_args"
  expect_start_fails "no memory for queue 0's pool" 1 --dpdk-pmd --dpdk-args "--no-huge -m 20 --no-pci --vdev=net_null0"
  expect_start_fails "flag --dpdk-args: a quote (') is left open" 2 --dpdk-pmd --dpdk-args "--vdev='net_null0"
  expect_start_fails "flag --dpdk-port-index 70000" 2 --dpdk-pmd --dpdk-port-index 70000
  expect_start_fails "flag --dpdk-args: DPDK is used only with --dpdk-pmd" 2 --dpdk-args "--no-huge"
fi
if [[ "$mode" == dpdk_* ]]; then
  echo PASS
  exit 0
fi

if [ "$mode" == native ]; then
  # 5% of the packets dropped each way, in the namespace (Linux's side).
  echo "--- 5% loss each way"
  start_httpd --smp 1 --header-timeout-ms 2000
  nft=$(command -v nft || echo /usr/sbin/nft)
  "${run[@]}" "$nft" -f - <<'EOF' || fail "could not add the nftables loss rules"
table inet reef_loss {
  chain input { type filter hook input priority 0; numgen random mod 20 == 0 drop; }
  chain output { type filter hook output priority 0; numgen random mod 20 == 0 drop; }
}
EOF
  check_curl
  check_exact_echo "5% loss"
  "${run[@]}" "$nft" delete table inet reef_loss || fail "could not remove the nftables loss rules"
  stop_httpd
  echo PASS
  exit 0
fi

# The root directory itself as the root: everything under it is inside.
start_httpd --smp 1 --static-dir /
expect_eq "$(curl_ -o /dev/null -w '%{http_code}' "$base/file$www/index.html")" 200 "--static-dir /"
stop_httpd

# Bad flags stop it with exit status 2 and a message naming the flag.
expect_refused() {
  local want=$1
  shift
  local err rc
  err=$("$httpd" "$@" 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 2 ] || fail "$*: exit status $rc, want 2 ($err)"
  grep -q -- "$want" <<<"$err" || fail "$*: '$err' does not name $want"
}
expect_refused "--port" --port 70000
expect_refused "--address" --address not-an-address
expect_refused "--header-timeout-ms" --header-timeout-ms 0
expect_refused "--body-timeout-ms" --body-timeout-ms -5
expect_refused "--send-timeout-ms" --send-timeout-ms 0
expect_refused "--max-connections" --max-connections -1
expect_refused "--static-dir" --static-dir "$work/no-such-dir"
echo PASS
