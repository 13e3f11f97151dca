// The upper bound the kernel allows for tools/bench/httpd_vs_nginx.sh: one
// thread, epoll (level-triggered); for every read it counts the request
// ends ("\r\n\r\n", also across reads) and writes that many copies of one
// fixed reply. No parsing, no Date, no routes, no timeouts. Connections are
// blocking sockets, read only when epoll says so, so that a reply is never
// cut short by a full send buffer.
//
//   cc -O2 -o minimal_responder minimal_responder.c && ./minimal_responder 18083
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

static const char kReply[] =
    "HTTP/1.1 200 OK\r\nServer: minimal\r\nContent-Type: text/plain\r\n"
    "Content-Length: 14\r\n\r\nHello, world!\n";

enum { kMaxConnections = 65536, kMaxBatch = 256 };
static unsigned match[kMaxConnections];  // how much of "\r\n\r\n" each fd has seen

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
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
  static char in[65536];
  static char out[sizeof kReply * kMaxBatch];
  for (int i = 0; i < kMaxBatch; ++i) memcpy(out + i * (sizeof kReply - 1), kReply, sizeof kReply - 1);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int c;
        while ((c = accept4(listener, NULL, NULL, 0)) >= 0) {
          if (c >= kMaxConnections) {
            close(c);
            continue;
          }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          match[c] = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t got = read(fd, in, sizeof in);
      if (got <= 0) {
        close(fd);
        continue;
      }
      static const char kEnd[] = "\r\n\r\n";
      int requests = 0;
      unsigned m = match[fd];
      for (ssize_t j = 0; j < got; ++j) {
        m = in[j] == kEnd[m] ? m + 1 : (in[j] == '\r' ? 1 : 0);
        if (m == 4) {
          ++requests;
          m = 0;
        }
      }
      match[fd] = m;
      while (requests > 0) {
        int batch = requests < kMaxBatch ? requests : kMaxBatch;
        // Blocking: write() takes it all, or fails when the peer is gone.
        if (write(fd, out, (size_t)batch * (sizeof kReply - 1)) < 0) break;
        requests -= batch;
      }
    }
  }
}
