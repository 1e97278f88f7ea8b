/* t_client.c — see t_client.h. */
#include "support/t_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "support/t_time.h"

int t_tcp_connect(int port, int rcv_s, int snd_s) {
  struct sockaddr_in sa;
  struct timeval rcv = {rcv_s, 0}, snd = {snd_s, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), e;

  if (fd < 0) {
    return -1;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (rcv_s) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
  }
  if (snd_s) {
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Connects |c| (emptied first) to |port|; the socket timeouts as for
 * t_tcp_connect(). Returns 0 or -1 (printed). */
static int cli_connect(t_cli *c, int port, int timeout_s) {
  memset(c, 0, sizeof(*c));
  c->fd = t_tcp_connect(port, timeout_s, timeout_s);
  if (c->fd < 0) {
    printf("#   connect: %s\n", strerror(errno));
    return -1;
  }
  return 0;
}

int t_cli_open(t_cli *c, int port, const char *alpn) {
  unsigned char wire[32];

  /* Blocking for the handshake, bounded by socket timeouts. */
  if (cli_connect(c, port, 3) != 0) {
    return -1;
  }
  c->ctx = SSL_CTX_new(TLS_client_method());
  c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
  if (!c->ssl) {
    return -1;
  }
  if (alpn) {
    size_t n = strlen(alpn);
    wire[0] = (unsigned char)n;
    memcpy(wire + 1, alpn, n);
    SSL_set_alpn_protos(c->ssl, wire, (unsigned)(n + 1));
  }
  SSL_set_fd(c->ssl, c->fd);
  if (SSL_connect(c->ssl) != 1) {
    printf("#   TLS handshake failed\n");
    ERR_clear_error();
    return -1;
  }
  if (alpn) {
    const unsigned char *sel = NULL;
    unsigned int sl = 0;
    SSL_get0_alpn_selected(c->ssl, &sel, &sl);
    if (sl != strlen(alpn) || memcmp(sel, alpn, sl) != 0) {
      printf("#   ALPN %s not selected\n", alpn);
      return -1;
    }
  }
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

int t_cli_open_plain(t_cli *c, int port) {
  if (cli_connect(c, port, 0) != 0) {
    return -1;
  }
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

void t_cli_close(t_cli *c) {
  if (c->ssl) {
    SSL_free(c->ssl);
  }
  if (c->ctx) {
    SSL_CTX_free(c->ctx);
  }
  if (c->fd > 0) {
    close(c->fd);
  }
  memset(c, 0, sizeof(*c));
  c->fd = -1;
}

int t_wait_fd(int fd, short ev, double deadline) {
  struct pollfd p = {fd, ev, 0};
  double left = deadline - t_now_ms();

  if (left <= 0) {
    return 0;
  }
  return poll(&p, 1, (int)left + 1) > 0;
}

/* What to do after an SSL call returned |rv| <= 0: 1 to retry (the socket
 * became ready before |deadline|), 0 on timeout, -1 when the connection
 * failed or closed (the error queue cleared). */
static int ssl_retry(t_cli *c, int rv, double deadline) {
  switch (SSL_get_error(c->ssl, rv)) {
  case SSL_ERROR_WANT_READ:
    return t_wait_fd(c->fd, POLLIN, deadline);
  case SSL_ERROR_WANT_WRITE:
    return t_wait_fd(c->fd, POLLOUT, deadline);
  default: /* close_notify, EOF, reset */
    ERR_clear_error();
    return -1;
  }
}

int t_cli_send(t_cli *c, const void *data, size_t n) {
  const char *p = data;
  double deadline = t_now_ms() + 3000;

  while (n && !c->ssl) { /* cleartext (h2c) */
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!t_wait_fd(c->fd, POLLOUT, deadline)) {
        return -1;
      }
    } else {
      c->closed = 1;
      return -1;
    }
  }
  while (n) {
    int w = SSL_write(c->ssl, p, (int)(n > 16384 ? 16384 : n));
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (ssl_retry(c, w, deadline) != 1) {
      return -1;
    }
  }
  return 0;
}

int t_cli_sends(t_cli *c, const char *s) {
  return t_cli_send(c, s, strlen(s));
}

int t_cli_fill(t_cli *c, double deadline) {
  for (;;) {
    size_t room;
    int n, rv;

    if (c->len >= sizeof(c->buf) - 1) {
      return -1;
    }
    room = sizeof(c->buf) - 1 - c->len;
    if (!c->ssl) { /* cleartext (h2c) */
      ssize_t r = recv(c->fd, c->buf + c->len, room, 0);
      if (r > 0) {
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        return 1;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!t_wait_fd(c->fd, POLLIN, deadline)) {
          return -1;
        }
        continue;
      }
      c->closed = 1;
      return 0;
    }
    n = SSL_read(c->ssl, c->buf + c->len, (int)room);
    if (n > 0) {
      c->len += (size_t)n;
      c->buf[c->len] = '\0';
      return 1;
    }
    rv = ssl_retry(c, n, deadline);
    if (rv == 0) {
      return -1;
    }
    if (rv < 0) {
      c->closed = 1;
      return 0;
    }
  }
}
