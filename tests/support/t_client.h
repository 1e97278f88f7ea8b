/* t_client.h — a raw client for the in-process server: exact bytes over
 * TLS (OpenSSL, with the ALPN protocol of the test's choice) or over
 * cleartext TCP, to 127.0.0.1.
 *
 * The handshake is blocking, bounded by 3 s socket timeouts; afterwards
 * the socket is non-blocking and every send and read has a deadline. What
 * arrives collects in |buf| for the caller to parse and consume. */
#ifndef TESTS_SUPPORT_T_CLIENT_H
#define TESTS_SUPPORT_T_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

typedef struct t_cli {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;        /* NULL on a cleartext connection */
  char buf[65536]; /* received, not yet consumed (NUL-terminated) */
  size_t len;
  int closed; /* the server closed (EOF, close_notify or reset) */
} t_cli;

/* A TCP connection to 127.0.0.1:|port| with receive and send timeouts of
 * |rcv_s| and |snd_s| seconds (0: none) set before connecting. Returns the
 * socket, or -1 with errno set. */
int t_tcp_connect(int port, int rcv_s, int snd_s);

/* Connects to 127.0.0.1:|port| and completes the TLS handshake (the
 * server's certificate is not verified), offering ALPN |alpn| (NULL: none)
 * and requiring the server to select it. Returns 0 or -1, saying on stdout
 * why connecting or the handshake failed. Either way t_cli_close() frees
 * what was made. */
int t_cli_open(t_cli *c, int port, const char *alpn);

/* Connects in cleartext (for h2c prior knowledge). Returns 0 or -1
 * (printed); either way t_cli_close() frees what was made. */
int t_cli_open_plain(t_cli *c, int port);

/* Frees the connection; |c| is then closed (fd -1) and empty. */
void t_cli_close(t_cli *c);

/* Waits until |fd| is ready for |ev| (POLLIN, POLLOUT): 1, or 0 at
 * |deadline| (t_now_ms() time). */
int t_wait_fd(int fd, short ev, double deadline);

/* Sends |n| bytes within 3 s. Returns 0, or -1 when the time ran out or
 * the connection failed. */
int t_cli_send(t_cli *c, const void *data, size_t n);

/* t_cli_send() of a string. */
int t_cli_sends(t_cli *c, const char *s);

/* Reads more into c->buf. Returns 1 when bytes came, 0 when the server
 * closed (c->closed is then set), -1 at |deadline| or when c->buf is
 * full. */
int t_cli_fill(t_cli *c, double deadline);

#endif
