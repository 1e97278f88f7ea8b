/* op_breaker.c — closed / open / half-open, under one mutex. */
#include "op_breaker.h"

#include <pthread.h>
#include <stdlib.h>

#include "gw_err.h"

struct op_breaker {
  pthread_mutex_t mu;
  op_breaker_config cfg;
  op_breaker_state state;
  int failures;        /* consecutive, while closed */
  int probes;          /* permits out while half open */
  uint64_t open_until; /* while open */
  uint64_t opened;
  uint64_t rejected;
};

const char *op_breaker_state_str(op_breaker_state s) {
  switch (s) {
  case OP_BREAKER_CLOSED:
    return "closed";
  case OP_BREAKER_OPEN:
    return "open";
  case OP_BREAKER_HALF_OPEN:
    return "half_open";
  }
  return "unknown";
}

int op_breaker_new(op_breaker **out, const op_breaker_config *cfg) {
  op_breaker *b;

  if (!out || !cfg || cfg->failure_threshold < 0 || cfg->cooldown_ms < 1 ||
      cfg->half_open_probes < 1) {
    return GW_ERR_INVALID;
  }
  b = calloc(1, sizeof(*b));
  if (!b) {
    return GW_ERR_NOMEM;
  }
  if (pthread_mutex_init(&b->mu, NULL) != 0) {
    free(b);
    return GW_ERR_NOMEM;
  }
  b->cfg = *cfg;
  b->state = OP_BREAKER_CLOSED;
  *out = b;
  return GW_OK;
}

void op_breaker_del(op_breaker *b) {
  if (!b) {
    return;
  }
  pthread_mutex_destroy(&b->mu);
  free(b);
}

/* Moves OPEN to HALF_OPEN once the cool-down is over. Locked. */
static void tick(op_breaker *b, uint64_t now) {
  if (b->state == OP_BREAKER_OPEN && now >= b->open_until) {
    b->state = OP_BREAKER_HALF_OPEN;
    b->probes = 0;
  }
}

static void trip(op_breaker *b, uint64_t now) {
  b->state = OP_BREAKER_OPEN;
  b->open_until = now + (uint64_t)b->cfg.cooldown_ms * 1000000u;
  b->failures = 0;
  b->probes = 0;
  b->opened++;
}

int op_breaker_allow(op_breaker *b, uint64_t now_ns) {
  int ok = 0;

  if (!b || b->cfg.failure_threshold == 0) {
    return 1;
  }
  pthread_mutex_lock(&b->mu);
  tick(b, now_ns);
  switch (b->state) {
  case OP_BREAKER_CLOSED:
    ok = 1;
    break;
  case OP_BREAKER_HALF_OPEN:
    if (b->probes < b->cfg.half_open_probes) {
      b->probes++;
      ok = 1;
    }
    break;
  case OP_BREAKER_OPEN:
    break;
  }
  if (!ok) {
    b->rejected++;
  }
  pthread_mutex_unlock(&b->mu);
  return ok;
}

void op_breaker_report(op_breaker *b, op_breaker_verdict v, uint64_t now_ns) {
  if (!b || b->cfg.failure_threshold == 0) {
    return;
  }
  pthread_mutex_lock(&b->mu);
  tick(b, now_ns);
  switch (b->state) {
  case OP_BREAKER_CLOSED:
    if (v == OP_BREAKER_SUCCESS) {
      b->failures = 0;
    } else if (v == OP_BREAKER_FAILURE &&
               ++b->failures >= b->cfg.failure_threshold) {
      trip(b, now_ns);
    }
    break;
  case OP_BREAKER_HALF_OPEN:
    /* A verdict here may come from a request permitted before the breaker
     * opened; it still says what the operator does now. */
    if (v == OP_BREAKER_SUCCESS) {
      b->state = OP_BREAKER_CLOSED;
      b->failures = 0;
      b->probes = 0;
    } else if (v == OP_BREAKER_FAILURE) {
      trip(b, now_ns);
    } else if (b->probes > 0) {
      b->probes--;
    }
    break;
  case OP_BREAKER_OPEN:
    /* Late answers of requests sent before it opened: the cool-down
     * stands. */
    break;
  }
  pthread_mutex_unlock(&b->mu);
}

op_breaker_state op_breaker_state_at(op_breaker *b, uint64_t now_ns) {
  op_breaker_state s;

  if (!b) {
    return OP_BREAKER_CLOSED;
  }
  pthread_mutex_lock(&b->mu);
  tick(b, now_ns);
  s = b->state;
  pthread_mutex_unlock(&b->mu);
  return s;
}

void op_breaker_get_stats(op_breaker *b, uint64_t now_ns,
                          op_breaker_stats *out) {
  *out = (op_breaker_stats){0};
  if (!b) {
    return;
  }
  pthread_mutex_lock(&b->mu);
  tick(b, now_ns);
  out->state = b->state;
  out->opened = b->opened;
  out->rejected = b->rejected;
  out->consecutive_failures = b->failures;
  out->open_until_ns = b->state == OP_BREAKER_OPEN ? b->open_until : 0;
  pthread_mutex_unlock(&b->mu);
}
