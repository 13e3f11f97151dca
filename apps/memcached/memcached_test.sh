#!/bin/bash
# End to end: the real memcached binary on 127.0.0.1 against outside
# clients. Arguments: the shard count (1 or 2) and the reactor backend
# (io_uring or epoll).
#
#   1. pymemcache's own integration tests (Debian's python3-pymemcache,
#      pymemcache/test/test_integration.py, run with pytest) against it.
#      Skipped: test_tls (its three socket variants): Reef's memcached
#      speaks no TLS.
#   2. testing/conformance.py: the same bytes (bad lines, wrong data
#      blocks, every command and meta flag) to Debian's memcached 1.6 and
#      to ours; the replies must match, CAS numbers and "me" details aside.
#   3. testing/client_test.py: pymemcache and raw sockets: multi-key gets
#      across shards in order, CAS, statistics, 1 MB values, the meta
#      commands, UDP (frame header, replies over several datagrams, the
#      multi-packet error), bad input, a client that never reads.
#   3b. GET /metrics on --prometheus-port: promtool accepts it, every
#      shard has its sample, and 10 gets move the get counter by 10.
#   4. A second server with -c 2 and --idle-timeout 1: the third
#      connection is told "ERROR Too many open connections" and closed; an
#      idle connection is closed after a second.
# Every server is stopped with SIGTERM and must log "stopped". A failing
# check names itself and prints the server's log.
set -uo pipefail
shards=${1:-1}
backend=${2:-io_uring}
python=/usr/bin/python3
here=$PWD/apps/memcached
ours=$here/memcached
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log; do
    [ -f "$log" ] || continue
    echo "--- $log (last 30 lines):"
    tail -30 "$log"
  done
  exit 1
}

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts our server with the given flags; sets `port` from its log line.
start_ours() {
  local name=$1
  shift
  "$ours" --smp "$shards" --reactor-backend "$backend" -l 127.0.0.1 -p 0 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  last_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*serving memcached on tcp 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$name.log")
    [ -n "$port" ] && break
    kill -0 "$last_pid" 2>/dev/null || fail "$name exited at start"
    sleep 0.1
  done
  [ -n "$port" ] || fail "$name did not log that it serves"
}

stop() {
  local pid=$1 name=$2
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "$name did not stop within 10 s of SIGTERM"
  grep -q "stopped" "$work/$name.log" || fail "$name did not log that it stopped"
}

udp_port=$(free_port)
start_ours main -U "$udp_port" -m 64 --prometheus-port 0
main_pid=$last_pid
main_port=$port
echo "=== ours: tcp $main_port udp $udp_port, $shards shard(s), $backend"

echo "=== 1. pymemcache's integration tests"
cd "$work" || fail "cd"
timeout 120 "$python" -m pytest -q -p no:cacheprovider -W ignore::pytest.PytestUnknownMarkWarning \
  /usr/lib/python3/dist-packages/pymemcache/test/test_integration.py --port "$main_port" -k "not tls" \
  >"$work/pytest.out" 2>&1 || { cat "$work/pytest.out"; fail "pymemcache's integration tests"; }
tail -1 "$work/pytest.out"
grep -q "46 passed" "$work/pytest.out" || { cat "$work/pytest.out"; fail "pymemcache: not the 46 tests expected"; }
cd - >/dev/null || fail "cd back"

echo "=== 2. the same bytes to Debian's memcached and to ours"
theirs_port=$(free_port)
memcached -u nobody -l 127.0.0.1 -p "$theirs_port" -U 0 -m 64 -t 1 >"$work/debian-memcached.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $theirs_port))" 2>/dev/null && break
  sleep 0.1
done
timeout 300 "$python" "$here/testing/conformance.py" "$theirs_port" "$main_port" || fail "conformance with memcached"

echo "=== 3. clients: pymemcache, meta commands, UDP, bad input, a slow reader"
timeout 120 "$python" "$here/testing/client_test.py" 127.0.0.1 "$main_port" "$udp_port" "$main_pid" ||
  fail "client checks"

echo "=== 3b. GET /metrics on --prometheus-port: promtool, one sample per shard, counters that moved"
metrics=$(sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' "$work/main.log" | head -1)
[ -n "$metrics" ] || fail "no 'metrics on' line in the log"
command -v promtool >/dev/null || fail "needs promtool (tools/install_host_tools.sh installs it)"
"$python" -c "import prometheus_client" || fail "needs python3-prometheus-client (tools/install_host_tools.sh)"
timeout 60 "$python" - "$metrics" "$shards" "$main_port" <<'PY' || fail "metrics"
import socket, subprocess, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
where, shards, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def scrape():
    with urllib.request.urlopen("http://%s/metrics" % where, timeout=20) as r:
        return r.read().decode()
def total(families, name, **labels):
    return sum(s.value for f in families for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
text = scrape()
check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
if check.returncode != 0:
    sys.exit("promtool: " + check.stdout + check.stderr)
before = list(text_string_to_metric_families(text))
for name in ("reef_memcached_items", "reef_reactor_tasks_run_total", "reef_memory_allocated_bytes"):
    shards_seen = sorted(s.labels["shard"] for f in before for s in f.samples if s.name == name)
    if shards_seen != [str(n) for n in range(shards)]:
        sys.exit("%s: shards %s" % (name, shards_seen))
# 10 gets on one connection: the get counters of all shards grow by 10.
c = socket.create_connection(("127.0.0.1", port), timeout=20)
for i in range(10):
    c.sendall(b"get metrics_key_%d\r\n" % i)
    reply = b""
    while not reply.endswith(b"END\r\n"):
        got = c.recv(4096)
        if not got:
            sys.exit("the server closed the connection")
        reply += got
c.close()
after = list(text_string_to_metric_families(scrape()))
grew = total(after, "reef_memcached_commands_total", command="get") - \
       total(before, "reef_memcached_commands_total", command="get")
if grew != 10:
    sys.exit("get commands grew by %s, not 10" % grew)
print("metrics: %d families, gets counted" % len(after))
PY
stop "$main_pid" main

echo "=== 4. connection limit and idle timeout"
start_ours limited -c $((2 * shards)) --idle-timeout 1
limited_pid=$last_pid
timeout 60 "$python" - "$port" "$shards" <<'PY' || fail "connection limit and idle timeout"
import socket, sys, time
port, shards = int(sys.argv[1]), int(sys.argv[2])
# Every shard takes two; the kernel spreads connections over shards, so
# open enough that some shard is past its two.
kept = []
refused = 0
for _ in range(8 * shards):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(2)
    s.sendall(b"version\r\n")
    reply = s.recv(100)
    if reply.startswith(b"ERROR Too many open connections"):
        refused += 1
        if s.recv(100) != b"":
            sys.exit("a refused connection stayed open")
    else:
        kept.append(s)
print("kept %d, refused %d" % (len(kept), refused))
if len(kept) > 2 * shards or refused == 0:
    sys.exit("the limit of %d did not hold" % (2 * shards))
# Idle: closed after about a second.
start = time.time()
kept[0].settimeout(5)
if kept[0].recv(100) != b"":
    sys.exit("an idle connection got bytes")
took = time.time() - start
print("idle connection closed after %.1f s" % took)
if took > 4:
    sys.exit("the idle timeout did not close the connection")
PY
stop "$limited_pid" limited
echo "PASS"
