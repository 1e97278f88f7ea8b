/* gw_server.c — listeners, worker threads, TLS, connection lifecycle,
 * connection limits and timers. The protocols live in gw_h1.c and gw_h2.c;
 * the request/response exchange in gw_http.c. */
#include "gw_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_server_int.h"

#define IP_TABLE_SIZE 4096
#define LINGER_NS (2000000000ull)     /* at most this long in all */
#define LINGER_IDLE_NS (300000000ull) /* and no longer than this silent */
#define LINGER_MAX (4 * 1024 * 1024)
#define ACCESS_LOG_FLUSH_MS 200

struct gw_ip_count {
  struct gw_ip_count *next;
  int count;
  char ip[64];
};

/* ---- TLS ------------------------------------------------------------ */

static void tls_error(char *err, size_t errlen, const char *what,
                      const char *path) {
  unsigned long e = ERR_get_error();
  char reason[256] = "unknown reason";

  if (e) {
    ERR_error_string_n(e, reason, sizeof(reason));
  }
  ERR_clear_error();
  snprintf(err, errlen, "%s %s: %s", what, path, reason);
}

/* Prefers h2, accepts http/1.1; a client that offers neither continues
 * without ALPN and is spoken to in HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  static const unsigned char prefs[] = "\x02h2\x08http/1.1";
  (void)ssl;
  (void)arg;
  if (SSL_select_next_proto((unsigned char **)out, outlen, prefs,
                            sizeof(prefs) - 1, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  return SSL_TLSEXT_ERR_OK;
}

static int tls_ctx_new(SSL_CTX **out, const gw_config *cfg, char *err,
                       size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

  if (!ctx) {
    tls_error(err, errlen, "cannot create", "TLS context");
    return GW_ERR_TLS;
  }
  SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  /* TLS 1.2: forward-secret AEAD suites only (RFC 9113 §9.2.2 also forbids
   * the rest for HTTP/2). TLS 1.3 suites are all acceptable. */
  if (SSL_CTX_set_cipher_list(
          ctx,
          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
    tls_error(err, errlen, "cannot set", "ciphers");
    goto fail;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
    tls_error(err, errlen, "cannot load certificate", cfg->tls_cert);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
    tls_error(err, errlen, "cannot load private key", cfg->tls_key);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls_error(err, errlen, "private key does not match certificate",
              cfg->tls_key);
    goto fail;
  }
  /* Resumption through the server's session cache, not stateless tickets:
   * a ticket key that lives as long as the process would decrypt every
   * resumed session if it leaked. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  *out = ctx;
  return GW_OK;

fail:
  SSL_CTX_free(ctx);
  return GW_ERR_TLS;
}

/* ---- per-address connection counts ---------------------------------- */

static size_t ip_hash(const char *ip) {
  size_t h = 5381;

  while (*ip) {
    h = h * 33 + (unsigned char)*ip++;
  }
  return h % IP_TABLE_SIZE;
}

/* Takes a slot for |ip|; returns 0 when over the per-address limit. */
static int ip_acquire(gw_server *s, const char *ip) {
  struct gw_ip_count **pp, *e;
  int ok = 0;

  pthread_mutex_lock(&s->ip_lock);
  pp = &s->ip_table[ip_hash(ip)];
  for (e = *pp; e; e = e->next) {
    if (strcmp(e->ip, ip) == 0) {
      break;
    }
  }
  if (!e) {
    e = calloc(1, sizeof(*e));
    if (e) {
      snprintf(e->ip, sizeof(e->ip), "%s", ip);
      e->next = *pp;
      *pp = e;
    }
  }
  if (e && e->count < s->cfg->max_connections_per_ip) {
    e->count++;
    ok = 1;
  }
  pthread_mutex_unlock(&s->ip_lock);
  return ok;
}

static void ip_release(gw_server *s, const char *ip) {
  struct gw_ip_count **pp, *e;

  pthread_mutex_lock(&s->ip_lock);
  for (pp = &s->ip_table[ip_hash(ip)]; (e = *pp) != NULL; pp = &e->next) {
    if (strcmp(e->ip, ip) == 0) {
      if (--e->count <= 0) {
        *pp = e->next;
        free(e);
      }
      break;
    }
  }
  pthread_mutex_unlock(&s->ip_lock);
}

/* ---- connections ---------------------------------------------------- */

static void conn_free(gw_conn *c) {
  gw_worker *w = c->w;
  gw_server *s = w->srv;

  /* Cancel callbacks run below may answer other requests of this very
   * connection: those answers must not pump, process or free it again. */
  c->freeing = 1;
  c->in_callback = 1;

  if (c->state == GW_CONN_OPEN) {
    if (c->proto == GW_PROTO_H2) {
      gw_h2_free(c);
      gw_metrics_gauge(w->m, GW_G_CONNS_H2, -1);
    } else {
      gw_h1_free(c);
      gw_metrics_gauge(w->m, GW_G_CONNS_H1, -1);
    }
  } else if (c->state == GW_CONN_HANDSHAKE) {
    gw_metrics_gauge(w->m, GW_G_CONNS_HANDSHAKE, -1);
  }
  if (c->peek_ev) {
    event_free(c->peek_ev);
  }
  if (c->timer) {
    event_free(c->timer);
  }
  if (c->bev) {
    bufferevent_free(c->bev); /* closes the socket (BEV_OPT_CLOSE_ON_FREE) */
  } else if (c->fd >= 0) {
    close(c->fd);
  }
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    w->conns = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  w->nconns--;
  ip_release(s, c->client_ip);
  atomic_fetch_sub(&s->nconns, 1);
  free(c);
  if (w->shutting_down && w->nconns == 0) {
    event_base_loopexit(w->base, NULL);
  }
}

void gw_conn_close(gw_conn *c) {
  c->dead = 1;
}

/* Called at the end of every top-level callback for |c|: frees a
 * connection marked dead (never inside a parser callback, as redis'
 * freeClientAsync), runs a deferred pump. */
void gw_conn_after_callback(gw_conn *c) {
  if (c->in_callback || c->freeing) {
    return;
  }
  if (!c->dead && c->want_pump) {
    c->want_pump = 0;
    gw_conn_pump(c);
  }
  if (c->dead) {
    conn_free(c);
  }
}

void gw_conn_arm(gw_conn *c, uint64_t deadline_ns) {
  uint64_t now;
  struct timeval tv;

  if (c->timer_at_ns && c->timer_at_ns <= deadline_ns) {
    return; /* an earlier wake-up re-evaluates every deadline */
  }
  now = gw_now_ns();
  if (deadline_ns < now) {
    deadline_ns = now;
  }
  tv.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
  tv.tv_usec = (suseconds_t)((deadline_ns - now) % 1000000000u / 1000);
  c->timer_at_ns = deadline_ns;
  evtimer_add(c->timer, &tv);
}

static uint64_t ms_ns(int ms) {
  return (uint64_t)ms * 1000000u;
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg) {
  gw_conn *c = arg;
  uint64_t now = gw_now_ns();
  const gw_config *cfg = c->w->srv->cfg;

  (void)fd;
  (void)what;
  c->timer_at_ns = 0;
  if (c->flush_deadline_ns && now >= c->flush_deadline_ns && !c->lingering) {
    /* Closing, and the client has not taken its last answer in time. */
    gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
    gw_conn_close(c);
  } else if (c->lingering) {
    uint64_t idle_end = c->last_active_ns + LINGER_IDLE_NS;
    if (now >= c->linger_until_ns || now >= idle_end) {
      gw_conn_close(c);
    } else {
      gw_conn_arm(c, idle_end < c->linger_until_ns ? idle_end
                                                   : c->linger_until_ns);
    }
  } else if (c->state != GW_CONN_OPEN) {
    if (now - c->accepted_ns >= ms_ns(cfg->handshake_timeout_ms)) {
      GW_LOG(GW_LOG_DEBUG,
             c->secure ? "tls handshake timeout" : "protocol detection timeout",
             "client=%s", c->client_ip);
      if (c->secure) {
        gw_metrics_count(c->w->m, GW_M_TLS_FAILED);
      }
      gw_metrics_count(c->w->m, GW_M_TIMEOUTS);
      gw_conn_close(c);
    } else {
      gw_conn_arm(c, c->accepted_ns + ms_ns(cfg->handshake_timeout_ms));
    }
  } else {
    /* Responses sent from a timer are flushed after it, like any other
     * callback's. */
    c->in_callback = 1;
    if (c->proto == GW_PROTO_H2) {
      gw_h2_timer(c, now);
    } else {
      gw_h1_timer(c, now);
    }
    c->in_callback = 0;
    c->want_pump = 1;
  }
  gw_conn_after_callback(c);
}

void gw_conn_pump(gw_conn *c) {
  struct evbuffer *out;
  size_t cap = c->w->srv->cfg->max_output_buffer;

  if (c->in_callback) {
    c->want_pump = 1;
    return;
  }
  if (c->dead || c->state != GW_CONN_OPEN) {
    return;
  }
  if (c->proto == GW_PROTO_H2 && gw_h2_pump(c) != GW_OK) {
    gw_conn_close(c);
    return;
  }
  out = bufferevent_get_output(c->bev);
  /* Back-pressure: a client that does not read its responses stops being
   * read from, so its queued output stays under the cap. */
  if (evbuffer_get_length(out) >= cap) {
    if (!c->read_blocked) {
      c->read_blocked = 1;
      bufferevent_disable(c->bev, EV_READ);
    }
  } else if (c->read_blocked) {
    c->read_blocked = 0;
    bufferevent_enable(c->bev, EV_READ);
  }
  if (c->close_after_flush && evbuffer_get_length(out) > 0 &&
      !c->flush_deadline_ns) {
    /* Reads no longer keep a closing connection alive: it has this long to
     * take what is queued for it. */
    c->flush_deadline_ns = gw_now_ns() + ms_ns(c->w->srv->cfg->idle_timeout_ms);
    gw_conn_arm(c, c->flush_deadline_ns);
  }
  if (c->close_after_flush && evbuffer_get_length(out) == 0 && !c->lingering) {
    if (c->linger && !c->draining) {
      uint64_t now = gw_now_ns();
      c->lingering = 1;
      c->linger_until_ns = now + LINGER_NS;
      c->last_active_ns = now;
      c->read_blocked = 0;
      bufferevent_enable(c->bev, EV_READ);
      gw_conn_arm(c, now + LINGER_IDLE_NS);
    } else {
      gw_conn_close(c);
    }
  }
}

/* Lingering close: discard what the client still sends until it closes,
 * LINGER_NS passes or LINGER_MAX bytes arrive. */
static void conn_linger_read(gw_conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  size_t n = evbuffer_get_length(in);

  evbuffer_drain(in, n);
  c->linger_bytes += n;
  c->last_active_ns = gw_now_ns();
  if (c->linger_bytes > LINGER_MAX || c->last_active_ns >= c->linger_until_ns) {
    gw_conn_close(c);
  } else {
    gw_conn_arm(c, c->last_active_ns + LINGER_IDLE_NS);
  }
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
  gw_conn *c = arg;
  int rv;

  (void)bev;
  if (c->lingering) {
    conn_linger_read(c);
    gw_conn_after_callback(c);
    return;
  }
  c->last_active_ns = gw_now_ns();
  rv = c->proto == GW_PROTO_H2 ? gw_h2_on_read(c) : gw_h1_on_read(c);
  if (rv != GW_OK) {
    gw_conn_close(c);
  } else {
    gw_conn_pump(c);
  }
  gw_conn_after_callback(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg) {
  gw_conn *c = arg;

  (void)bev;
  gw_conn_pump(c);
  gw_conn_after_callback(c);
}

static void conn_event_cb(struct bufferevent *bev, short events, void *arg) {
  gw_conn *c = arg;
  const unsigned char *alpn = NULL;
  unsigned int alpnlen = 0;
  int rv;

  if (events & BEV_EVENT_CONNECTED) {
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    SSL_get0_alpn_selected(ssl, &alpn, &alpnlen);
    gw_metrics_gauge(c->w->m, GW_G_CONNS_HANDSHAKE, -1);
    c->state = GW_CONN_OPEN;
    c->timer_at_ns = 0;
    evtimer_del(c->timer);
    if (alpnlen == 2 && memcmp(alpn, "h2", 2) == 0) {
      c->proto = GW_PROTO_H2;
      gw_metrics_gauge(c->w->m, GW_G_CONNS_H2, 1);
      rv = gw_h2_start(c);
    } else {
      c->proto = GW_PROTO_HTTP11;
      gw_metrics_gauge(c->w->m, GW_G_CONNS_H1, 1);
      rv = gw_h1_start(c);
    }
    if (rv != GW_OK) {
      gw_conn_close(c);
    } else {
      gw_conn_pump(c);
    }
    gw_conn_after_callback(c);
    return;
  }
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    if (c->state == GW_CONN_HANDSHAKE) {
      unsigned long e = bufferevent_get_openssl_error(bev);
      char reason[200] = "connection closed";
      if (e) {
        ERR_error_string_n(e, reason, sizeof(reason));
      }
      GW_LOG(GW_LOG_DEBUG, "tls handshake failed", "client=%s reason=\"%s\"",
             c->client_ip, reason);
      gw_metrics_count(c->w->m, GW_M_TLS_FAILED);
    }
    if (c->state == GW_CONN_OPEN && (events & BEV_EVENT_EOF) &&
        !(events & BEV_EVENT_ERROR) &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
      /* The client half-closed after its request (scripts often do): the
       * answer already queued still goes out, then the connection ends. */
      c->close_after_flush = 1;
      c->linger = 0;
      if (c->proto == GW_PROTO_HTTP11) {
        c->h1_keepalive = 0;
      }
      bufferevent_disable(bev, EV_READ);
      gw_conn_pump(c);
    } else {
      gw_conn_close(c);
    }
    gw_conn_after_callback(c);
  }
}

static void conn_start_tls(gw_conn *c) {
  gw_server *s = c->w->srv;
  SSL *ssl = SSL_new(s->ssl_ctx);

  if (!ssl) {
    gw_conn_close(c);
    return;
  }
  c->bev = bufferevent_openssl_socket_new(
      c->w->base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  if (!c->bev) {
    SSL_free(ssl);
    gw_conn_close(c);
    return;
  }
  /* Clients often close without close_notify; that is not an error for
   * requests that are complete. */
  bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
  c->state = GW_CONN_HANDSHAKE;
  gw_metrics_gauge(c->w->m, GW_G_CONNS_HANDSHAKE, 1);
  bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* A client that speaks plain HTTP to the TLS port gets a readable answer
 * instead of a TLS alert it cannot decode. */
static void conn_plain_on_tls(gw_conn *c) {
  static const char body[] =
      "{\"error\":\"tls_required\",\"message\":\"this port speaks HTTPS "
      "(TLS 1.2 or 1.3); use an https:// URL\"}";
  char resp[512];
  int n;
  int suppressed = 0;

  n = snprintf(resp, sizeof(resp),
               "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n"
               "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
               "\r\n%s",
               sizeof(body) - 1, body);
  /* The socket is non-blocking and fresh: a short answer fits its buffer;
   * if it does not, the client was not listening anyway. */
  if (send(c->fd, resp, (size_t)n, MSG_NOSIGNAL) < 0) {
    GW_LOG(GW_LOG_DEBUG, "send failed", "client=%s errno=%d", c->client_ip,
           errno);
  }
  shutdown(c->fd, SHUT_WR);
  gw_metrics_count(c->w->m, GW_M_PLAIN_ON_TLS);
  if (gw_log_rl_allow(&c->w->rl_plain, 5, &suppressed)) {
    GW_LOG(GW_LOG_INFO, "plain http on tls port", "client=%s suppressed=%d",
           c->client_ip, suppressed);
  }
}

/* Starts HTTP on a cleartext connection as |proto|. */
static void conn_start_cleartext(gw_conn *c, gw_proto proto) {
  int rv;

  c->bev = bufferevent_socket_new(c->w->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
  if (!c->bev) {
    gw_conn_close(c);
    return;
  }
  c->state = GW_CONN_OPEN;
  c->proto = proto;
  c->timer_at_ns = 0;
  evtimer_del(c->timer);
  gw_metrics_gauge(c->w->m,
                   proto == GW_PROTO_H2 ? GW_G_CONNS_H2 : GW_G_CONNS_H1, 1);
  bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  rv = proto == GW_PROTO_H2 ? gw_h2_start(c) : gw_h1_start(c);
  if (rv != GW_OK) {
    gw_conn_close(c);
  } else {
    gw_conn_pump(c);
  }
}

/* The cleartext listener speaks HTTP/1.1 and HTTP/2 with prior knowledge
 * (the client preface starts "PRI * HTTP/2.0"); a request method can also
 * start with 'P' (POST, PUT), so up to four bytes decide. */
static void conn_peek_retry_cb(evutil_socket_t fd, short what, void *arg);

static void conn_peek_cleartext(gw_conn *c, evutil_socket_t fd) {
  static const char preface[] = "PRI ";
  char b[4];
  ssize_t n = recv(fd, b, sizeof(b), MSG_PEEK);

  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return;
    }
    event_free(c->peek_ev);
    c->peek_ev = NULL;
    gw_conn_close(c);
    return;
  }
  if ((size_t)n < sizeof(b) && memcmp(b, preface, (size_t)n) == 0) {
    /* Could still be the preface. The bytes stay in the socket, so a
     * level-triggered read event would fire at once again: look again in
     * 20 ms instead (the connection timer bounds the whole wait). */
    struct timeval tv = {0, 20000};
    event_free(c->peek_ev);
    c->peek_ev = evtimer_new(c->w->base, conn_peek_retry_cb, c);
    if (!c->peek_ev) {
      gw_conn_close(c);
      return;
    }
    evtimer_add(c->peek_ev, &tv);
    return;
  }
  event_free(c->peek_ev);
  c->peek_ev = NULL;
  conn_start_cleartext(
      c, n == 4 && memcmp(b, preface, 4) == 0 ? GW_PROTO_H2 : GW_PROTO_HTTP11);
}

static void conn_peek_retry_cb(evutil_socket_t fd, short what, void *arg) {
  gw_conn *c = arg;

  (void)fd;
  (void)what;
  conn_peek_cleartext(c, c->fd);
  gw_conn_after_callback(c);
}

static void conn_peek_cb(evutil_socket_t fd, short what, void *arg) {
  gw_conn *c = arg;
  unsigned char b;
  ssize_t n;

  (void)what;
  n = recv(fd, &b, 1, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return; /* spurious; the event is persistent */
  }
  if (!c->secure && n > 0) {
    conn_peek_cleartext(c, fd);
    gw_conn_after_callback(c);
    return;
  }
  event_free(c->peek_ev);
  c->peek_ev = NULL;
  if (n <= 0) {
    gw_conn_close(c);
  } else if (b >= 'A' && b <= 'Z') {
    /* A TLS record starts with 0x16; an HTTP/1 method with a capital. */
    conn_plain_on_tls(c);
    gw_conn_close(c);
  } else {
    /* Anything else goes to OpenSSL, which answers garbage with an alert. */
    conn_start_tls(c);
  }
  gw_conn_after_callback(c);
}

static void accept_common(gw_worker *w, evutil_socket_t fd, struct sockaddr *sa,
                          int h2c) {
  gw_server *s = w->srv;
  const gw_config *cfg = s->cfg;
  char ip[64] = "unknown";
  int suppressed = 0;
  gw_conn *c;
  int one = 1;

  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip,
              sizeof(ip));
  }
  if (w->shutting_down ||
      atomic_fetch_add(&s->nconns, 1) >= cfg->max_connections) {
    if (!w->shutting_down) {
      atomic_fetch_sub(&s->nconns, 1);
    }
    gw_metrics_count(w->m, GW_M_CONN_REJECTED);
    if (gw_log_rl_allow(&w->rl_refused, 5, &suppressed)) {
      GW_LOG(GW_LOG_WARN, "connection refused",
             "client=%s reason=%s suppressed=%d", ip,
             w->shutting_down ? "shutting_down" : "max_connections",
             suppressed);
    }
    close(fd);
    return;
  }
  if (!ip_acquire(s, ip)) {
    atomic_fetch_sub(&s->nconns, 1);
    gw_metrics_count(w->m, GW_M_CONN_REJECTED);
    if (gw_log_rl_allow(&w->rl_refused, 5, &suppressed)) {
      GW_LOG(GW_LOG_WARN, "connection refused",
             "client=%s reason=max_connections_per_ip limit=%d suppressed=%d",
             ip, cfg->max_connections_per_ip, suppressed);
    }
    close(fd);
    return;
  }
  c = calloc(1, sizeof(*c));
  if (!c) {
    ip_release(s, ip);
    atomic_fetch_sub(&s->nconns, 1);
    close(fd);
    return;
  }
  c->w = w;
  c->fd = fd;
  memcpy(c->client_ip, ip, sizeof(c->client_ip));
  c->accepted_ns = c->last_active_ns = gw_now_ns();
  c->next = w->conns;
  if (w->conns) {
    w->conns->prev = c;
  }
  w->conns = c;
  w->nconns++;
  gw_metrics_count(w->m, GW_M_CONN_ACCEPTED);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->timer = evtimer_new(w->base, conn_timer_cb, c);
  if (!c->timer) {
    gw_conn_close(c);
    gw_conn_after_callback(c);
    return;
  }
  c->secure = !h2c;
  c->peek_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_peek_cb, c);
  if (!c->peek_ev) {
    gw_conn_close(c);
    gw_conn_after_callback(c);
    return;
  }
  event_add(c->peek_ev, NULL); /* the connection timer bounds the wait */
  gw_conn_arm(c, c->accepted_ns + ms_ns(cfg->handshake_timeout_ms));
}

static void accept_tls_cb(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg) {
  (void)l;
  (void)socklen;
  accept_common(arg, fd, sa, 0);
}

static void accept_h2c_cb(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg) {
  (void)l;
  (void)socklen;
  accept_common(arg, fd, sa, 1);
}

static void accept_error_cb(struct evconnlistener *l, void *arg) {
  int e = EVUTIL_SOCKET_ERROR();

  (void)l;
  (void)arg;
  /* EMFILE and friends: log and keep going; the listener retries. */
  GW_LOG(GW_LOG_ERROR, "accept failed", "errno=%d error=\"%s\"", e,
         evutil_socket_error_to_string(e));
}

/* ---- workers -------------------------------------------------------- */

static void flush_access_log(gw_worker *w) {
  if (w->access_log.len) {
    gw_log_write_raw(w->access_log.data, w->access_log.len);
    gw_buf_reset(&w->access_log);
  }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  flush_access_log(arg);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg) {
  gw_worker *w = arg;

  (void)fd;
  (void)what;
  GW_LOG(GW_LOG_WARN, "shutdown grace period over",
         "worker=%d open_connections=%d", w->idx, w->nconns);
  event_base_loopexit(w->base, NULL);
}

static void shutdown_cb(evutil_socket_t fd, short what, void *arg) {
  gw_worker *w = arg;
  gw_conn *c, *next;
  struct timeval tv;

  (void)fd;
  (void)what;
  if (w->shutting_down) {
    return;
  }
  w->shutting_down = 1;
  if (w->tls_listener) {
    evconnlistener_free(w->tls_listener);
    w->tls_listener = NULL;
  }
  if (w->h2c_listener) {
    evconnlistener_free(w->h2c_listener);
    w->h2c_listener = NULL;
  }
  for (c = w->conns; c; c = next) {
    next = c->next;
    c->draining = 1;
    if (c->state != GW_CONN_OPEN) {
      gw_conn_close(c);
    } else if (c->proto == GW_PROTO_H2) {
      gw_h2_shutdown(c);
      gw_conn_pump(c);
    } else {
      gw_h1_shutdown(c);
      gw_conn_pump(c);
    }
    gw_conn_after_callback(c);
  }
  if (w->nconns == 0) {
    event_base_loopexit(w->base, NULL);
    return;
  }
  tv.tv_sec = w->srv->cfg->shutdown_grace_ms / 1000;
  tv.tv_usec = (w->srv->cfg->shutdown_grace_ms % 1000) * 1000;
  evtimer_add(w->grace_ev, &tv);
}

static void *worker_main(void *arg) {
  gw_worker *w = arg;

  event_base_dispatch(w->base);
  /* Whatever is still open after the grace period is cut off. */
  while (w->conns) {
    gw_conn *c = w->conns;
    c->dead = 1;
    conn_free(c);
  }
  flush_access_log(w);
  gw_worker_exch_pool_free(w);
  return NULL;
}

static int listen_socket(const char *host, int port, int *out_fd, int *out_port,
                         char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL;
  char portstr[8];
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = -1, one = 1, rv;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(portstr, sizeof(portstr), "%d", port);
  rv = getaddrinfo(host, portstr, &hints, &res);
  if (rv != 0) {
    snprintf(err, errlen, "cannot resolve listen address %s: %s", host,
             gai_strerror(rv));
    return GW_ERR_IO;
  }
  fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
             strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    freeaddrinfo(res);
    return GW_ERR_IO;
  }
  freeaddrinfo(res);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    *out_port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
  }
  *out_fd = fd;
  return GW_OK;
}

/* Binds one socket per worker on the same port (SO_REUSEPORT lets the
 * kernel spread connections across them). Port 0 picks a free port once. */
/* SO_REUSEPORT would let a second mpkigw (same user) bind the port too and
 * silently take half the connections. A probe socket without it fails on a
 * port that anyone holds, so a busy port stops start-up as it should. */
static int probe_port(const char *host, int port, int *out_port, char *err,
                      size_t errlen) {
  struct addrinfo hints, *res = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char portstr[8];
  int fd, one = 1, rv;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(portstr, sizeof(portstr), "%d", port);
  rv = getaddrinfo(host, portstr, &hints, &res);
  if (rv != 0) {
    snprintf(err, errlen, "cannot resolve listen address %s: %s", host,
             gai_strerror(rv));
    return GW_ERR_IO;
  }
  fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
             strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    freeaddrinfo(res);
    return GW_ERR_IO;
  }
  freeaddrinfo(res);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    *out_port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
  }
  close(fd);
  return GW_OK;
}

static int bind_all(gw_server *s, const char *host, int port, int *fds,
                    int *bound_port, char *err, size_t errlen) {
  int rv;

  rv = probe_port(host, port, bound_port, err, errlen);
  if (rv != GW_OK) {
    return rv;
  }
  port = *bound_port;
  for (int i = 0; i < s->nworkers; i++) {
    rv = listen_socket(host, i == 0 ? port : *bound_port, &fds[i], bound_port,
                       err, errlen);
    if (rv != GW_OK) {
      return rv;
    }
  }
  return GW_OK;
}

int gw_server_new(gw_server **out, const gw_config *cfg, gw_router *router,
                  void *app, char *err, size_t errlen) {
  gw_server *s;
  int rv = GW_ERR_NOMEM;

  s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return GW_ERR_NOMEM;
  }
  s->cfg = cfg;
  s->router = router;
  s->app = app;
  s->nworkers = cfg->workers < 1 ? 1 : cfg->workers > 64 ? 64 : cfg->workers;
  for (int i = 0; i < 64; i++) {
    s->tls_fds[i] = s->h2c_fds[i] = -1;
  }
  atomic_init(&s->nconns, 0);
  atomic_init(&s->healthy, 0);
  pthread_mutex_init(&s->ip_lock, NULL);
  evthread_use_pthreads();
  s->ip_table = calloc(IP_TABLE_SIZE, sizeof(*s->ip_table));
  s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
  if (!s->ip_table || !s->workers ||
      gw_metrics_new(&s->metrics, (size_t)s->nworkers) != GW_OK ||
      gw_h2_callbacks_new(&s->h2_callbacks) != GW_OK ||
      nghttp2_option_new(&s->h2_option) != 0) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  /* REFERENCE §4: bound CONTINUATION floods and rapid resets; the stream
   * error budget and our own timers cover the rest. */
  nghttp2_option_set_max_continuations(s->h2_option, 8);
  nghttp2_option_set_stream_reset_rate_limit(
      s->h2_option, (uint64_t)cfg->reset_burst, (uint64_t)cfg->reset_rate);
  nghttp2_option_set_max_settings(s->h2_option, 32);
  nghttp2_option_set_no_closed_streams(s->h2_option, 1);
  /* TLS unless no certificate is configured: mpkigw's configuration
   * requires one; the mock operators embed the server cleartext-only. */
  if (cfg->tls_cert && cfg->tls_cert[0]) {
    rv = tls_ctx_new(&s->ssl_ctx, cfg, err, errlen);
    if (rv != GW_OK) {
      goto fail;
    }
    rv = bind_all(s, cfg->listen_host, cfg->listen_port, s->tls_fds,
                  &s->tls_port, err, errlen);
    if (rv != GW_OK) {
      goto fail;
    }
  } else if (!(cfg->h2c_host && cfg->h2c_host[0])) {
    snprintf(err, errlen,
             "no listener: neither a TLS certificate nor a "
             "cleartext listen address is configured");
    rv = GW_ERR_CONFIG;
    goto fail;
  }
  if (cfg->h2c_port > 0 || (cfg->h2c_host && cfg->h2c_host[0])) {
    rv = bind_all(s, cfg->h2c_host, cfg->h2c_port, s->h2c_fds, &s->h2c_port,
                  err, errlen);
    if (rv != GW_OK) {
      goto fail;
    }
  }
  for (int i = 0; i < s->nworkers; i++) {
    gw_worker *w = &s->workers[i];
    w->srv = s;
    w->idx = i;
    w->m = gw_metrics_shard_get(s->metrics, (size_t)i);
    gw_buf_init(&w->access_log, 1024 * 1024);
    w->base = event_base_new();
    if (!w->base) {
      snprintf(err, errlen, "cannot create event loop");
      rv = GW_ERR_NOMEM;
      goto fail;
    }
    if (s->tls_fds[i] >= 0) {
      w->tls_listener = evconnlistener_new(
          w->base, accept_tls_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, s->tls_fds[i]);
      if (w->tls_listener) {
        s->tls_fds[i] = -1; /* owned by the listener now */
        evconnlistener_set_error_cb(w->tls_listener, accept_error_cb);
      }
    }
    if (s->h2c_fds[i] >= 0) {
      w->h2c_listener = evconnlistener_new(
          w->base, accept_h2c_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, s->h2c_fds[i]);
      if (w->h2c_listener) {
        s->h2c_fds[i] = -1;
        evconnlistener_set_error_cb(w->h2c_listener, accept_error_cb);
      }
    }
    w->shutdown_ev = event_new(w->base, -1, 0, shutdown_cb, w);
    w->grace_ev = evtimer_new(w->base, grace_cb, w);
    w->flush_ev = event_new(w->base, -1, EV_PERSIST, flush_cb, w);
    if ((s->ssl_ctx && !w->tls_listener) || (s->h2c_port && !w->h2c_listener) ||
        !w->shutdown_ev || !w->grace_ev || !w->flush_ev) {
      snprintf(err, errlen, "cannot set up worker %d", i);
      rv = GW_ERR_NOMEM;
      goto fail;
    }
    {
      struct timeval tv = {0, ACCESS_LOG_FLUSH_MS * 1000};
      evtimer_add(w->flush_ev, &tv);
    }
  }
  *out = s;
  return GW_OK;

fail:
  gw_server_del(s);
  return rv;
}

int gw_server_start(gw_server *s) {
  for (int i = 0; i < s->nworkers; i++) {
    if (pthread_create(&s->workers[i].thread, NULL, worker_main,
                       &s->workers[i]) != 0) {
      GW_LOG(GW_LOG_ERROR, "cannot start worker thread", "worker=%d", i);
      for (int j = 0; j < i; j++) {
        event_active(s->workers[j].shutdown_ev, EV_READ, 0);
      }
      for (int j = 0; j < i; j++) {
        pthread_join(s->workers[j].thread, NULL);
        s->workers[j].thread = 0;
      }
      return GW_ERR_IO;
    }
  }
  return GW_OK;
}

void gw_server_shutdown(gw_server *s) {
  for (int i = 0; i < s->nworkers; i++) {
    if (s->workers[i].shutdown_ev) {
      event_active(s->workers[i].shutdown_ev, EV_READ, 0);
    }
  }
}

void gw_server_join(gw_server *s) {
  for (int i = 0; i < s->nworkers; i++) {
    if (s->workers[i].thread) {
      pthread_join(s->workers[i].thread, NULL);
      s->workers[i].thread = 0;
    }
  }
}

void gw_server_del(gw_server *s) {
  if (!s) {
    return;
  }
  for (int i = 0; s->workers && i < s->nworkers; i++) {
    gw_worker *w = &s->workers[i];
    if (w->tls_listener) {
      evconnlistener_free(w->tls_listener);
    }
    if (w->h2c_listener) {
      evconnlistener_free(w->h2c_listener);
    }
    if (w->shutdown_ev) {
      event_free(w->shutdown_ev);
    }
    if (w->grace_ev) {
      event_free(w->grace_ev);
    }
    if (w->flush_ev) {
      event_free(w->flush_ev);
    }
    if (w->base) {
      event_base_free(w->base);
    }
    gw_buf_free(&w->access_log);
  }
  for (int i = 0; i < 64; i++) {
    if (s->tls_fds[i] >= 0) {
      close(s->tls_fds[i]);
    }
    if (s->h2c_fds[i] >= 0) {
      close(s->h2c_fds[i]);
    }
  }
  if (s->ip_table) {
    for (size_t i = 0; i < IP_TABLE_SIZE; i++) {
      while (s->ip_table[i]) {
        struct gw_ip_count *e = s->ip_table[i];
        s->ip_table[i] = e->next;
        free(e);
      }
    }
    free(s->ip_table);
  }
  free(s->workers);
  gw_metrics_del(s->metrics);
  if (s->h2_callbacks) {
    nghttp2_session_callbacks_del(s->h2_callbacks);
  }
  if (s->h2_option) {
    nghttp2_option_del(s->h2_option);
  }
  SSL_CTX_free(s->ssl_ctx);
  pthread_mutex_destroy(&s->ip_lock);
  free(s);
}

int gw_server_port(const gw_server *s, int h2c) {
  return h2c ? s->h2c_port : s->tls_port;
}

void gw_server_set_healthy(gw_server *s, int ok) {
  atomic_store(&s->healthy, ok ? 1 : 0);
}

int gw_server_healthy(const gw_server *s) {
  return atomic_load(&((gw_server *)s)->healthy);
}

static const char *route_name(int i, void *arg) {
  const gw_route *r = gw_router_get(arg, (size_t)i);
  return r && r->name ? r->name : "unnamed";
}

int gw_server_metrics(gw_server *s, gw_buf *out) {
  int rv = gw_metrics_render(s->metrics, out, route_name, s->router,
                             (int)gw_router_count(s->router));

  if (rv == GW_OK && s->metrics_hook) {
    rv = s->metrics_hook(s->metrics_hook_arg, out);
  }
  return rv;
}

void gw_server_set_metrics_hook(gw_server *s, int (*fn)(void *arg, gw_buf *out),
                                void *arg) {
  s->metrics_hook = fn;
  s->metrics_hook_arg = arg;
}
