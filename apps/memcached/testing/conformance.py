#!/usr/bin/python3
"""Sends the same bytes to Debian's memcached and to Reef's, and compares
the replies, byte for byte once the values that may differ are masked (CAS
numbers, "me" details, the version).

Usage: conformance.py MEMCACHED_PORT REEF_PORT. Each case runs on a fresh
connection after flush_all on both; prints each mismatch and exits 1 if
there is any.
"""
import re
import socket
import sys
import time

LONG_KEY = b"k" * 251
CASES = [
    # Unknown and malformed commands.
    b"foo\r\n", b"\r\n", b"GET a\r\n", b"get\r\n", b" get a\r\n",
    b"set a 0 0\r\n", b"set a 0 0 -1\r\n", b"set a 0 0 2147483647\r\nxx\r\n",
    b"set a abc 0 1\r\nx\r\n", b"set a -1 0 1\r\nx\r\n", b"set a 18446744073709551616 0 1\r\nx\r\n",
    b"set a 4294967296 0 1\r\nx\r\nget a\r\n", b"set a 0 4294967297 1\r\nx\r\nget a\r\n",
    b"set a 0 2147483648 1\r\nx\r\nget a\r\n", b"set a +5 0 1\r\nx\r\nget a\r\n",
    b"set a 0 0 1 garbage\r\nx\r\nget a\r\n", b"set a\t0 0 1\r\nx\r\n",
    b"set " + LONG_KEY + b" 0 0 1\r\nx\r\n", b"get a " + LONG_KEY + b" a\r\n",
    # Data blocks of the wrong length.
    b"set a 0 0 3\r\nabcd\r\nget a\r\n", b"set a 0 0 1\r\n\r\n\r\n",
    b"set a 0 0 1\r\nx\r\nset b 0 0 2\r\nx\r\nget a b\r\n",
    # Too large for the cache (1 MiB items): skipped and refused.
    b"set a 0 0 1\r\nx\r\nset a 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\nget a\r\n",
    b"set a 0 0 2000000 noreply\r\n" + b"x" * 2000000 + b"\r\nget a\r\n",
    # Storage, retrieval, CAS.
    b"set a 5 0 3\r\nabc\r\nget a b\r\nadd a 0 0 1\r\nx\r\nadd b 0 0 1\r\ny\r\nget a b\r\n",
    b"replace zz 0 0 1\r\nx\r\nappend zz 0 0 1\r\nx\r\nprepend zz 0 0 1\r\nx\r\n",
    b"set a 3 0 1\r\nb\r\nappend a 0 0 1\r\nc\r\nprepend a 9 0 1\r\na\r\nget a\r\n",
    b"cas a 0 0 1\r\nx\r\n", b"cas zz 0 0 1 1\r\nx\r\n",
    b"set a 0 0 1\r\nx\r\ngets a\r\ncas a 0 0 1 999999\r\ny\r\n",
    b"set k 0 0 1 noreply\r\nx\r\nget k\r\n",
    # incr/decr.
    b"incr zz 1\r\n", b"set k 0 0 1\r\nx\r\nincr k 1\r\n",
    b"set n 0 0 2\r\n10\r\nincr n 18446744073709551615\r\ndecr n 100\r\nget n\r\n",
    b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\nget n\r\n",
    b"set m 0 0 3\r\n 12\r\nincr m 1\r\nset m 0 0 3\r\n12a\r\nincr m 1\r\nset m 0 0 4\r\n100 \r\nincr m 1\r\ndecr m 1\r\nget m\r\n",
    b"set n 0 0 1\r\n5\r\nincr n abc\r\nincr n -1\r\nincr n 1 2 3\r\nincr n 1 noreply\r\nget n\r\n",
    b"set n 0 0 2\r\n99\r\nincr n 1\r\nget n\r\n",
    # delete, touch, gat, flush_all.
    b"delete a 0\r\ndelete a noreply\r\ndelete a 5\r\ndelete a 0 noreply\r\n",
    b"set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\n",
    b"touch a\r\ntouch a abc\r\ntouch zz 0\r\nset a 0 0 1\r\nx\r\ntouch a 10\r\ntouch a 0 noreply\r\n",
    b"gat\r\ngat 10\r\ngat abc a\r\nset a 1 0 2\r\nhi\r\ngat 10 a zz\r\n",
    b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\nflush_all noreply\r\nflush_all 0\r\nflush_all abc\r\nflush_all 1 2 3\r\n",
    b"set a 0 -1 1\r\nx\r\nget a\r\n",
    # Misc.
    b"verbosity\r\nverbosity 1\r\nverbosity 1 noreply\r\nverbosity abc\r\nverbosity 1 2 3 4\r\n",
    b"version 1\r\nstats nonsense\r\nshutdown\r\n",
    b"quit\r\nversion\r\n",
    # Meta commands.
    b"mn\r\nmg a v\r\nmg\r\nme\r\nme zz\r\n",
    b"mg zz v q\r\nmg zz v k q O1\r\nmn\r\n",
    b"ms a 2 T0 F5\r\nhi\r\nmg a v f t s k O123 q\r\nmg a s v\r\n",
    b"ms a S2\r\nhi\r\n", b"ms a 1 q\r\nx\r\nms a 1 MX\r\nx\r\nms a 1 ME\r\nx\r\nms a 1 c k b\r\nx\r\nmn\r\n",
    b"ms a 1\r\nx\r\nms a 1 MA\r\ny\r\nms a 1 MP\r\nw\r\nmg a v\r\nms zz 1 MR\r\ny\r\n",
    b"ms a 1\r\nx\r\nms a 1 C1\r\ny\r\nms nope 1 C1\r\ny\r\n",
    b"md zz q\r\nmd zz\r\nms a 1\r\nx\r\nmd a q\r\nmd a\r\nmn\r\n",
    b"ma zz q\r\nma zz\r\nma nope N0 J5 v\r\nma nope v D3 MD\r\nma nope t\r\n",
    b"ms a 1\r\n5\r\nma a q\r\nma a v q\r\nma a C1\r\nma a v\r\nmn\r\n",
    b"ms a 1\r\nx\r\nma a\r\n",
    b"mg a v v\r\nmg a zz\r\nmg a O\r\nmg a O" + b"x" * 40 + b"\r\nmg a T\r\nmg a Tx\r\n",
    b"mg " + LONG_KEY + b" v\r\nms a -1\r\nms a abc\r\nms a\r\n",
    b"mg a N30 v t\r\nmg a N30 v t s\r\nmg a h l v\r\n",
    b"ms a 1\r\nx\r\nmd a I T30\r\nmg a v\r\nmg a v\r\n",
    b"ms r 1 T10\r\nx\r\nmg r R30\r\nmg r R30\r\n",
    b"mg YWJj b k v\r\nms YWJj 1 b\r\nz\r\nmg YWJj b k v\r\nmg !!! b v\r\nget abc\r\n",
]


def exchange(port, data, wait, want=None):
    """Sends `data` on a new connection; returns what comes back. Without
    `want`: until `wait` seconds pass with nothing new. With `want` (the
    masked reply the other server gave): until as much has come, masked,
    or the connection closed, giving a slow server (sanitized, on a loaded
    machine) up to 20 s; then `wait` more for anything past it."""
    if not want:
        want = None  # nothing to wait for: the idle rule
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    out = b""
    deadline = time.time() + 20
    enough = False
    try:
        while time.time() < deadline:
            if want is not None and not enough:
                s.settimeout(max(0.01, deadline - time.time()))
            else:
                s.settimeout(wait)
            chunk = s.recv(1 << 20)
            if not chunk:
                out += b"<closed>"
                break
            out += chunk
            if want is not None and not want.endswith(b"<closed>") and len(mask(out)) >= len(want):
                enough = True
    except socket.timeout:
        pass
    s.close()
    return out


CAS_VALUE = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)
META_CAS = re.compile(rb"( c)\d+")
ME_LINE = re.compile(rb"^ME (\S+) .*\r$", re.M)
VERSION = re.compile(rb"^VERSION .*\r$", re.M)


def mask(reply):
    reply = CAS_VALUE.sub(rb"\1 <cas>\r", reply)
    reply = META_CAS.sub(rb"\1<cas>", reply)
    reply = ME_LINE.sub(rb"ME \1 <details>\r", reply)
    return VERSION.sub(b"VERSION <v>\r", reply)


def flush(port):
    exchange(port, b"flush_all\r\n", 0.05, want=b"OK\r\n")


def main():
    theirs, ours = int(sys.argv[1]), int(sys.argv[2])
    bad = 0
    for case in CASES:
        replies = []
        # memcached's reply first (it is fast), then ours read until it is
        # as long.
        for port in (theirs, ours):
            flush(port)
            time.sleep(0.01)
            wait = 1.0 if len(case) > 100000 else 0.3
            want = replies[0] if replies else None
            replies.append(mask(exchange(port, case, 0.1 if want is not None else wait, want)))
        if replies[0] != replies[1]:
            bad += 1
            shown = case if len(case) < 300 else case[:120] + b"..." + case[-60:]
            print("MISMATCH for %r\n  memcached: %r\n  reef:      %r" % (shown, replies[0], replies[1]))
    print("%d of %d cases differ" % (bad, len(CASES)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
