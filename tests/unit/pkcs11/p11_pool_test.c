/* p11_pool_test.c — pkcs11/p11_pool.c: every job runs, a full queue says
 * BUSY at once, p11_pool_del drains the queue and joins the threads. */
#include "harness.h"
#include "p11.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int counter;
static int gate_open;
static int started;

static void count_job(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  counter++;
  pthread_mutex_unlock(&mu);
}

static void slow_job(void *arg) {
  (void)arg;
  usleep(1000);
  count_job(NULL);
}

/* Waits (at most 5 s) until the test opens the gate. */
static void gated_job(void *arg) {
  struct timespec until;
  (void)arg;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&mu);
  started++;
  pthread_cond_broadcast(&cv);
  while (!gate_open) {
    if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT) {
      break;
    }
  }
  counter++;
  pthread_mutex_unlock(&mu);
}

static void reset(void) {
  pthread_mutex_lock(&mu);
  counter = 0;
  gate_open = 0;
  started = 0;
  pthread_mutex_unlock(&mu);
}

static int wait_started(int n) {
  struct timespec until;
  int ok;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&mu);
  while (started < n) {
    if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT) {
      break;
    }
  }
  ok = started >= n;
  pthread_mutex_unlock(&mu);
  return ok;
}

static void open_gate(void) {
  pthread_mutex_lock(&mu);
  gate_open = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void test_args(void) {
  p11_pool *p = NULL;
  T_EQ_INT(p11_pool_new(&p, 0, 10), P11_ERR_INVALID);
  T_EQ_INT(p11_pool_new(&p, 65, 10), P11_ERR_INVALID);
  T_EQ_INT(p11_pool_new(&p, 2, 0), P11_ERR_INVALID);
  T_EQ_INT(p11_pool_new(NULL, 2, 10), P11_ERR_INVALID);
  T_ASSERT(p == NULL);
  T_EQ_INT(p11_pool_submit(NULL, count_job, NULL), P11_ERR_INVALID);
  T_EQ_INT(p11_pool_new(&p, 1, 1), P11_OK);
  T_EQ_INT(p11_pool_submit(p, NULL, NULL), P11_ERR_INVALID);
  p11_pool_del(p);
  p11_pool_del(NULL);
}

/* Order is not promised, but every job runs exactly once. */
static void test_all_jobs_run(void) {
  p11_pool *p = NULL;
  int submitted = 0;
  reset();
  T_EQ_INT(p11_pool_new(&p, 4, 1000), P11_OK);
  if (p == NULL) {
    return;
  }
  for (int i = 0; i < 500; i++) {
    if (p11_pool_submit(p, count_job, NULL) == P11_OK) {
      submitted++;
    }
  }
  T_EQ_INT(submitted, 500);
  p11_pool_del(p);
  T_EQ_INT(counter, 500);
}

/* With the only thread busy, |queue_max| jobs wait and the next is refused
 * at once; all accepted jobs still run. */
static void test_busy_when_full(void) {
  p11_pool *p = NULL;
  reset();
  T_EQ_INT(p11_pool_new(&p, 1, 2), P11_OK);
  if (p == NULL) {
    return;
  }
  T_EQ_INT(p11_pool_submit(p, gated_job, NULL), P11_OK);
  T_ASSERT(wait_started(1));
  T_EQ_INT(p11_pool_submit(p, count_job, NULL), P11_OK);
  T_EQ_INT(p11_pool_submit(p, count_job, NULL), P11_OK);
  T_EQ_INT(p11_pool_submit(p, count_job, NULL), P11_ERR_BUSY);
  T_EQ_INT(p11_pool_submit(p, count_job, NULL), P11_ERR_BUSY);
  open_gate();
  p11_pool_del(p);
  T_EQ_INT(counter, 3);
}

/* Queued jobs are not dropped by p11_pool_del. */
static void test_del_drains(void) {
  p11_pool *p = NULL;
  reset();
  T_EQ_INT(p11_pool_new(&p, 2, 100), P11_OK);
  if (p == NULL) {
    return;
  }
  for (int i = 0; i < 60; i++) {
    T_EQ_INT(p11_pool_submit(p, slow_job, NULL), P11_OK);
  }
  p11_pool_del(p);
  T_EQ_INT(counter, 60);
}

/* Two threads really run two jobs at once: each job waits for the other
 * to start (a one-thread pool would time out here). */
static void both_job(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  started++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  if (wait_started(2)) {
    count_job(NULL);
  }
}

static void test_parallel(void) {
  p11_pool *p = NULL;
  reset();
  T_EQ_INT(p11_pool_new(&p, 2, 4), P11_OK);
  if (p == NULL) {
    return;
  }
  T_EQ_INT(p11_pool_submit(p, both_job, NULL), P11_OK);
  T_EQ_INT(p11_pool_submit(p, both_job, NULL), P11_OK);
  p11_pool_del(p);
  T_EQ_INT(counter, 2);
}

/* A job may queue further jobs while the pool runs. */
static p11_pool *chain_pool;
static void chain_job(void *arg) {
  long left = (long)arg;
  count_job(NULL);
  if (left > 0) {
    p11_pool_submit(chain_pool, chain_job, (void *)(left - 1));
  }
}

static void test_submit_from_job(void) {
  reset();
  T_EQ_INT(p11_pool_new(&chain_pool, 2, 4), P11_OK);
  if (chain_pool == NULL) {
    return;
  }
  T_EQ_INT(p11_pool_submit(chain_pool, chain_job, (void *)9L), P11_OK);
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&mu);
    int done = counter >= 10;
    pthread_mutex_unlock(&mu);
    if (done) {
      break;
    }
    usleep(1000);
  }
  p11_pool_del(chain_pool);
  T_EQ_INT(counter, 10);
}

int main(void) {
  T_RUN(test_args);
  T_RUN(test_all_jobs_run);
  T_RUN(test_busy_when_full);
  T_RUN(test_del_drains);
  T_RUN(test_parallel);
  T_RUN(test_submit_from_job);
  return T_DONE();
}
