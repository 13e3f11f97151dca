#!/bin/bash
# The native stack against Linux: udp_echo on a TAP interface whose kernel
# side lives in a network namespace this test makes (and removes, pass or
# fail). From inside the namespace, the kernel's own tools talk to it:
# ping gets replies, arping and `ip neigh` show its MAC, and a Python UDP
# client exchanges datagrams with it from many ports (spread over the
# shards), of every size up to the largest (fragmented both ways), hears
# "connection refused" from a closed port, and throws malformed frames at
# it, after which it still answers. On both reactor backends, one and two
# shards. With --dhcp, dnsmasq (in the namespace) hands the stack its
# address. Bad flag values stop udp_echo with status 2 naming the flag.
#
# Needs root (namespaces, TAP): the tests and CI run as root.
set -uo pipefail
echo_bin=$PWD/tcpip/udp_echo
python=/usr/bin/python3
work=$(mktemp -d)
ns=reef-tap-$$
tap=rtap$$
pid=
dnsmasq_pid=
address=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$dnsmasq_pid" ] && kill -KILL "$dnsmasq_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  if [ -f "$work/echo.log" ]; then
    echo "--- udp_echo log (last 40 lines):"
    tail -40 "$work/echo.log"
  fi
  exit 1
}
must() {
  local what=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || fail "$what: '$*' exited with status $rc: ${out:0:2000}"
  printf '%s' "$out"
}
in_ns() { ip netns exec "$ns" "$@"; }

# Flags: a bad value stops the program before anything starts.
expect_refused() {
  local flag=$1
  shift
  local out rc
  out=$(timeout 20 "$echo_bin" "$@" 2>&1)
  rc=$?
  [ "$rc" -eq 2 ] || fail "udp_echo $*: exit status $rc, want 2: $out"
  grep -q -- "$flag" <<<"$out" || fail "udp_echo $*: the message does not name $flag: $out"
}
expect_refused --host-ipv4-addr --network-stack native --host-ipv4-addr 10.0.0.300
expect_refused --host-ipv4-addr --network-stack native --host-ipv4-addr 10.0.0.2/33
expect_refused --host-ipv4-addr --network-stack native --host-ipv4-addr 10.0.0.0/24
expect_refused --gw-ipv4-addr --network-stack native --host-ipv4-addr 10.0.0.2/24 --gw-ipv4-addr 10.0.1.1
expect_refused --netmask-ipv4-addr --network-stack native --netmask-ipv4-addr 255.0.255.0
expect_refused --native-stack-mtu --network-stack native --native-stack-mtu 20
expect_refused --hw-queue-weight --network-stack native --hw-queue-weight 1.5
expect_refused --tap-device --network-stack native --tap-device a-name-far-too-long-for-linux
expect_refused --network-stack --network-stack nosuch

must "make the namespace" ip netns add "$ns" >/dev/null
must "loopback up" ip -n "$ns" link set lo up >/dev/null
must "make the TAP" ip -n "$ns" tuntap add dev "$tap" mode tap multi_queue >/dev/null
must "address the TAP" ip -n "$ns" addr add 10.77.0.1/24 dev "$tap" >/dev/null
must "TAP up" ip -n "$ns" link set "$tap" up >/dev/null

cat >"$work/client.py" <<'PY'
import socket, struct, sys

server = (sys.argv[1], 7)

def exchange(s, data):
    s.sendto(data, server)
    got, source = s.recvfrom(70000)
    if got != data or source != server:
        sys.exit("echo of %d bytes: got %d bytes from %s" % (len(data), len(got), source))

# Many ports (the native stack spreads their flows over its shards),
# three datagrams each.
sockets = []
for i in range(40):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    sockets.append(s)
for round in range(3):
    for i, s in enumerate(sockets):
        exchange(s, b"port %d round %d" % (i, round))
# Every size class: one frame, just over the MTU, many fragments, the
# largest datagram IPv4 carries.
big = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
big.settimeout(5)
for n in (1, 1472, 1473, 4000, 20000, 65507):
    exchange(big, bytes((i * 7) % 251 for i in range(n)))
# A closed port: ICMP port unreachable, which Linux turns into a refusal
# on a connected socket.
closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
closed.settimeout(5)
closed.connect((sys.argv[1], 9))
closed.send(b"anyone?")
try:
    closed.recv(100)
    sys.exit("a closed port answered")
except ConnectionRefusedError:
    pass
print("ok")
PY

cat >"$work/garbage.py" <<'PY'
# Malformed frames at the native stack's MAC, straight onto the TAP.
import socket, struct, sys, random
tap, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((tap, 0))
ours = raw.getsockname()[4][:6]
eth = mac + ours + b"\x08\x00"

def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def ip(payload, proto=17, flags_frag=0, total=None, ihl=5, ident=1, good=True, options=b""):
    total = total if total is not None else 20 + len(options) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, flags_frag, 64, proto, 0,
                    socket.inet_aton("10.77.0.1"), socket.inet_aton(sys.argv[3])) + options
    c = checksum(h) if good else 0x1234
    return h[:10] + struct.pack("!H", c) + h[12:] + payload

udp = struct.pack("!HHHH", 5555, 7, 8 + 5, 0) + b"hello"
frames = [
    eth,                                            # no IP at all
    eth + b"\x45\x00",                              # a cut header
    eth + ip(udp, good=False),                      # bad header checksum
    eth + ip(udp, total=2000),                      # longer than the frame
    eth + ip(udp, total=10),                        # shorter than its header
    eth + ip(udp, ihl=3),                           # IHL below 5
    eth + ip(udp, ihl=15),                          # options past the frame
    eth + ip(struct.pack("!HHHH", 5555, 7, 200, 0) + b"hi"),  # UDP length past the datagram
    eth + ip(struct.pack("!HHHH", 5555, 7, 13, 0xbeef) + b"hello"),  # bad UDP checksum
    eth + ip(b"x" * 16, flags_frag=0x2000 | 8191, ident=7),    # a fragment past 65535
    eth + ip(b"y" * 16, flags_frag=0x2000, ident=8) ,          # overlapping pieces
    eth + ip(b"z" * 16, flags_frag=0x2000 | 1, ident=8),
    eth + ip(b"\x03\x03", proto=1),                 # a cut ICMP message
    mac + ours + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01",  # a cut ARP message
]
rng = random.Random(7)
for _ in range(300):
    f = bytearray(eth + ip(udp))
    for _ in range(3):
        f[rng.randrange(14, len(f))] = rng.randrange(256)
    frames.append(bytes(f))
for f in frames:
    raw.send(f)
print("sent", len(frames))
PY

# Starts udp_echo (--dhcp: with dnsmasq serving the namespace's network)
# and waits until it echoes; sets $pid and $address.
start_echo() {
  local backend=$1 shards=$2 mode=$3
  : >"$work/echo.log"
  local how=(--host-ipv4-addr 10.77.0.2/24)
  if [ "$mode" == dhcp ]; then
    how=(--dhcp)
    : >"$work/dnsmasq.log"
    ip netns exec "$ns" /usr/sbin/dnsmasq --no-daemon --port=0 --interface="$tap" --bind-interfaces \
      --dhcp-range=10.77.0.50,10.77.0.59,255.255.255.0,2m --dhcp-leasefile="$work/leases" \
      --pid-file="$work/dnsmasq.pid" --log-dhcp >>"$work/dnsmasq.log" 2>&1 &
    dnsmasq_pid=$!
    local i
    for i in $(seq 100); do
      grep -q "sockets bound" "$work/dnsmasq.log" && break
      sleep 0.1
    done
    grep -q "sockets bound" "$work/dnsmasq.log" || fail "dnsmasq did not start: $(cat "$work/dnsmasq.log")"
  fi
  # (Not through in_ns: $! must be udp_echo itself, which `ip netns exec`
  # becomes, for the SIGTERM below.)
  ip netns exec "$ns" "$echo_bin" --network-stack native --tap-device "$tap" "${how[@]}" \
    --reactor-backend "$backend" --smp "$shards" --memory 512M >>"$work/echo.log" 2>&1 &
  pid=$!
  local i
  for i in $(seq 300); do
    grep -q "echoing on 10.77.0.[0-9]*:7" "$work/echo.log" && break
    kill -0 "$pid" 2>/dev/null || fail "$backend/$shards/$mode: udp_echo exited before it echoed"
    sleep 0.1
  done
  address=$(grep -o "echoing on 10.77.0.[0-9]*" "$work/echo.log" | cut -d' ' -f3)
  [ -n "$address" ] || fail "$backend/$shards/$mode: udp_echo did not start in 30 s"
}

stop_echo() {
  local what=$1
  kill -TERM "$pid"
  local rc
  wait "$pid"
  rc=$?
  pid=
  [ "$rc" -eq 0 ] || fail "$what: udp_echo exited with status $rc after SIGTERM"
  grep -q "stopped after echoing" "$work/echo.log" || fail "$what: no 'stopped' line"
  if [ -n "$dnsmasq_pid" ]; then
    kill "$dnsmasq_pid"
    wait "$dnsmasq_pid" 2>/dev/null
    dnsmasq_pid=
  fi
}

run_case() {
  local backend=$1 shards=$2
  start_echo "$backend" "$shards" static
  [ "$address" == 10.77.0.2 ] || fail "$backend/$shards: echoing on $address"
  local out
  out=$(must "$backend/$shards: ping" in_ns ping -c 3 -i 0.2 -W 5 10.77.0.2)
  grep -q " 3 received" <<<"$out" || fail "$backend/$shards: ping: $out"
  out=$(must "$backend/$shards: arping" in_ns arping -c 2 -w 10 -I "$tap" 10.77.0.2)
  grep -qi "02:52:45:45:46:01" <<<"$out" || fail "$backend/$shards: arping does not show the stack's MAC: $out"
  out=$(must "$backend/$shards: ip neigh" ip -n "$ns" neigh show 10.77.0.2)
  grep -qi "02:52:45:45:46:01" <<<"$out" || fail "$backend/$shards: ip neigh: $out"
  out=$(must "$backend/$shards: UDP client" in_ns timeout 120 "$python" "$work/client.py" 10.77.0.2)
  [ "$out" == "ok" ] || fail "$backend/$shards: UDP client: $out"
  must "$backend/$shards: garbage" in_ns timeout 60 "$python" "$work/garbage.py" "$tap" 02:52:45:45:46:01 10.77.0.2 >/dev/null
  out=$(must "$backend/$shards: UDP client after the garbage" in_ns timeout 120 "$python" "$work/client.py" 10.77.0.2)
  [ "$out" == "ok" ] || fail "$backend/$shards: UDP client after the garbage: $out"

  stop_echo "$backend/$shards"
  # The garbage was seen and counted, each by its layer.
  local counts
  counts=$(grep "native stack:" "$work/echo.log") || fail "$backend/$shards: no counts logged"
  for field in ipv4_errors udp_errors; do
    local n
    n=$(grep -o "$field=[0-9]*" <<<"$counts" | cut -d= -f2)
    [ "${n:-0}" -gt 0 ] || fail "$backend/$shards: $field is ${n:-missing} after the garbage: $counts"
  done
  echo "ok: $backend, $shards shard(s); $(sed -e "s/.*native stack: //" <<<"$counts")"
}

# dnsmasq hands the stack its address; the kernel's tools and the client
# then reach it there.
run_dhcp_case() {
  local backend=$1 shards=$2
  start_echo "$backend" "$shards" dhcp
  local out
  out=$(must "$backend/$shards/dhcp: ping" in_ns ping -c 2 -i 0.2 -W 5 "$address")
  grep -q " 2 received" <<<"$out" || fail "$backend/$shards/dhcp: ping $address: $out"
  out=$(must "$backend/$shards/dhcp: UDP client" in_ns timeout 120 "$python" "$work/client.py" "$address")
  [ "$out" == "ok" ] || fail "$backend/$shards/dhcp: UDP client: $out"
  grep -qi "02:52:45:45:46:01 $address" "$work/leases" || fail "$backend/$shards/dhcp: dnsmasq's leases: $(cat "$work/leases")"
  grep -q "DHCPACK(.*) $address" "$work/dnsmasq.log" || fail "$backend/$shards/dhcp: no DHCPACK in dnsmasq's log"
  stop_echo "$backend/$shards/dhcp"
  rm -f "$work/leases"
  echo "ok: $backend, $shards shard(s), DHCP gave $address"
}

for backend in io_uring epoll; do
  for shards in 1 2; do
    run_case "$backend" "$shards"
  done
  run_dhcp_case "$backend" 2
done
echo PASS
