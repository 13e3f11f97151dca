// The upper bound the kernel allows for tools/bench/memcached_vs_memcached.sh:
// one thread, epoll (level-triggered), memcached's text protocol cut to what
// memcaslap sends. Every key of a "get" gets one fixed 1024-byte value (no
// table, no lookup), a "set" has its data block skipped and gets "STORED";
// anything else gets "ERROR". Requests are framed across reads; the replies
// of one read go in one write. Connections are blocking sockets, read only
// when epoll says so, so that a reply is never cut short by a full send
// buffer.
//
//   cc -O2 -o memcached_minimal_responder memcached_minimal_responder.c
//   ./memcached_minimal_responder 18113
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kMaxConnections = 65536, kInputMax = 1 << 16, kValueBytes = 1024 };

// Per connection: what was read and not yet used, and how many bytes of a
// data block are still to skip.
struct connection {
  char* input;
  size_t used;
  size_t skip;
};
static struct connection connections[kMaxConnections];
static char value[kValueBytes];
static char out[1 << 20];

// Appends `n` bytes to the reply being built; 0 when it does not fit.
static size_t out_len;
static int put(const char* bytes, size_t n) {
  if (out_len + n > sizeof out) return 0;
  memcpy(out + out_len, bytes, n);
  out_len += n;
  return 1;
}

// Answers every complete request in c's input; returns the bytes used.
static size_t serve(struct connection* c) {
  size_t pos = 0;
  for (;;) {
    if (c->skip > 0) {
      size_t take = c->used - pos < c->skip ? c->used - pos : c->skip;
      pos += take;
      c->skip -= take;
      if (c->skip > 0) return pos;
    }
    char* line = c->input + pos;
    char* end = memchr(line, '\n', c->used - pos);
    if (end == NULL) return pos;
    size_t length = (size_t)(end - line) + 1;
    pos += length;
    if (length > 4 && memcmp(line, "get ", 4) == 0) {
      char* key = line + 4;
      char* stop = end - (end > line && end[-1] == '\r');
      while (key < stop) {
        char* space = memchr(key, ' ', (size_t)(stop - key));
        char* key_end = space != NULL ? space : stop;
        char header[300];
        int n = snprintf(header, sizeof header, "VALUE %.*s 0 %d\r\n", (int)(key_end - key), key, kValueBytes);
        if (!put(header, (size_t)n) || !put(value, kValueBytes) || !put("\r\n", 2)) return pos;
        key = key_end + 1;
      }
      put("END\r\n", 5);
    } else if (length > 4 && memcmp(line, "set ", 4) == 0) {
      // set <key> <flags> <exptime> <bytes>: the block and its "\r\n" skipped.
      const char* bytes = end;
      while (bytes > line && bytes[-1] != ' ') --bytes;
      c->skip = strtoul(bytes, NULL, 10) + 2;
      put("STORED\r\n", 8);
    } else {
      put("ERROR\r\n", 7);
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  memset(value, 'v', sizeof value);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
    perror("bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int s;
        while ((s = accept4(listener, NULL, NULL, 0)) >= 0) {
          if (s >= kMaxConnections || (connections[s].input == NULL && !(connections[s].input = malloc(kInputMax)))) {
            close(s);
            continue;
          }
          setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          connections[s].used = 0;
          connections[s].skip = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd == listener ? s : fd};
          epoll_ctl(ep, EPOLL_CTL_ADD, s, &cev);
        }
        continue;
      }
      struct connection* c = &connections[fd];
      ssize_t got = read(fd, c->input + c->used, kInputMax - c->used);
      if (got <= 0) {
        close(fd);
        continue;
      }
      c->used += (size_t)got;
      out_len = 0;
      size_t used = serve(c);
      memmove(c->input, c->input + used, c->used - used);
      c->used -= used;
      if (c->used == kInputMax) {  // a line longer than the buffer: not memcaslap's
        close(fd);
        continue;
      }
      // Blocking: write() takes it all, or fails when the peer is gone.
      if (out_len > 0 && write(fd, out, out_len) < 0) close(fd);
    }
  }
}
