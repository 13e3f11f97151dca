// The upper bound the kernel allows for tools/bench/memcached_vs_memcached.sh:
// one thread, epoll (level-triggered), memcached's text protocol cut to what
// memcaslap sends. Every key of a "get" gets one fixed 1024-byte value (no
// table, no lookup), a "set" has its data block skipped and gets "STORED";
// anything else gets "ERROR". Requests are framed across reads; the replies
// of one read go in one write (several, if they pass the 1 MiB reply
// buffer: a line whose reply does not fit waits for the next; one whose
// reply alone is larger closes its connection). A key over 250 bytes gets
// "CLIENT_ERROR". Connections are blocking sockets, read
// only when epoll says so, so that a reply is never cut short by a full
// send buffer; a line longer than the input buffer closes its connection.
//
//   cc -O2 -o memcached_minimal_responder memcached_minimal_responder.c
//   ./memcached_minimal_responder 18113
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  connections_max = 65536,
  input_bytes_max = 1 << 16,
  output_bytes_max = 1 << 20,
  value_bytes = 1024,
  key_bytes_max = 250
};

// Per connection: what was read and not yet used, and how many bytes of a
// data block are still to skip.
struct connection {
  char* input;
  size_t used;
  size_t skip;
};
static struct connection connections[connections_max];
static char value[value_bytes];
static char out[output_bytes_max];

// Appends `n` bytes to the reply being built; 0 when it does not fit.
static size_t out_len;
static int put(const char* bytes, size_t n) {
  if (out_len + n > sizeof out) return 0;
  memcpy(out + out_len, bytes, n);
  out_len += n;
  return 1;
}

// Answers the complete requests in c's input whose replies fit in `out`;
// returns the bytes used, or too_large for a line whose reply alone does
// not fit.
static const size_t too_large = (size_t)-1;
static size_t serve(struct connection* c) {
  size_t pos = 0;
  for (;;) {
    const size_t line_pos = pos, line_out = out_len;
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
    int fits = 1;
    size_t skip = 0;
    if (length > 4 && memcmp(line, "get ", 4) == 0) {
      char* key = line + 4;
      char* stop = end - (end > line && end[-1] == '\r');
      int refused = 0;
      while (fits && !refused && key < stop) {
        char* space = memchr(key, ' ', (size_t)(stop - key));
        char* key_end = space != NULL ? space : stop;
        if (key_end - key > key_bytes_max) {
          fits = put("CLIENT_ERROR bad command line format\r\n", 38);
          refused = 1;
          break;
        }
        char header[key_bytes_max + 32];
        int n = snprintf(header, sizeof header, "VALUE %.*s 0 %d\r\n", (int)(key_end - key), key, value_bytes);
        fits = put(header, (size_t)n) && put(value, value_bytes) && put("\r\n", 2);
        key = key_end + 1;
      }
      fits = fits && (refused || put("END\r\n", 5));
    } else if (length > 4 && memcmp(line, "set ", 4) == 0) {
      // set <key> <flags> <exptime> <bytes>: the block and its "\r\n" skipped.
      const char* bytes = end;
      while (bytes > line && bytes[-1] != ' ') --bytes;
      skip = strtoul(bytes, NULL, 10) + 2;
      fits = put("STORED\r\n", 8);
    } else {
      fits = put("ERROR\r\n", 7);
    }
    if (!fits) {
      // Its reply waits for the next pass, with what follows it.
      if (line_out == 0) return too_large;
      out_len = line_out;
      return line_pos;
    }
    pos += length;
    c->skip = skip;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  memset(value, 'v', sizeof value);
  signal(SIGPIPE, SIG_IGN);  // a peer gone: write() fails instead
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (listener < 0) {
    perror("socket");
    return 1;
  }
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
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) {
    perror("epoll");
    return 1;
  }
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int s;
        while ((s = accept4(listener, NULL, NULL, 0)) >= 0) {
          if (s >= connections_max || (connections[s].input == NULL && !(connections[s].input = malloc(input_bytes_max)))) {
            close(s);
            continue;
          }
          setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          connections[s].used = 0;
          connections[s].skip = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = s};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &cev) != 0) close(s);
        }
        continue;
      }
      struct connection* c = &connections[fd];
      ssize_t got = read(fd, c->input + c->used, input_bytes_max - c->used);
      if (got <= 0) {
        close(fd);
        continue;
      }
      c->used += (size_t)got;
      // Serve, write, and again while a pass leaves requests whose
      // replies did not fit.
      int open = 1;
      for (;;) {
        out_len = 0;
        size_t used = serve(c);
        if (used == too_large) {
          open = 0;
          break;
        }
        memmove(c->input, c->input + used, c->used - used);
        c->used -= used;
        // Blocking: write() takes it all, or fails when the peer is gone.
        if (out_len > 0 && write(fd, out, out_len) < 0) {
          open = 0;
          break;
        }
        if (used == 0 || out_len == 0) break;
      }
      if (open && c->used == input_bytes_max) open = 0;  // a line longer than the buffer
      if (!open) close(fd);
    }
  }
}
