#!/usr/bin/env bash
# Bulk TCP throughput: Reef's native stack against Linux's, side by side in
# one run. Reef: tcp_benchmark's tcp_bulk, two native stacks over the
# in-process virtual link (MTU 1500, MSS 1460, no loss) on one shard:
# with the offloads veth gives Linux (checksums left undone between the
# ends, TSO segments passed whole; the headline), and without any (every
# segment cut and summed by the stack).
# Linux: iperf3 between two network namespaces over a veth pair (MTU
# 1500), client and server. Both pinned to the same one CPU, so that one
# core carries both ends in each case. Alternating, RUNS times each; the
# namespaces are removed at the end.
#
#   tools/bench/tcp_vs_linux.sh
#   RUNS=7 CPU=1 SECONDS_LINUX=5 TCP_BULK_BYTES=1073741824 tools/bench/tcp_vs_linux.sh
#
# Prints the median Gbit/s of each with the spread (min-max), the ratio
# of the medians and the median of the paired ratios, and Reef's
# nanoseconds per segment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

runs=${RUNS:-5}
cpu=${CPU:-1}
linux_seconds=${SECONDS_LINUX:-5}
export TCP_BULK_BYTES=${TCP_BULK_BYTES:-1073741824}
for tool in iperf3 taskset ip bc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (tools/bazel installs iperf3)" >&2; exit 1; }
done
tools/bazel build --config=release //tcpip:tcp_benchmark >/dev/null 2>&1 ||
  { tools/bazel build --config=release //tcpip:tcp_benchmark; exit 1; }

work=$(mktemp -d)
a=reef-tcpa-$$
b=reef-tcpb-$$
server=
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  ip netns del "$a" 2>/dev/null
  ip netns del "$b" 2>/dev/null
  rm -rf "$work"
  true
}
trap cleanup EXIT
cp bazel-bin/tcpip/tcp_benchmark "$work/tcp_benchmark"

ip netns add "$a"
ip netns add "$b"
ip link add veth-a netns "$a" type veth peer name veth-b netns "$b"
ip -n "$a" addr add 10.89.0.1/24 dev veth-a
ip -n "$b" addr add 10.89.0.2/24 dev veth-b
ip -n "$a" link set veth-a mtu 1500 up
ip -n "$b" link set veth-b mtu 1500 up
ip -n "$a" link set lo up
ip -n "$b" link set lo up

# Prints "Gbit/s ns_per_segment" for one Reef run; $1: offloads (0 or 1).
reef() {
  taskset -c "$cpu" "$work/tcp_benchmark" --benchmark_filter="tcp_bulk/offloads:$1" 2>/dev/null |
    awk '/tcp_bulk/ { for (i = 1; i <= NF; ++i) { if ($i ~ /^Gbit\/s=/) g = substr($i, 8); if ($i ~ /^ns_per_segment=/) n = substr($i, 16) } }
         END { if (n ~ /k$/) n = n * 1000; printf "%s %s\n", g, n }'
}
# Prints Gbit/s for one Linux run (what the receiver got).
linux() {
  ip netns exec "$b" taskset -c "$cpu" iperf3 -s -1 -p 5201 >"$work/iperf-server.log" 2>&1 &
  server=$!
  sleep 0.3
  ip netns exec "$a" taskset -c "$cpu" iperf3 -c 10.89.0.2 -p 5201 -t "$linux_seconds" -f g |
    awk '/receiver/ { for (i = 1; i <= NF; ++i) if ($i == "Gbits/sec") print $(i - 1) }'
  wait "$server" || true
  server=
}

reef_results=""
linux_results=""
ns_results=""
bare_results=""
bare_ns_results=""
for run in $(seq "$runs"); do
  read -r g n <<<"$(reef 1)"
  echo "  run $run Reef: $g Gbit/s, $n ns/segment" >&2
  reef_results+="$g"$'\n'
  ns_results+="$n"$'\n'
  read -r g n <<<"$(reef 0)"
  echo "  run $run Reef without offloads: $g Gbit/s, $n ns/segment" >&2
  bare_results+="$g"$'\n'
  bare_ns_results+="$n"$'\n'
  l=$(linux)
  echo "  run $run Linux: $l Gbit/s" >&2
  linux_results+="$l"$'\n'
done

sorted() { sed '/^$/d' <<<"$1" | sort -g; }
median() { sorted "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
spread() { echo "$(sorted "$1" | head -1)-$(sorted "$1" | tail -1)"; }
reef_median=$(median "$reef_results")
linux_median=$(median "$linux_results")
printf '\n| stack | Gbit/s (median) | spread | vs Linux |\n|---|---|---|---|\n'
printf '| Reef native, virtual link, offloads as veth | %s | %s | %.2f× |\n' "$reef_median" "$(spread "$reef_results")" \
  "$(echo "$reef_median / $linux_median" | bc -l)"
bare_median=$(median "$bare_results")
printf '| Reef native, virtual link, no offloads | %s | %s | %.2f× |\n' "$bare_median" "$(spread "$bare_results")" \
  "$(echo "$bare_median / $linux_median" | bc -l)"
printf '| Linux, veth between namespaces (iperf3) | %s | %s | 1.00× |\n' "$linux_median" "$(spread "$linux_results")"
ratios=$(paste -d' ' <(sed '/^$/d' <<<"$reef_results") <(sed '/^$/d' <<<"$linux_results") |
  awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | sort -g)
printf 'paired ratios (Reef/Linux, run by run): median %s, min %s, max %s\n' \
  "$(awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }' <<<"$ratios")" "$(head -1 <<<"$ratios")" "$(tail -1 <<<"$ratios")"
printf 'Reef ns per segment on the wire (per MSS of payload): median %s (%s) with offloads, %s (%s) without\n' \
  "$(median "$ns_results")" "$(spread "$ns_results")" "$(median "$bare_ns_results")" "$(spread "$bare_ns_results")"
echo "(one CPU ($cpu) for both ends in each; Reef $TCP_BULK_BYTES bytes a run, Linux ${linux_seconds} s a run; $runs runs)"
