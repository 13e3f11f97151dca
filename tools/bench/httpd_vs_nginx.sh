#!/usr/bin/env bash
# httpd against nginx and a minimal C responder, side by side in one run.
#
#   tools/bench/httpd_vs_nginx.sh                 # 10 s per run, 3 runs each
#   DURATION=5 RUNS=1 tools/bench/httpd_vs_nginx.sh
#   HTTPD_FLAGS=--idle-poll-time-us=0 tools/bench/httpd_vs_nginx.sh   # httpd sleeps at once when idle
#
# Each server gets CPU 0 alone (httpd: --smp 1 --cpuset 0, once per reactor
# backend; Debian's nginx: one worker, `return 200` of the same body, access
# log off, under taskset; the minimal responder from minimal_responder.c,
# compiled here, under taskset). wrk runs on CPU 1 with the same settings
# for every server (-t1 -c$CONNECTIONS -d${DURATION}s, GET /hello), once
# with plain keep-alive requests and once pipelined (a Lua script sends 16
# requests per write: with two cores, a plain client saturates before the
# server does). Prints, per server and mode, the medians over RUNS runs of
# req/s, p50, p99 and the share of its CPU the server used
# (when the client saturates first, requests per server CPU-second is the
# measure of the server), and the ratios against nginx and against the
# minimal responder. Runs rotate between servers so that
# drift on a shared machine hits all of them alike. Ports 18081-18084 on
# 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

duration=${DURATION:-10}
runs=${RUNS:-3}
connections=${CONNECTIONS:-64}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

for tool in wrk nginx cc taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (tools/bazel installs wrk and nginx)" >&2; exit 1; }
done
nginx=$(command -v nginx)

tools/bazel build --config=release //http:httpd >/dev/null 2>&1 ||
  { tools/bazel build --config=release //http:httpd; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cp bazel-bin/http/httpd "$work/httpd"
cc -O2 -o "$work/minimal_responder" tools/bench/minimal_responder.c

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:18083;
    location /hello { default_type text/plain; return 200 "Hello, world!\n"; }
  }
}
EOF
cat >"$work/pipeline.lua" <<'EOF'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/hello") end
  batch = table.concat(r)
end
request = function() return batch end
EOF

# name → command line; the port is the last word of the URL below.
declare -A start port
httpd_flags=${HTTPD_FLAGS:-}
start[reef-io_uring]="$work/httpd --smp 1 --cpuset $server_cpu --reactor-backend io_uring --port 18081 $httpd_flags"
port[reef-io_uring]=18081
start[reef-epoll]="$work/httpd --smp 1 --cpuset $server_cpu --reactor-backend epoll --port 18082 $httpd_flags"
port[reef-epoll]=18082
start[nginx]="taskset -c $server_cpu $nginx -c $work/nginx.conf -p $work"
port[nginx]=18083
start[minimal]="taskset -c $server_cpu $work/minimal_responder 18084"
port[minimal]=18084
servers=(reef-io_uring reef-epoll nginx minimal)

wait_for_port() {
  local i
  for i in $(seq 100); do
    curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$1/hello" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}

# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Prints "req/s p50 p99 cpu" for one wrk run: latencies in µs, cpu the
# share of one CPU the server used while wrk ran.
measure() {
  local url=$1 mode=$2 pid=$3 out before after
  local args=(-t1 "-c$connections" "-d${duration}s" --latency --timeout 5s)
  [ "$mode" = pipelined ] && args+=(-s "$work/pipeline.lua")
  before=$(cpu_ticks "$pid")
  out=$(timeout $((duration + 30)) taskset -c "$client_cpu" wrk "${args[@]}" "$url")
  after=$(cpu_ticks "$pid")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
    echo "wrk reported errors against $url:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '
    function us(v) {
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v
    }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.0f %.0f %.2f\n", rps, p50, p99, ticks / hz / seconds }' \
    ticks=$((after - before)) hz="$(getconf CLK_TCK)" seconds="$duration" <<<"$out"
}

declare -A results pid
for server in "${servers[@]}"; do
  ${start[$server]} >"$work/$server.log" 2>&1 &
  pid[$server]=$!   # taskset execs the server, so this is the server's pid
  pids+=($!)
  wait_for_port "${port[$server]}"
done
echo "wrk -t1 -c$connections -d${duration}s on CPU $client_cpu; servers on CPU $server_cpu; $runs run(s) each;" \
  "httpd flags: ${httpd_flags:-none}" >&2
for mode in plain pipelined; do
  for run in $(seq "$runs"); do
    for server in "${servers[@]}"; do
      r=$(measure "http://127.0.0.1:${port[$server]}/hello" "$mode" "${pid[$server]}")
      echo "  $mode run $run $server: $r" >&2
      results[$server,$mode]+="$r"$'\n'
    done
  done
done

# The median of each column over the runs, as "req/s p50 p99 cpu" (the
# latencies are medians of the runs' percentiles).
median() {
  local column out=()
  for column in 1 2 3 4; do
    out+=("$(sed '/^$/d' <<<"${results[$1,$2]}" | awk -v c="$column" '{ print $c }' | sort -g |
      awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')")
  done
  echo "${out[*]}"
}

# wrk's latency percentiles are meaningless with pipelining (it times one
# request per write and reports 0 for the upper percentiles): "n/a".
printf '\n| server | requests | req/s | p50 | p99 | server CPU | K req per CPU-second | vs nginx | vs minimal |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for mode in plain pipelined; do
  read -r nginx_rps _ _ _ <<<"$(median nginx "$mode")"
  read -r minimal_rps _ _ _ <<<"$(median minimal "$mode")"
  for server in "${servers[@]}"; do
    read -r rps p50 p99 cpu <<<"$(median "$server" "$mode")"
    awk -v s="$server" -v m="$mode" -v r="$rps" -v a="$p50" -v b="$p99" -v c="$cpu" \
      -v n="$nginx_rps" -v x="$minimal_rps" '
      function t(v) {
        if (m == "pipelined") return "n/a"
        return v >= 1000 ? sprintf("%.2f ms", v / 1000) : sprintf("%d µs", v)
      }
      BEGIN {
        printf "| %s | %s | %.1f K | %s | %s | %d%% | %.0f | %.2f× | %.2f× |\n",
               s, m, r / 1000, t(a), t(b), c * 100, (c > 0 ? r / c / 1000 : 0), r / n, r / x
      }'
  done
done

# Run by run (each run of a server is paired with the minimal responder's
# run of the same round): the spread of req/s and of the ratio.
echo
echo "req/s per run, and the ratio to the minimal responder's run of the same round: median (min-max)"
for mode in plain pipelined; do
  for server in "${servers[@]}"; do
    paste -d' ' <(sed '/^$/d' <<<"${results[$server,$mode]}" | awk '{ print $1 }') \
      <(sed '/^$/d' <<<"${results[minimal,$mode]}" | awk '{ print $1 }') |
      awk -v s="$server" -v m="$mode" '
        { rps[NR] = $1; ratio[NR] = ($2 > 0 ? $1 / $2 : 0) }
        function med(a, n,    i, j, t, b) {
          for (i = 1; i <= n; i++) b[i] = a[i]
          for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
          lo = b[1]; hi = b[n]
          return b[int((n + 1) / 2)]
        }
        END {
          r = med(rps, NR); rlo = lo; rhi = hi
          q = med(ratio, NR)
          printf "  %s %s: %.1f K (%.1f-%.1f K); %.2f× (%.2f-%.2f×)\n", s, m, r / 1000, rlo / 1000, rhi / 1000, q, lo, hi
        }'
  done
done
