#!/usr/bin/python3
"""The size-shifting memory test of a memcached server (issue 14).

Fills the server to its memory limit with 100-byte values, rewrites the
same keys with 1000-byte values, then with 300-byte values. After each
phase it prints how many items the server holds (stats curr_items) and the
fraction of the memory limit (stats limit_maxbytes) that holds live keys
and values (items held x (key + value bytes)): the same measure for any
server, whatever its bookkeeping. Writes go pipelined with noreply
(pymemcache's set_many), then a get waits until the server has taken them.

Usage: memcached_memory.py HOST PORT LABEL. Prints one line per phase:
"LABEL phase=<size> items=<n> live_fraction=<f>", and a last line with the
items after the last phase.
"""
import sys
import time

from pymemcache.client.base import Client

host, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = Client((host, port), connect_timeout=5, timeout=60)
client.flush_all()
time.sleep(1.1)  # flush_all is by the second on memcached: start past it
limit = int(client.stats()[b"limit_maxbytes"])
key_bytes = len("item:%08d" % 0)
# Enough keys to fill the limit with the smallest values, twice over.
keys = ["item:%08d" % i for i in range(2 * limit // 100)]
batch = 500
last = 0
for size in (100, 1000, 300):
    value = b"v" * size
    for start in range(0, len(keys), batch):
        client.set_many({k: value for k in keys[start:start + batch]}, noreply=True)
    client.get(keys[0])  # everything before it has been taken
    stats = client.stats()
    items = int(stats[b"curr_items"])
    live = items * (key_bytes + size) / limit
    print("%s phase=%d items=%d live_fraction=%.3f evictions=%d" %
          (label, size, items, live, int(stats[b"evictions"])), flush=True)
    last = items
print("%s last_phase_items=%d" % (label, last))
