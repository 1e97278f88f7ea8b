/* op_fakesrv.h — a scripted HTTP/1.1 server on 127.0.0.1 for the operator
 * tests (op_http_test.c, op_omantel_test.c): whatever an operator might do
 * wrong, on demand — answer late, never, with garbage, the wrong content
 * type, an oversized or truncated body, or close the connection.
 *
 * Header-only (static functions): include it from one test file. A thread
 * accepts; each connection gets a thread that reads requests (Content-Length
 * or chunked bodies, keep-alive) and asks the test's |handler| what to do.
 * Every wait is bounded (poll with 50 ms ticks, checking the stop flag), and
 * fs_stop() closes every socket and joins every thread. */
#ifndef OP_FAKESRV_H
#define OP_FAKESRV_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FS_MAX_CONNS 256
#define FS_REQ_MAX (512 * 1024)

typedef struct fs_request {
  char method[16];
  char path[256];
  char content_type[128];
  char authorization[1100]; /* the Authorization header, "" when none */
  char *body;               /* NUL-terminated */
  size_t body_len;
  int index; /* 0-based count of requests the server has seen */
} fs_request;

typedef enum fs_action {
  FS_ANSWER = 0, /* status + content type + body, after delay_ms */
  FS_RAW,        /* send |body| verbatim (may be garbage), then go on */
  FS_CLOSE,      /* close without answering, after delay_ms */
  FS_HANG        /* never answer (until fs_stop) */
} fs_action;

typedef struct fs_response {
  fs_action action;
  int status;
  const char *content_type; /* NULL: no Content-Type header */
  const char *body;         /* borrowed until the handler is called again */
  size_t body_len;          /* 0 with a body: strlen(body) */
  int delay_ms;
  int chunked;       /* send the body chunked */
  int close_after;   /* Connection: close */
  size_t lie_length; /* >0: Content-Length says this, body is shorter, then
                        the connection is closed (a truncated answer) */
  char *owned;       /* freed by the server after sending (may be NULL) */
} fs_response;

typedef void (*fs_handler)(void *arg, const fs_request *req, fs_response *r);

typedef struct fs_server {
  int lfd;
  int port;
  atomic_int stop;
  atomic_int nrequests;
  atomic_int nconns;
  pthread_t accept_thread;
  pthread_mutex_t mu; /* handler calls and the connection table */
  fs_handler handler;
  void *arg;
  int fds[FS_MAX_CONNS];
  pthread_t threads[FS_MAX_CONNS];
  int nthreads;
} fs_server;

typedef struct fs_conn_arg {
  fs_server *s;
  int fd;
} fs_conn_arg;

static double fs_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits for |fd| to be readable, in 50 ms ticks, until |deadline| or stop.
 * Returns 1 readable, 0 stop/deadline. */
static int fs_wait_readable(fs_server *s, int fd, double deadline) {
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, 50);
    if (n > 0) {
      return 1;
    }
    if (deadline > 0 && fs_now_ms() >= deadline) {
      return 0;
    }
  }
  return 0;
}

static int fs_sleep(fs_server *s, int ms) {
  double end = fs_now_ms() + ms;
  while (!atomic_load(&s->stop) && fs_now_ms() < end) {
    usleep(5000);
  }
  return !atomic_load(&s->stop);
}

static int fs_send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static const char *fs_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  default:
    return "Whatever";
  }
}

/* Finds |name| (lower-case, with ':') in the header block; copies the
 * value. */
static int fs_header(const char *hdrs, const char *name, char *out,
                     size_t cap) {
  const char *p = hdrs;
  size_t nl = strlen(name);

  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl, *e;
      v += strspn(v, " \t");
      e = strstr(v, "\r\n");
      if (!e) {
        return 0;
      }
      snprintf(out, cap, "%.*s", (int)(e - v), v);
      return 1;
    }
  }
  return 0;
}

static void *fs_conn_main(void *p) {
  fs_conn_arg *ca = p;
  fs_server *s = ca->s;
  int fd = ca->fd;
  char *buf = malloc(FS_REQ_MAX + 1);
  size_t len = 0;

  free(ca);
  if (!buf) {
    return NULL;
  }
  for (;;) {
    char *end, hdrs[8192], cl[32], te[32], *body;
    size_t hlen, blen = 0, need;
    fs_request req;
    fs_response r;
    char head[512];
    int keep = 1;

    /* read a request head */
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
      ssize_t n;
      if (len == FS_REQ_MAX || !fs_wait_readable(s, fd, 0)) {
        goto out;
      }
      n = recv(fd, buf + len, FS_REQ_MAX - len, 0);
      if (n <= 0) {
        goto out;
      }
      len += (size_t)n;
    }
    hlen = (size_t)(end - buf) + 4;
    snprintf(hdrs, sizeof(hdrs), "%.*s", (int)(hlen - 2), buf);
    memset(&req, 0, sizeof(req));
    sscanf(buf, "%15s %255s", req.method, req.path);
    fs_header(hdrs, "content-type:", req.content_type,
              sizeof(req.content_type));
    fs_header(hdrs, "authorization:", req.authorization,
              sizeof(req.authorization));
    cl[0] = te[0] = '\0';
    fs_header(hdrs, "content-length:", cl, sizeof(cl));
    fs_header(hdrs, "transfer-encoding:", te, sizeof(te));
    body = malloc(FS_REQ_MAX + 1);
    if (!body) {
      goto out;
    }
    if (strncasecmp(te, "chunked", 7) == 0) {
      /* de-chunk: read until the 0-size chunk */
      size_t off = hlen;
      for (;;) {
        char *crlf;
        unsigned long csz;
        while (!(crlf = memmem(buf + off, len - off, "\r\n", 2))) {
          ssize_t n;
          if (len == FS_REQ_MAX || !fs_wait_readable(s, fd, 0)) {
            free(body);
            goto out;
          }
          n = recv(fd, buf + len, FS_REQ_MAX - len, 0);
          if (n <= 0) {
            free(body);
            goto out;
          }
          len += (size_t)n;
        }
        csz = strtoul(buf + off, NULL, 16);
        need = (size_t)(crlf - buf) + 2 + csz + 2;
        while (len < need) {
          ssize_t n;
          if (need > FS_REQ_MAX || !fs_wait_readable(s, fd, 0)) {
            free(body);
            goto out;
          }
          n = recv(fd, buf + len, FS_REQ_MAX - len, 0);
          if (n <= 0) {
            free(body);
            goto out;
          }
          len += (size_t)n;
        }
        memcpy(body + blen, crlf + 2, csz);
        blen += csz;
        off = need;
        if (csz == 0) {
          break;
        }
      }
      need = off;
    } else {
      blen = cl[0] ? strtoul(cl, NULL, 10) : 0;
      need = hlen + blen;
      if (need > FS_REQ_MAX) {
        free(body);
        goto out;
      }
      while (len < need) {
        ssize_t n;
        if (!fs_wait_readable(s, fd, 0)) {
          free(body);
          goto out;
        }
        n = recv(fd, buf + len, FS_REQ_MAX - len, 0);
        if (n <= 0) {
          free(body);
          goto out;
        }
        len += (size_t)n;
      }
      memcpy(body, buf + hlen, blen);
    }
    body[blen] = '\0';
    req.body = body;
    req.body_len = blen;
    memmove(buf, buf + need, len - need);
    len -= need;

    memset(&r, 0, sizeof(r));
    r.status = 200;
    pthread_mutex_lock(&s->mu);
    req.index = atomic_fetch_add(&s->nrequests, 1);
    s->handler(s->arg, &req, &r);
    pthread_mutex_unlock(&s->mu);
    free(body);

    if (r.delay_ms > 0 && !fs_sleep(s, r.delay_ms)) {
      free(r.owned);
      goto out;
    }
    if (r.body && r.body_len == 0) {
      r.body_len = strlen(r.body);
    }
    switch (r.action) {
    case FS_HANG:
      free(r.owned);
      while (fs_sleep(s, 50)) {
      }
      goto out;
    case FS_CLOSE:
      free(r.owned);
      goto out;
    case FS_RAW:
      fs_send_all(fd, r.body, r.body_len);
      free(r.owned);
      if (r.close_after) {
        goto out;
      }
      continue;
    case FS_ANSWER:
      break;
    }
    {
      int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n", r.status,
                       fs_reason(r.status));
      if (r.content_type) {
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Type: %s\r\n", r.content_type);
      }
      if (r.chunked) {
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Transfer-Encoding: chunked\r\n");
      } else {
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Length: %zu\r\n",
                      r.lie_length ? r.lie_length : r.body_len);
      }
      if (r.close_after || r.lie_length) {
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Connection: close\r\n");
        keep = 0;
      }
      n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
      if (fs_send_all(fd, head, (size_t)n) != 0) {
        free(r.owned);
        goto out;
      }
      if (r.chunked) {
        size_t off = 0;
        while (off < r.body_len) {
          size_t c = r.body_len - off > 4000 ? 4000 : r.body_len - off;
          char sz[32];
          int k = snprintf(sz, sizeof(sz), "%zx\r\n", c);
          if (fs_send_all(fd, sz, (size_t)k) ||
              fs_send_all(fd, r.body + off, c) || fs_send_all(fd, "\r\n", 2)) {
            free(r.owned);
            goto out;
          }
          off += c;
        }
        fs_send_all(fd, "0\r\n\r\n", 5);
      } else if (r.body_len) {
        fs_send_all(fd, r.body, r.body_len);
      }
      free(r.owned);
      if (!keep) {
        goto out;
      }
    }
  }
out:
  free(buf);
  shutdown(fd, SHUT_RDWR);
  return NULL;
}

static void *fs_accept_main(void *p) {
  fs_server *s = p;

  while (!atomic_load(&s->stop)) {
    struct pollfd pl = {s->lfd, POLLIN, 0};
    fs_conn_arg *ca;
    int fd;

    if (poll(&pl, 1, 50) <= 0) {
      continue;
    }
    fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
      continue;
    }
    pthread_mutex_lock(&s->mu);
    if (s->nthreads == FS_MAX_CONNS) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      continue;
    }
    ca = malloc(sizeof(*ca));
    if (!ca) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      continue;
    }
    ca->s = s;
    ca->fd = fd;
    s->fds[s->nthreads] = fd;
    if (pthread_create(&s->threads[s->nthreads], NULL, fs_conn_main, ca) != 0) {
      free(ca);
      close(fd);
    } else {
      s->nthreads++;
      atomic_fetch_add(&s->nconns, 1);
    }
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* Starts a server on a free loopback port. Returns 0 or -1. */
static int fs_start(fs_server *s, fs_handler handler, void *arg)
    __attribute__((unused));
static int fs_start(fs_server *s, fs_handler handler, void *arg) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int one = 1;

  memset(s, 0, sizeof(*s));
  s->handler = handler;
  s->arg = arg;
  pthread_mutex_init(&s->mu, NULL);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (s->lfd < 0) {
    return -1;
  }
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(s->lfd, 128) != 0 ||
      getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0) {
    close(s->lfd);
    return -1;
  }
  s->port = ntohs(a.sin_port);
  if (pthread_create(&s->accept_thread, NULL, fs_accept_main, s) != 0) {
    close(s->lfd);
    return -1;
  }
  return 0;
}

/* Stops accepting, ends every connection, joins every thread. */
static void fs_stop(fs_server *s) __attribute__((unused));
static void fs_stop(fs_server *s) {
  atomic_store(&s->stop, 1);
  pthread_join(s->accept_thread, NULL);
  close(s->lfd);
  for (int i = 0; i < s->nthreads; i++) {
    shutdown(s->fds[i], SHUT_RDWR);
  }
  for (int i = 0; i < s->nthreads; i++) {
    pthread_join(s->threads[i], NULL);
    close(s->fds[i]);
  }
  s->nthreads = 0;
  pthread_mutex_destroy(&s->mu);
}

/* A port where nothing listens (bound, then closed). */
static int fs_dead_port(void) __attribute__((unused));
static int fs_dead_port(void) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) {
    close(fd);
  }
  return port;
}

#endif
