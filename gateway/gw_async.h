/* gw_async.h — blocking work off the event loop, its end back on the loop.
 *
 * PKCS#11 signatures (tokens), signature verification and other calls that
 * may take milliseconds run on a p11_pool thread; their continuation runs
 * on the event loop that asked, where exchanges may be answered. The event
 * that carries the continuation is made on the caller's loop before the
 * work is queued (libevent's thread support is on: op_registry_new /
 * gw_server_new turn it on), and activated from the pool thread. */
#ifndef GW_ASYNC_H
#define GW_ASYNC_H

struct event_base;
struct p11_pool;

/* Runs |work(arg)| on |pool|, then |done(arg)| on the thread of |base|
 * (never inside this call). Returns GW_OK; GW_ERR_BUSY (the pool's queue
 * is full) or GW_ERR_NOMEM with neither function run. Call from |base|'s
 * thread. |base| must outlive the job. */
int gw_async_run(struct p11_pool *pool, struct event_base *base,
                 void (*work)(void *arg), void (*done)(void *arg), void *arg);

#endif
