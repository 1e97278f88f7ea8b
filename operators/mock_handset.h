/* mock_handset.h — the virtual handsets of the mock MSSPs: one page per
 * subscriber, GET /handset/{msisdn}, on which a person sees the signature
 * requests waiting on that phone (display text and verification code) and
 * approves one with the SIM's PIN or refuses it. Served by both mocks.
 *
 * Routes (mock_handset_routes):
 *   GET  /handset/{msisdn}
 *        The page: HTML, Arabic (right to left, the default) and English
 *        (?lang=en; a switch on the page), phone-sized (usable at 360 px),
 *        no external resources: its inline style and script carry a fresh
 *        CSP nonce, and this response's Content-Security-Policy replaces
 *        the server's default for HTML (which forbids inline code) with
 *        default-src 'none', the nonce, connect-src 'self'. Every dynamic
 *        value is HTML-escaped on the server and set with textContent by
 *        the script. The script long-polls the JSON below (wait_ms=25000),
 *        so the page updates by itself when a request arrives or ends.
 *   GET  /handset/{msisdn}/requests?since=V&wait_ms=N
 *        {"msisdn", "version": V', "requests": [{"mssp_trans_id",
 *        "display", "verification_code": "0421", "created_at",
 *        "expires_at" (RFC 3339, UTC, ms), "expires_in_s" (seconds left,
 *        by the mock's clock), "pin_attempts", "state": "waiting" |
 *        "signing"}]}. With since=V equal to the phone's current version
 *        and N > 0 it waits (at most N ms, cut to 30000) until something
 *        changes for this phone, then answers with the state of that
 *        moment (the same state when the wait ended). Any other since, or
 *        none, is answered at once. Versions grow across restarts. At most
 *        64 waits per phone and 1024 in all: beyond, 503 "busy".
 *   POST /handset/{msisdn}/requests/{mssp_trans_id}/approve  {"pin": "..."}
 *        The PIN is 4 to 8 digits. The SIM signs if its token takes the
 *        PIN: {"result": "signed"}; a wrong PIN counts toward blocking:
 *        {"result": "wrong_pin", "tries_left": N} (the request keeps
 *        waiting) or {"result": "pin_blocked"} (it ended with 402); other
 *        SIM outcomes by their mock_sim_outcome_str name ("no_key", ...),
 *        "ended" when the request ended otherwise. Every answer also has
 *        "mssp_trans_id", "status" (the transaction's ETSI status after
 *        the answer: 504 while it waits) and "status_name".
 *   POST /handset/{msisdn}/requests/{mssp_trans_id}/refuse  {} or empty
 *        {"result": "refused"} (the transaction ends with 401).
 * POST bodies must be application/json (a cross-site form cannot send
 * that without a CORS preflight, which the mock never grants): 415
 * otherwise. Errors are the server's JSON {"error": code, "message":
 * text}: 400 invalid_msisdn, invalid_request (query), invalid_json,
 * invalid_pin; 404 unknown_subscriber, unknown_request (no such waiting
 * request on this phone: another phone's transaction is unknown here
 * too); 409 not_waiting (the SIM is busy with it, or the subscriber's
 * behaviour is not "handset"); 503 busy.
 *
 * The verification code is the handset's own computation (REFERENCE §2,
 * the Estonian Mobile-ID algorithm) over the 32-byte digest the SIM signs
 * (REFERENCE §1c), independent of the gateway's.
 *
 * Threads: everything runs on the mock's single server worker (the
 * engine's loop); nothing blocks it (the SIM's work runs on the engine's
 * pool). */
#ifndef MOCK_HANDSET_H
#define MOCK_HANDSET_H

#include <stdint.h>

#include "gw_router.h"

typedef struct mock_handset mock_handset;

/* Creates the handsets' state (per-phone change versions, long-poll
 * waiters). Returns GW_OK or GW_ERR_NOMEM. */
int mock_handset_new(mock_handset **out);

/* Frees it; waiters still parked are dropped without touching their
 * events (call after the server stopped: its loop may be gone; the
 * server's shutdown has cancelled every parked exchange already). NULL is
 * a no-op. */
void mock_handset_del(mock_handset *h);

/* Something changed for |msisdn| (the engine's on_change hook): bumps the
 * phone's version and wakes its parked long polls, which are answered on
 * the next loop iteration (not inside the engine's hook). Loop thread. */
void mock_handset_changed(mock_handset *h, const char *msisdn);

/* Adds the routes above. Handlers find the engine and this state in the
 * server's mock_app (mock_front.h). Returns gw_router_add's errors. */
int mock_handset_routes(gw_router *r);

/* The verification code of the hash |h| (|n| bytes; the handset passes
 * the 32-byte digest the SIM signs): ((h[0] & 0xFC) << 5) | (h[n-1] &
 * 0x7F), 0..8191, shown as %04d; -1 when |h| is NULL or |n| is 0. */
int mock_handset_code(const uint8_t *h, size_t n);

#endif
