// UDP round trips, one at a time: sends a datagram, waits for its echo,
// COUNT times; prints "rtt_per_second <n>". For tools/bench/
// udp_echo_tap_vs_veth.sh.
//
//   udp_rtt_client ADDRESS PORT COUNT [BYTES]
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s ADDRESS PORT COUNT [BYTES]\n", argv[0]);
    return 2;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof(to));
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
    return 2;
  }
  const long count = atol(argv[3]);
  const size_t bytes = argc > 4 ? (size_t)atol(argv[4]) : 32;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval timeout = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(s, (struct sockaddr*)&to, sizeof(to)) != 0) {
    perror("connect");
    return 1;
  }
  char out[65536], in[65536];
  memset(out, 'x', sizeof(out));
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long lost = 0;
  for (long i = 0; i < count; ++i) {
    memcpy(out, &i, sizeof(i));
    if (send(s, out, bytes, 0) < 0) {
      perror("send");
      return 1;
    }
    for (;;) {
      ssize_t n = recv(s, in, sizeof(in), 0);
      if (n < 0) {
        ++lost;  // timed out: send the next
        break;
      }
      if ((size_t)n == bytes && memcmp(in, &i, sizeof(i)) == 0) break;  // not a late echo of an earlier one
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  const double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
  printf("rtt_per_second %.0f lost %ld\n", (double)(count - lost) / seconds, lost);
  return lost > count / 100 ? 1 : 0;
}
