#!/usr/bin/env bash
# httpd on the native stack over TAP against httpd on the POSIX stack
# over a veth pair, side by side in one run. One network namespace holds
# wrk, the kernel side of a TAP on which httpd runs the native stack, and
# one end of a veth pair whose other end, outside, has httpd on the POSIX
# stack. Both servers --smp 1 on CPU 0, wrk on CPU 1, alternating, RUNS
# times each, in three modes: plain keep-alive requests, pipelined (16
# per write), and a new connection per request ("Connection: close": the
# connection rate). The namespace and its links are removed at the end.
#
#   tools/bench/httpd_native_vs_posix.sh
#   RUNS=5 DURATION=5 CONNECTIONS=64 tools/bench/httpd_native_vs_posix.sh
#
# NATIVE=dpdk: the native stack runs over DPDK instead (--dpdk-pmd), by
# default a net_af_packet port on the same veth pair as the POSIX stack
# (host end; the stack takes 10.79.0.3 there), without hugepages; its
# namespace end's checksum and segmentation offloads are off for both
# stacks (af_packet hands frames over as the kernel left them). A
# poll-mode server uses its whole CPU: its requests per CPU-second are its
# req/s. On a machine with a NIC: DPDK_ARGS='-a PCI-ADDRESS' and
# NATIVE_ADDR=its address, with wrk's namespace routed to that wire.
#
# Prints per stack and mode the medians of req/s, p99 (µs) and requests
# per server CPU-second (req/s over the share of its CPU the server
# used), with the spread of req/s, and the native/POSIX ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

runs=${RUNS:-5}
duration=${DURATION:-5}
connections=${CONNECTIONS:-64}
backend=${BACKEND:-io_uring}
port=18090
native=${NATIVE:-tap}
[[ "$native" == tap || "$native" == dpdk ]] || { echo "NATIVE is tap or dpdk" >&2; exit 2; }
for tool in wrk taskset ip bc; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
tools/bazel build --config=release //http:httpd >/dev/null 2>&1 ||
  { tools/bazel build --config=release //http:httpd; exit 1; }

work=$(mktemp -d)
ns=reef-hbench-$$
tap=rhtap$$
veth=rhveth$$
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip link del "$veth" 2>/dev/null
  rm -rf "$work"
  true
}
trap cleanup EXIT
cp bazel-bin/http/httpd "$work/httpd"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev "$tap" mode tap multi_queue
ip -n "$ns" addr add 10.78.0.1/24 dev "$tap"
ip -n "$ns" link set "$tap" up
ip link add "$veth" type veth peer name "${veth}b" netns "$ns"
ip addr add 10.79.0.1/24 dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add 10.79.0.2/24 dev "${veth}b"
ip -n "$ns" link set "${veth}b" up
native_addr=${NATIVE_ADDR:-10.78.0.2}
if [ "$native" = dpdk ]; then
  native_addr=${NATIVE_ADDR:-10.79.0.3}
  dpdk_args=${DPDK_ARGS:---no-huge -m 512 --no-pci --no-telemetry --vdev=net_af_packet0,iface=$veth}
  ethtool=$(command -v ethtool || echo /usr/sbin/ethtool)
  ip netns exec "$ns" "$ethtool" -K "${veth}b" tx off tso off gso off >/dev/null
fi

cat >"$work/pipeline.lua" <<'EOF'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/hello") end
  batch = table.concat(r)
end
request = function() return batch end
EOF

start() {
  : >"$work/httpd.log"
  "$@" --smp 1 --cpuset 0 --port "$port" --reactor-backend "$backend" >>"$work/httpd.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    grep -q "serving on" "$work/httpd.log" && return
    sleep 0.05
  done
  cat "$work/httpd.log" >&2
  exit 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Prints "req/s p99 requests-per-CPU-second" for one wrk run.
measure() {
  local url=$1 mode=$2 out before after
  local args=(-t1 "-c$connections" "-d${duration}s" --latency --timeout 5s)
  [ "$mode" = pipelined ] && args+=(-s "$work/pipeline.lua")
  [ "$mode" = connect ] && args+=(-H "Connection: close")
  before=$(cpu_ticks "$pid")
  out=$(timeout $((duration + 30)) ip netns exec "$ns" taskset -c 1 wrk "${args[@]}" "$url")
  after=$(cpu_ticks "$pid")
  if grep -qE "Non-2xx" <<<"$out"; then
    echo "wrk reported errors against $url:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '
    function us(v) {
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v
    }
    /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    END { cpu = ticks / hz / seconds; printf "%.0f %.0f %.0f\n", rps, p99, (cpu > 0 ? rps / cpu : 0) }' \
    ticks=$((after - before)) hz="$(getconf CLK_TCK)" seconds="$duration" <<<"$out"
}

declare -A results
for run in $(seq "$runs"); do
  for stack in native posix; do
    if [ "$stack" = native ] && [ "$native" = dpdk ]; then
      start "$work/httpd" --network-stack native --dpdk-pmd --dpdk-args "$dpdk_args" \
        --host-ipv4-addr "$native_addr/24" --address 0.0.0.0
      url=http://$native_addr:$port/hello
    elif [ "$stack" = native ]; then
      start ip netns exec "$ns" "$work/httpd" --network-stack native --tap-device "$tap" \
        --host-ipv4-addr "$native_addr/24" --address 0.0.0.0
      url=http://$native_addr:$port/hello
    else
      start "$work/httpd" --address 10.79.0.1
      url=http://10.79.0.1:$port/hello
    fi
    ip netns exec "$ns" curl -s --max-time 5 -o /dev/null "$url" || { echo "no answer from $url" >&2; exit 1; }
    for mode in plain pipelined connect; do
      r=$(measure "$url" "$mode")
      echo "  run $run $stack $mode: $r" >&2
      results[$stack,$mode]+="$r"$'\n'
    done
    stop
  done
done

column() { sed '/^$/d' <<<"${results[$1,$2]}" | awk -v c="$3" '{ print $c }' | sort -g; }
median() { column "$1" "$2" "$3" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
printf '\n| mode | stack | req/s (median, spread) | p99 µs | requests per server CPU-second | native/POSIX req/s | native/POSIX per CPU-second |\n'
printf '|---|---|---|---|---|---|---|\n'
for mode in plain pipelined connect; do
  for stack in native posix; do
    rps=$(median "$stack" "$mode" 1)
    spread="$(column "$stack" "$mode" 1 | head -1)-$(column "$stack" "$mode" 1 | tail -1)"
    if [ "$stack" = native ]; then
      r1=$(echo "$rps / $(median posix "$mode" 1)" | bc -l)
      r2=$(echo "$(median native "$mode" 3) / $(median posix "$mode" 3)" | bc -l)
      printf '| %s | %s | %s (%s) | %s | %s | %.2f× | %.2f× |\n' "$mode" "$stack" "$rps" "$spread" \
        "$(median "$stack" "$mode" 2)" "$(median "$stack" "$mode" 3)" "$r1" "$r2"
    else
      printf '| %s | %s | %s (%s) | %s | %s | | |\n' "$mode" "$stack" "$rps" "$spread" \
        "$(median "$stack" "$mode" 2)" "$(median "$stack" "$mode" 3)"
    fi
  done
done
echo "(wrk -t1 -c$connections -d${duration}s on CPU 1 in the namespace; httpd --smp 1 --cpuset 0, backend $backend;" \
  "native over ${native}${dpdk_args:+ ($dpdk_args)}; $runs runs; connect: a new connection per request)"
