#!/usr/bin/python3
"""Reef's memcached through outside clients: python3-pymemcache for the
classic commands and statistics, raw sockets for what pymemcache 3.5 does
not speak (the meta commands, UDP, bad input).

Usage: client_test.py HOST TCP_PORT UDP_PORT SERVER_PID. Prints each check;
exits 1 at the first failure, naming it.
"""
import os
import socket
import sys
import time

from pymemcache.client.base import Client

HOST, PORT, UDP_PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def check(what, ok, detail=""):
    if not ok:
        print("FAILED: %s %s" % (what, detail))
        sys.exit(1)
    print("ok: %s" % what)


def raw(data, wait=0.3, until=None):
    """Sends `data` on a new connection; returns what comes back. With
    `until`, reads until the reply ends with it (or the connection closes,
    or 20 s pass: a sanitized server on a loaded machine may be slow);
    without, until `wait` seconds pass with nothing new."""
    s = socket.create_connection((HOST, PORT))
    s.sendall(data)
    out = b""
    deadline = time.time() + 20
    try:
        while time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()) if until is not None else wait)
            chunk = s.recv(1 << 20)
            if not chunk:
                out += b"<closed>"
                break
            out += chunk
            if until is not None and out.endswith(until):
                break
    except socket.timeout:
        pass
    s.close()
    return out


def raw_is(data, want):
    """Whether `data` gets exactly `want` back."""
    return raw(data, until=want) == want


def read_until(s, end):
    out = b""
    while not out.endswith(end):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        out += chunk
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


client = Client((HOST, PORT), connect_timeout=5, timeout=10)
client.flush_all()

# Keys spread over every shard: a multi-key get asks them all and answers
# in the order asked.
pairs = {"key:%d" % i: ("value %d" % i).encode() for i in range(300)}
check("set_many", client.set_many(pairs, noreply=False) == [])
got = client.get_many(list(pairs))
check("get_many of 300 keys", got == pairs, "missing %d" % (len(pairs) - len(got)))
keys = ["key:%d" % i for i in range(299, -1, -3)] + ["absent"]
reply = raw(("get " + " ".join(keys) + "\r\n").encode(), until=b"END\r\n")
order = [line.split()[1].decode() for line in reply.split(b"\r\n") if line.startswith(b"VALUE")]
check("multi-get replies in the order asked", order == keys[:-1], repr(order[:5]))
check("multi-get ends with END", reply.endswith(b"END\r\n"))

value, cas = client.gets("key:1")
check("gets", value == b"value 1" and cas is not None)
check("cas with the right token", client.cas("key:1", b"new", cas) is True)
check("cas with a stale token", client.cas("key:1", b"newer", cas) is False)
client.set("n", b"41")
check("incr", client.incr("n", 1) == 42)
check("decr below zero", client.decr("n", 100) == 0)
check("touch", client.touch("n", 100) is True)
check("version", client.version().startswith(b"1.6"))

stats = client.stats()
check("stats curr_items", stats[b"curr_items"] >= 301, repr(stats.get(b"curr_items")))
check("stats threads is the shard count", stats[b"threads"] >= 1)
check("stats lsa_segments", stats[b"lsa_segments"] > 0)
check("stats get_hits", stats[b"get_hits"] >= 300)
settings = client.stats("settings")
check("stats settings item_size_max", settings[b"item_size_max"] == 1048576, repr(settings))
check("stats items", client.stats("items")[b"items:1:number"] >= 301)
check("stats slabs", client.stats("slabs")[b"total_malloced"] > 0)

# Values up to the item size limit, in one piece and across shards.
big = os.urandom(1000 * 1000)
client.set("big", big)
check("a 1 MB value round-trips", client.get("big") == big)
check("a value over -I is refused", raw(b"set huge 0 0 1048576\r\n" + b"x" * 1048576 + b"\r\n", until=b"\r\n").startswith(
    b"SERVER_ERROR object too large for cache"))

# The meta commands (pymemcache 3.5 has none): raw.
check("mn", raw_is(b"mn\r\n", b"MN\r\n"))
check("ms/mg", raw_is(b"ms meta 5 F3 T100\r\nhello\r\nmg meta v f t k O7\r\n", b"HD\r\nVA 5 f3 t100 kmeta O7\r\nhello\r\n"))
check("mg q on a miss", raw_is(b"mg nothing v q\r\nmn\r\n", b"MN\r\n"))
check("ma", raw_is(b"ma counter N0 J10 v\r\nma counter D5 v\r\nma counter MD D100 v\r\n", b"VA 2\r\n10\r\nVA 2\r\n15\r\nVA 1\r\n0\r\n"))
check("md", raw_is(b"md meta\r\nmg meta v\r\n", b"HD\r\nEN\r\n"))
check("mg with a base64 key", raw_is(b"ms AAEC 1 b\r\nx\r\nmg AAEC b k v\r\n", b"HD\r\nVA 1 kAAEC b\r\nx\r\n"))
pipelined = b"".join(b"mg key:%d v q k\r\n" % i for i in range(50)) + b"mn\r\n"
reply = raw(pipelined, until=b"MN\r\n")
check("pipelined mg q ... mn", reply.count(b"VA ") == 50 and reply.endswith(b"MN\r\n"))

# UDP: memcached's frame header; a reply over 1400 bytes comes in pieces.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)


def udp(payload, request_id=7, total=1):
    u.sendto(request_id.to_bytes(2, "big") + b"\x00\x00" + total.to_bytes(2, "big") + b"\x00\x00" + payload,
             (HOST, UDP_PORT))
    first, _ = u.recvfrom(65536)
    count = int.from_bytes(first[4:6], "big")
    datagrams = [first] + [u.recvfrom(65536)[0] for _ in range(count - 1)]
    for d in datagrams:
        if int.from_bytes(d[0:2], "big") != request_id:
            raise AssertionError("a reply with request id %r" % d[0:2])
    datagrams.sort(key=lambda d: int.from_bytes(d[2:4], "big"))
    return b"".join(d[8:] for d in datagrams), count


body = b"u" * 5000
check("UDP set", udp(b"set udp 0 0 5000\r\n" + body + b"\r\n")[0] == b"STORED\r\n")
reply, count = udp(b"get udp\r\n", request_id=9)
check("UDP get over 4 datagrams", count == 4 and reply == b"VALUE udp 0 5000\r\n" + body + b"\r\nEND\r\n",
      "%d datagrams" % count)
check("UDP multi-packet request refused",
      udp(b"get udp\r\n", total=2)[0] == b"SERVER_ERROR multi-packet request not supported\r\n")
check("UDP meta", udp(b"mg udp s v q\r\nmn\r\n")[0].endswith(b"MN\r\n"))

# Bad input: memcached's errors, and the server keeps serving.
check("a 2 GB length", raw_is(b"set a 0 0 2147483648\r\n", b"CLIENT_ERROR bad command line format\r\n"))
check("a short data block waits, a long one is refused",
      raw_is(b"set a 0 0 3\r\nabcdef\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"))
check("a key over 250 bytes", raw_is(b"get " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"))
check("keys with control characters are keys", raw_is(b"set a\x01b 0 0 1\r\nx\r\nget a\x01b\r\n", b"STORED\r\nVALUE a\x01b 0 1\r\nx\r\nEND\r\n"))
check("a line that never ends closes", raw(b"x" * 5000, until=b"<never>").endswith(b"<closed>"))
garbage = raw(os.urandom(1000) + b"\r\n", wait=2)
check("binary garbage gets errors or a close", b"ERROR" in garbage or garbage.endswith(b"<closed>"), repr(garbage[:80]))
check("still serving after all that", client.get("key:2") == b"value 2")

# A client that never reads its replies: the server stops reading its
# requests, and its memory stays bounded.
client.set("hundred_k", b"h" * 100000)
before = rss_kib(PID)
slow = socket.create_connection((HOST, PORT))
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
slow.setblocking(False)
sent = 0
request = b"get hundred_k\r\n" * 64
deadline = time.time() + 3
while time.time() < deadline and sent < 20000 * len(b"get hundred_k\r\n"):
    try:
        sent += slow.send(request)
    except BlockingIOError:
        time.sleep(0.01)
time.sleep(0.5)
grown = rss_kib(PID) - before
asked = sent // len(b"get hundred_k\r\n")
check("a slow reader holds bounded memory", grown < 64 * 1024,
      "asked for %d x 100 KB, server grew by %d KiB" % (asked, grown))
check("the slow reader asked for far more than that", asked * 100 > 2 * 64 * 1024, "asked %d" % asked)
slow.close()
check("still serving beside the slow reader", client.get("key:3") == b"value 3")

client.flush_all()
check("flush_all empties every shard", client.get_many(list(pairs)[:50]) == {})
print("all checks passed")
