/* gw_session.h — browser login sessions, in memory (docs/browser.md).
 *
 * A session is what the __Host- cookie names: its id is 256 random bits
 * (base64url, GW_SESSION_ID_LEN characters) and is the cookie's value;
 * the table keeps only its SHA-256, so a memory dump or a log of the table
 * gives no usable cookie. A session holds its CSRF token (256 random bits,
 * required on every POST/DELETE of the login page), a stable internal sid
 * (which survives rotation: sign-ins and codes are bound to it), the
 * pending /authorize request, the sign-in in progress, and once signed in
 * the person and the refresh-token families issued in it (revoked at
 * logout).
 *
 * Timers: a session ends |idle_s| after its last use and |max_s| after it
 * was created, whichever comes first; an ended session is as if it never
 * existed (GW_ERR_NOT_FOUND). Expired sessions are purged lazily (at most
 * every 30 s, on create) and by gw_sessions_purge.
 *
 * Threads: every function is thread-safe (one mutex; the work under it is
 * a hash lookup and a copy). */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stddef.h>

#define GW_SESSION_ID_LEN 43 /* base64url of 32 random bytes */
#define GW_SESSION_MAX_FAMILIES 8
#define GW_SESSION_MAX_DEFAULT 200000 /* sessions in memory */

/* The /authorize request a session is signing in for. */
typedef struct gw_session_req {
  char client_id[65];
  char redirect_uri[513];
  char state[513];
  char nonce[256];
  char code_challenge[65];
  char scope[513];
  char resource[513];
  char acr[64];
  char lang[3]; /* "ar" | "en" */
} gw_session_req;

/* A copy of a session. */
typedef struct gw_session_info {
  char sid[GW_SESSION_ID_LEN + 1];  /* internal, stable over rotation */
  char csrf[GW_SESSION_ID_LEN + 1]; /* the page's anti-CSRF token */
  int has_req;
  gw_session_req req;
  char auth_id[GW_SESSION_ID_LEN + 1]; /* the page's sign-in, "" */
  /* signed in (sub non-empty) */
  char sub[17];
  char msisdn[17];
  long long auth_time;
  char families[GW_SESSION_MAX_FAMILIES][GW_SESSION_ID_LEN + 1];
  int nfamilies;
  long long created_ms, last_ms; /* Unix ms */
} gw_session_info;

typedef struct gw_sessions gw_sessions;

/* A table of at most |cap| sessions (0 = GW_SESSION_MAX_DEFAULT) with the
 * timeouts |idle_s| and |max_s| (> 0). Returns GW_OK, GW_ERR_INVALID,
 * GW_ERR_NOMEM; |*out| is untouched on failure. */
int gw_sessions_new(gw_sessions **out, int idle_s, int max_s, size_t cap);

/* Frees |s| and every session in it (ids wiped). NULL is a no-op. */
void gw_sessions_del(gw_sessions *s);

/* Makes a session with fresh random id, sid and csrf; writes the id
 * (the cookie value) to |id| and the new session to |info| (may be
 * NULL). Returns GW_OK, GW_ERR_LIMIT (the table is full of live
 * sessions), GW_ERR_INTERNAL (no randomness), GW_ERR_NOMEM. */
int gw_session_create(gw_sessions *s, char id[GW_SESSION_ID_LEN + 1],
                      gw_session_info *info);

/* Copies the live session named by cookie value |id| into |out| and
 * records the use (idle timer). Returns GW_OK, GW_ERR_NOT_FOUND (unknown,
 * malformed or ended), GW_ERR_INVALID (NULL). */
int gw_session_get(gw_sessions *s, const char *id, gw_session_info *out);

/* Replaces the contents of session |id| with |in| (sid, created_ms and
 * the timers are kept). Returns GW_OK, GW_ERR_NOT_FOUND, GW_ERR_INVALID. */
int gw_session_put(gw_sessions *s, const char *id, const gw_session_info *in);

/* Rotation (at sign-in): gives session |old_id| a new random id (written
 * to |new_id|) and a new CSRF token; the old id stops working at once.
 * Returns GW_OK, GW_ERR_NOT_FOUND, GW_ERR_INTERNAL, GW_ERR_INVALID. */
int gw_session_rotate(gw_sessions *s, const char *old_id,
                      char new_id[GW_SESSION_ID_LEN + 1]);

/* Ends session |id|, copying it first into |out| (may be NULL). Returns
 * GW_OK, GW_ERR_NOT_FOUND, GW_ERR_INVALID. */
int gw_session_end(gw_sessions *s, const char *id, gw_session_info *out);

/* Adds refresh-token family |family| to the session whose sid is |sid|
 * (the oldest is forgotten beyond GW_SESSION_MAX_FAMILIES). Returns GW_OK
 * or GW_ERR_NOT_FOUND. */
int gw_session_add_family(gw_sessions *s, const char *sid, const char *family);

/* Drops ended sessions; returns how many. */
size_t gw_sessions_purge(gw_sessions *s);

/* Live sessions in memory (for /metrics and tests). */
size_t gw_sessions_count(gw_sessions *s);

/* 1 when |given| equals |info->csrf| (constant time); 0 otherwise, also
 * for NULL. */
int gw_session_csrf_ok(const gw_session_info *info, const char *given);

/* Fills |out| (cap >= 44) with 32 random bytes as base64url. Returns
 * GW_OK, GW_ERR_INVALID, GW_ERR_INTERNAL. */
int gw_session_random_id(char *out, size_t cap);

#endif
