/* gw_async.c — gw_async_run (gw_async.h). */
#include "gw_async.h"

#include <stdlib.h>

#include <event2/event.h>

#include "gw_err.h"
#include "p11.h"

typedef struct gw_async_job {
  struct event *ev;
  void (*work)(void *arg);
  void (*done)(void *arg);
  void *arg;
} gw_async_job;

static void on_done(evutil_socket_t fd, short what, void *p) {
  gw_async_job *j = p;
  void (*done)(void *) = j->done;
  void *arg = j->arg;

  (void)fd;
  (void)what;
  event_free(j->ev);
  free(j);
  done(arg);
}

static void on_pool(void *p) {
  gw_async_job *j = p;

  j->work(j->arg);
  /* Thread-safe with libevent's locking on: wakes the job's loop. */
  event_active(j->ev, EV_READ, 0);
}

int gw_async_run(p11_pool *pool, struct event_base *base,
                 void (*work)(void *arg), void (*done)(void *arg), void *arg) {
  gw_async_job *j = calloc(1, sizeof(*j));
  int rv;

  if (!j) {
    return GW_ERR_NOMEM;
  }
  j->work = work;
  j->done = done;
  j->arg = arg;
  j->ev = event_new(base, -1, 0, on_done, j);
  if (!j->ev) {
    free(j);
    return GW_ERR_NOMEM;
  }
  rv = p11_pool_submit(pool, on_pool, j);
  if (rv != P11_OK) {
    event_free(j->ev);
    free(j);
    return rv == P11_ERR_BUSY ? GW_ERR_BUSY : GW_ERR_NOMEM;
  }
  return GW_OK;
}
