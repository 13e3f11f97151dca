"""Sends GET /hello to an HTTP server, pipelined, and reads every reply.

    pipelined_client.py HOST PORT TOTAL CONNECTIONS DEPTH

TOTAL requests over CONNECTIONS connections, DEPTH requests per write; each
connection waits for its DEPTH replies before it writes again. Prints how
many requests were answered. For tools/bench/httpd_instructions.sh: a
client that costs the server the same work every run.
"""
import socket
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    total, connections, depth = (int(a) for a in sys.argv[3:6])
    batch = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * depth
    socks = [socket.create_connection((host, port), timeout=120) for _ in range(connections)]
    answered = 0
    for _ in range(total // (connections * depth)):
        for s in socks:
            s.sendall(batch)
        for s in socks:
            got = b""
            while got.count(b"HTTP/1.1 200") < depth or not got.endswith(b"Hello, world!\n"):
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit("the server closed a connection after %d replies" % answered)
                got += chunk
            answered += depth
    for s in socks:
        s.close()
    print(answered)


if __name__ == "__main__":
    main()
