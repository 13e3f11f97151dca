#!/bin/bash
# GET /metrics end to end: httpd on SHARDS shards with BACKEND (the
# arguments), its metrics on --port and on --prometheus-port. The text is
# checked by outside parsers (Debian's promtool, `promtool check metrics`,
# and python3-prometheus-client's parser): every sample has a shard label
# and every metric one sample per shard; 100 requests move the counters and
# the latency histogram by exactly 100; the name filter keeps only what it
# names; bad requests get their error. Every client has a timeout; the
# server is stopped with SIGTERM and must log "stopped".
set -uo pipefail
shards=${1:-1}
backend=${2:-io_uring}
httpd=$PWD/http/httpd
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for tool in promtool /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: needs $tool (tools/install_host_tools.sh installs it)"; exit 1; }
done

"$httpd" --smp "$shards" --reactor-backend "$backend" --port 0 --prometheus-port 0 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  grep -q "metrics on http://" "$work/log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
main=$(sed -n 's|.*serving on http://\([^/]*\)/.*|\1|p' "$work/log" | head -1)
metrics=$(sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' "$work/log" | head -1)
if [ -z "$main" ] || [ -z "$metrics" ]; then
  echo "FAIL: httpd did not start serving:"
  cat "$work/log"
  exit 1
fi

/usr/bin/python3 - "$main" "$metrics" "$shards" "$work" <<'ENDOFPYTHON'
import http.client, subprocess, sys
from prometheus_client.parser import text_string_to_metric_families

main, metrics, shards, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)

def get(where, path, method="GET"):
    host, port = where.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=20)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body

def scrape(where=metrics, query=""):
    status, content_type, text = get(where, "/metrics" + query)
    check(status == 200, "GET /metrics%s on %s: status %d" % (query, where, status))
    check((content_type or "").startswith("text/plain; version=0.0.4"), "Content-Type %r" % content_type)
    return text

def value(families, name, **labels):
    # The sum over shards of the samples of `name` with these labels.
    total = 0
    for f in families:
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total

def parse(text):
    return list(text_string_to_metric_families(text))

for where in (main, metrics):
    text = scrape(where)
    with open(work + "/scrape.txt", "w") as f:
        f.write(text)
    promtool = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                              timeout=60)
    check(promtool.returncode == 0, "promtool check metrics on %s: %s%s" % (where, promtool.stdout, promtool.stderr))
    families = parse(text)
    check(len(families) >= 5, "only %d families" % len(families))
    for f in families:
        by_series = {}
        for s in f.samples:
            check("shard" in s.labels, "%s %s has no shard label" % (s.name, s.labels))
            if "peer" in s.labels:
                # Between shards: each shard has one sample per other shard.
                key = (s.name, s.labels.get("shard"))
                by_series.setdefault(key, []).append(s.labels["peer"])
                continue
            key = (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "shard")))
            by_series.setdefault(key, []).append(s.labels.get("shard"))
        for key, seen in by_series.items():
            if len(key) == 2 and isinstance(key[1], str):
                want = [str(n) for n in range(shards) if str(n) != key[1]]
                check(sorted(seen) == want, "%s: peers %s, not every other shard" % (key, seen))
                continue
            check(sorted(seen) == [str(n) for n in range(shards)],
                  "%s: shards %s, not one sample per shard" % (key, seen))
    names = {s.name for f in families for s in f.samples}
    for name in ("reef_reactor_tasks_run_total", "reef_reactor_sleep_seconds_total", "reef_memory_allocated_bytes",
                 "reef_http_replies_total"):
        check(name in names, "no %s" % name)
    if shards > 1:
        check("reef_smp_messages_sent_total" in names, "no smp metrics on %d shards" % shards)

# 100 requests on one keep-alive connection to the main port; the scrapes
# go to the metrics port, whose server is labelled apart.
before = parse(scrape())
host, port = main.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=20)
for _ in range(100):
    c.request("GET", "/hello")
    r = c.getresponse()
    check(r.status == 200 and r.read() == b"Hello, world!\n", "GET /hello")
c.close()
after = parse(scrape())
grew = value(after, "reef_http_replies_total", server="http", **{"class": "2xx"}) - \
       value(before, "reef_http_replies_total", server="http", **{"class": "2xx"})
check(grew == 100, "2xx replies grew by %s, not 100" % grew)
grew = value(after, "reef_http_request_duration_seconds_count", server="http") - \
       value(before, "reef_http_request_duration_seconds_count", server="http")
check(grew == 100, "the latency histogram's count grew by %s, not 100" % grew)
inf = value(after, "reef_http_request_duration_seconds_bucket", server="http", le="+Inf")
count = value(after, "reef_http_request_duration_seconds_count", server="http")
check(inf == count, "le=+Inf bucket %s, count %s" % (inf, count))
check(value(after, "reef_http_bytes_received_total", server="http") >= 100 * len("GET /hello HTTP/1.1\r\n"),
      "bytes received too few")
check(value(after, "reef_http_bytes_sent_total", server="http") -
      value(before, "reef_http_bytes_sent_total", server="http") >= 100 * len("HTTP/1.1 200 OK\r\n\r\nHello, world!\n"),
      "bytes sent too few")
check(value(after, "reef_reactor_tasks_run_total") > value(before, "reef_reactor_tasks_run_total"),
      "the reactors ran no tasks")
check(value(after, "reef_reactor_sleep_seconds_total") >= value(before, "reef_reactor_sleep_seconds_total"),
      "sleep time went back")

# The name filter: only what it names; a filter nothing matches gives an
# empty scrape, a garbage one too.
filtered = parse(scrape(query="?name=reef_http_replies"))
check([f.name for f in filtered] == ["reef_http_replies"], "filter kept %s" % [f.name for f in filtered])
check(scrape(query="?name=nothing_here") == "", "a filter that matches nothing")
check(scrape(query="?name=%00%ff%22") == "", "a garbage filter")
check(len(parse(scrape(query="?name=re"))) == len(parse(scrape())), "a filter shorter than the prefix")
status, _, _ = get(metrics, "/metrics", method="POST")
check(status == 405, "POST /metrics: %d" % status)
status, _, _ = get(metrics, "/hello")
check(status == 404, "the metrics port serves only /metrics: %d" % status)
sys.exit(1 if failures else 0)
ENDOFPYTHON
rc=$?

kill -TERM "$pid"
for _ in $(seq 300); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: httpd did not stop on SIGTERM"
  rc=1
fi
wait "$pid" 2>/dev/null
pid=
if ! grep -q "stopped" "$work/log"; then
  echo "FAIL: httpd did not log that it stopped:"
  cat "$work/log"
  rc=1
fi
[ "$rc" == 0 ] && echo PASS
exit "$rc"
