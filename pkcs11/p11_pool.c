/* p11_pool.c — a fixed pool of threads and a bounded queue for PKCS#11
 * jobs, so that nothing that blocks on a token runs on an event-loop
 * thread. The queue is a ring of |queue_max| slots; a full ring answers
 * P11_ERR_BUSY at once instead of blocking the submitter. */
#include "p11.h"

#include <pthread.h>
#include <stdlib.h>

#define P11_POOL_THREADS_MAX 64
#define P11_POOL_QUEUE_MAX 1000000

typedef struct p11_job {
  void (*fn)(void *arg);
  void *arg;
} p11_job;

struct p11_pool {
  pthread_mutex_t lock;
  pthread_cond_t cond; /* a job was queued, or the pool is stopping */
  p11_job *ring;
  size_t cap, head, count;
  int stopping;
  int nthreads;
  pthread_t *threads;
};

static void *pool_main(void *arg) {
  p11_pool *p = arg;
  p11_job job;

  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (p->count == 0 && !p->stopping) {
      pthread_cond_wait(&p->cond, &p->lock);
    }
    if (p->count == 0) {
      break; /* stopping and drained */
    }
    job = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->count--;
    pthread_mutex_unlock(&p->lock);
    job.fn(job.arg);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

int p11_pool_new(p11_pool **out, int nthreads, int queue_max) {
  p11_pool *p;
  int started = 0, rc = P11_ERR_NOMEM;

  if (out == NULL || nthreads < 1 || nthreads > P11_POOL_THREADS_MAX ||
      queue_max < 1 || queue_max > P11_POOL_QUEUE_MAX) {
    return P11_ERR_INVALID;
  }
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    return P11_ERR_NOMEM;
  }
  p->cap = (size_t)queue_max;
  p->ring = calloc(p->cap, sizeof *p->ring);
  p->threads = calloc((size_t)nthreads, sizeof *p->threads);
  if (p->ring == NULL || p->threads == NULL) {
    goto fail_alloc;
  }
  if (pthread_mutex_init(&p->lock, NULL) != 0) {
    goto fail_alloc;
  }
  if (pthread_cond_init(&p->cond, NULL) != 0) {
    goto fail_lock;
  }
  for (started = 0; started < nthreads; started++) {
    if (pthread_create(&p->threads[started], NULL, pool_main, p) != 0) {
      goto fail_threads;
    }
  }
  p->nthreads = nthreads;
  *out = p;
  return P11_OK;

fail_threads:
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  while (started-- > 0) {
    pthread_join(p->threads[started], NULL);
  }
  pthread_cond_destroy(&p->cond);
fail_lock:
  pthread_mutex_destroy(&p->lock);
fail_alloc:
  free(p->threads);
  free(p->ring);
  free(p);
  return rc;
}

int p11_pool_submit(p11_pool *p, void (*fn)(void *arg), void *arg) {
  int rc = P11_OK;

  if (p == NULL || fn == NULL) {
    return P11_ERR_INVALID;
  }
  pthread_mutex_lock(&p->lock);
  if (p->stopping) {
    rc = P11_ERR_INVALID;
  } else if (p->count == p->cap) {
    rc = P11_ERR_BUSY;
  } else {
    p->ring[(p->head + p->count) % p->cap] = (p11_job){fn, arg};
    p->count++;
    pthread_cond_signal(&p->cond);
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

void p11_pool_del(p11_pool *p) {
  if (p == NULL) {
    return;
  }
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) {
    pthread_join(p->threads[i], NULL);
  }
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->lock);
  free(p->threads);
  free(p->ring);
  free(p);
}
