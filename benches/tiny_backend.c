/* The smallest HTTP/1.1 instance for benches/probes.sh: listens on the port given as its only
 * argument and answers every request on every connection (keep-alive) with "200 ok", in one
 * thread with poll(2). About 1 MB of memory, so a thousand fit where a thousand demo-services
 * would not. Bench fixture only; not part of cutover. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 64

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 64)) return 1;
  struct pollfd fds[MAXFD];
  int n = 1;
  fds[0].fd = l;
  fds[0].events = POLLIN;
  static const char ok[] = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
  char buf[4096];
  for (;;) {
    if (poll(fds, n, -1) < 0) continue;
    if ((fds[0].revents & POLLIN) && n < MAXFD) {
      int c = accept(l, 0, 0);
      if (c >= 0) {
        fds[n].fd = c;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        n++;
      }
    }
    for (int i = 1; i < n; i++) {
      if (!fds[i].revents) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      int heads = 0;
      for (ssize_t k = 3; k < r; k++)
        if (!memcmp(buf + k - 3, "\r\n\r\n", 4)) heads++;
      for (; heads > 0; heads--) write(fds[i].fd, ok, sizeof ok - 1);
      if (r <= 0) {
        close(fds[i].fd);
        fds[i--] = fds[--n];
      }
    }
  }
}
