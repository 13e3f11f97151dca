#!/usr/bin/env bash
# UDP echo round trips over TAP (Reef's native stack) against the kernel's
# UDP over a veth pair (Reef's POSIX stack), side by side in one run. One
# network namespace holds the client (tools/bench/udp_rtt_client.c, one
# round trip at a time), the kernel side of a TAP on which udp_echo runs
# the native stack, and one end of a veth pair whose other end, outside,
# has udp_echo on the POSIX stack. Both servers on CPU 0 with one shard,
# the client on CPU 1; alternating, RUNS times each. The namespace and
# its links are removed at the end.
#
#   tools/bench/udp_echo_tap_vs_veth.sh
#   COUNT=20000 RUNS=5 BACKEND=epoll tools/bench/udp_echo_tap_vs_veth.sh
#
# BACKEND is both servers' reactor backend (default io_uring).
#
# Prints the median round trips per second of each and the paired ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

count=${COUNT:-20000}
backend=${BACKEND:-io_uring}
runs=${RUNS:-5}
port=17007
tools/bazel build --config=release //tcpip:udp_echo >/dev/null 2>&1 ||
  { tools/bazel build --config=release //tcpip:udp_echo; exit 1; }

work=$(mktemp -d)
ns=reef-bench-$$
tap=rbtap$$
veth=rbveth$$
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip link del "$veth" 2>/dev/null
  rm -rf "$work"
  true
}
trap cleanup EXIT
cp bazel-bin/tcpip/udp_echo "$work/udp_echo"
cc -O2 -o "$work/client" tools/bench/udp_rtt_client.c

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev "$tap" mode tap
ip -n "$ns" addr add 10.78.0.1/24 dev "$tap"
ip -n "$ns" link set "$tap" up
ip link add "$veth" type veth peer name "${veth}b" netns "$ns"
ip addr add 10.79.0.1/24 dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add 10.79.0.2/24 dev "${veth}b"
ip -n "$ns" link set "${veth}b" up

# Starts udp_echo (in the namespace or not) and waits until it echoes.
start() {
  : >"$work/echo.log"
  "$@" --smp 1 --cpuset 0 --port "$port" --reactor-backend "$backend" >>"$work/echo.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    grep -q "echoing on" "$work/echo.log" && return
    sleep 0.05
  done
  cat "$work/echo.log" >&2
  exit 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}
# Prints round trips per second.
client() { ip netns exec "$ns" taskset -c 1 "$work/client" "$1" "$port" "$count" | awk '{ print $2 }'; }

tap_results=""
veth_results=""
for run in $(seq "$runs"); do
  # (The native stack comes up from the namespace, where its TAP is.)
  start ip netns exec "$ns" "$work/udp_echo" --network-stack native --tap-device "$tap" --host-ipv4-addr 10.78.0.2/24
  ip netns exec "$ns" "$work/client" 10.78.0.2 "$port" 100 >/dev/null  # ARP and caches warm
  r=$(client 10.78.0.2)
  stop
  echo "  run $run TAP (native): $r" >&2
  tap_results+="$r"$'\n'
  start "$work/udp_echo" --network-stack posix
  ip netns exec "$ns" "$work/client" 10.79.0.1 "$port" 100 >/dev/null
  r=$(client 10.79.0.1)
  stop
  echo "  run $run veth (POSIX): $r" >&2
  veth_results+="$r"$'\n'
done

median() { sed '/^$/d' <<<"$1" | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
tap_median=$(median "$tap_results")
veth_median=$(median "$veth_results")
printf '\n| path | round trips/s | vs veth |\n|---|---|---|\n'
printf '| TAP, Reef native stack | %s | %.2f× |\n' "$tap_median" "$(echo "$tap_median / $veth_median" | bc -l)"
printf '| veth, kernel UDP (Reef POSIX stack) | %s | 1.00× |\n' "$veth_median"
ratios=$(paste -d' ' <(sed '/^$/d' <<<"$tap_results") <(sed '/^$/d' <<<"$veth_results") |
  awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | sort -g)
printf 'paired ratios (TAP/veth, run by run): median %s, min %s, max %s\n' \
  "$(awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }' <<<"$ratios")" "$(head -1 <<<"$ratios")" "$(tail -1 <<<"$ratios")"
echo "(32-byte datagrams, one round trip at a time, $count per run, median of $runs, reactor backend $backend)"
