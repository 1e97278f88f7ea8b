/* gw_audit.h — the audit log: every transaction, token and session event
 * as a row of an append-only hash chain in the store (table audit), whose
 * head is signed with the gateway's ES256 key every GW_AUDIT_CHECKPOINT_ROWS
 * rows or GW_AUDIT_CHECKPOINT_MS (table audit_checkpoints), so that
 * rewriting, removing or truncating rows is detectable; and the verifier
 * behind `mpkictl audit verify`. See docs/audit.md.
 *
 * The chain: row N's hash is
 *   SHA-256(prev_hash || seq || ts || len kind || kind || len subject ||
 *           subject || len data || data)
 * with seq and ts (Unix ms) as 8-byte big-endian integers, each len a 4-byte
 * big-endian byte count, and prev_hash the hash of row N-1 (32 zero bytes
 * for row 1). A checkpoint is a compact JWS (alg ES256, typ
 * GW_AUDIT_JWT_TYP, the key's kid) of {"seq": N, "hash": hex of row N's
 * hash, "ts": Unix ms}.
 *
 * Event kinds (data is a JSON object; never a token, a secret, a PIN or a
 * signature; a jti or a transaction id is fine):
 *   signin.begin     subject civil id or MSISDN; {"txn", "client", "operator",
 *                    "msisdn"}
 *   signin.end       subject likewise; {"txn", "state", "failure", "detail"}
 *   token.issued     subject the sub; {"client", "sub", "jti", "aud",
 *                    "type": "access"|"id"|"refresh"}
 *   token.revoked    subject the jti; {"client", "jti"}
 *   session.created  subject the sub; {"sid", "client"}
 *   session.ended    subject the sub; {"sid", "reason"}
 *   refresh.rotated  subject the sub; {"client", "old_jti", "jti"}
 *   refresh.reuse    subject the sub; {"client", "jti"} (a replayed refresh
 *                    token: the family was revoked)
 *   audit.dropped    written by the log itself: {"count"} events lost to a
 *                    full queue or a store that kept failing
 *
 * Threads: gw_audit_event may be called from any thread at any time and
 * never blocks on the store or the token: it copies the event into a
 * bounded queue that one writer thread, with its own store handle, drains.
 * gw_audit_new / gw_audit_del at start-up and shut-down. */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <stddef.h>

#include <jansson.h>

#include "gw_jose.h"
#include "gw_store.h"

struct gw_config;

#define GW_AUDIT_QUEUE_MAX 100000       /* events waiting for the writer */
#define GW_AUDIT_CHECKPOINT_ROWS 1000   /* sign the head every N rows... */
#define GW_AUDIT_CHECKPOINT_MS 300000LL /* ...or every 5 minutes */
#define GW_AUDIT_JWT_TYP "audit+jwt"    /* RFC 8725 §3.11 explicit typing */

typedef struct gw_audit gw_audit;

/* Defaults for zero fields; tests set small thresholds. */
typedef struct gw_audit_opts {
  size_t queue_max;          /* 0 = GW_AUDIT_QUEUE_MAX */
  long long checkpoint_rows; /* 0 = GW_AUDIT_CHECKPOINT_ROWS */
  long long checkpoint_ms;   /* 0 = GW_AUDIT_CHECKPOINT_MS */
} gw_audit_opts;

/* Opens the writer's own store handle on cfg's store, reads the head of the
 * chain (the log continues from the last row) and starts the writer
 * thread. |signer| is borrowed and must outlive the log; it needs an ES256
 * key. NULL: no checkpoints (logged as a warning; `audit verify` then sees
 * an unsigned chain). |opts| may be NULL. On failure |*out| is untouched
 * and |err| says why. Returns GW_OK, GW_ERR_INVALID (NULL out/cfg),
 * GW_ERR_CONFIG (a signer without an ES256 key), the store's open errors,
 * GW_ERR_STORE (the head cannot be read), GW_ERR_NOMEM, GW_ERR_INTERNAL (no
 * thread). */
int gw_audit_new(gw_audit **out, const struct gw_config *cfg, gw_signer *signer,
                 const gw_audit_opts *opts, char *err, size_t errlen);

/* Records an event: |kind| one of the kinds above (1..GW_STORE_AUDIT_KIND_MAX
 * printable ASCII; anything else is dropped and logged), |subject| who it
 * is about (NULL = ""; bytes outside printable ASCII become '?', cut at
 * GW_STORE_AUDIT_SUBJECT_MAX), |data| a JSON value that is STOLEN: the call
 * releases the reference, on every path, so that `gw_audit_event(a, k, s,
 * json_pack(...))` never leaks (NULL = {}). Data serialised over
 * GW_STORE_AUDIT_DATA_MAX bytes is replaced by {"truncated": bytes}. Time
 * stamped now. Never blocks on I/O; when the queue is full the event is
 * dropped, counted, logged and recorded later as an audit.dropped row.
 * |a| NULL is a no-op (the log is off). */
void gw_audit_event(gw_audit *a, const char *kind, const char *subject,
                    json_t *data);

/* Events dropped so far (queue full, store failures, bad kinds). */
unsigned long long gw_audit_dropped(gw_audit *a);

/* Writes every queued event, signs a final checkpoint when rows are not
 * covered yet, stops the thread, closes its store and frees |a|. NULL is a
 * no-op. Blocks (the store, the token). */
void gw_audit_del(gw_audit *a);

/* The hash of a row (see above) into |out| (32 bytes). */
void gw_audit_hash(const unsigned char prev[32], long long seq, long long ts,
                   const char *kind, const char *subject, const char *data,
                   unsigned char out[32]);

/* ---- verification -------------------------------------------------------
 * What `mpkictl audit verify` runs: recomputes the chain from the first
 * row (or from |from_seq|, then trusting that row's prev_hash) and checks
 * every checkpoint's signature with the public keys in |keys_dir| (every
 * EC P-256 public key file *.pem there, by kid: rotated keys stay
 * verifiable while their file is kept) and that it signs the recomputed
 * hash of its row. Stops at the first fault, in seq order. */
typedef struct gw_audit_report {
  long long rows;            /* rows checked */
  long long checkpoints;     /* checkpoints checked */
  long long first_seq;       /* first row checked, 0 none */
  long long last_seq;        /* last row checked, 0 none */
  long long last_checkpoint; /* seq of the last good checkpoint, 0 none */
  long long bad_seq;         /* the first broken row or checkpoint, 0 */
  char reason[256];          /* the fault, or why verification failed */
} gw_audit_report;

/* Returns GW_OK (the chain is intact: rows after last_checkpoint are
 * intact but not yet signed), GW_ERR_INVALID (a fault: |rep->bad_seq| and
 * |rep->reason| name it), GW_ERR_CONFIG (no usable key in |keys_dir|),
 * GW_ERR_BUSY / GW_ERR_STORE / GW_ERR_NOMEM (|rep->reason| says why). */
int gw_audit_verify(gw_store *s, const char *keys_dir, long long from_seq,
                    gw_audit_report *rep);

#endif
