/* mock_handset.h — the virtual handsets of the mock MSSPs: one page per
 * subscriber, GET /handset/{msisdn}, on which a person sees the signature
 * requests waiting on that phone (display text and verification code) and
 * approves one with the SIM's PIN or refuses it. Served by both mocks.
 *
 * Routes (mock_handset_routes):
 *   GET  /handset/{msisdn}
 *        The page: HTML, Arabic (right to left, the default) and English
 *        (?lang=en; a switch on the page), phone-sized, no external
 *        resources. Its script long-polls the JSON below, so it updates by
 *        itself when a request arrives or ends.
 *   GET  /handset/{msisdn}/requests?since=V&wait_ms=N
 *        {"msisdn", "version": V', "requests": [{"mssp_trans_id",
 *        "display", "verification_code": "0421", "created_at",
 *        "expires_at", "pin_attempts", "state": "waiting"|"signing"}]}.
 *        With since=V equal to the phone's current version it waits (at
 *        most wait_ms, <= 30000) until something changes for this phone.
 *   POST /handset/{msisdn}/requests/{mssp_trans_id}/approve  {"pin": "..."}
 *        The SIM signs if its token takes the PIN: {"result": "signed"};
 *        a wrong PIN counts toward blocking: {"result": "wrong_pin",
 *        "tries_left": N} (the request keeps waiting) or {"result":
 *        "pin_blocked"} (it ended with 402).
 *   POST /handset/{msisdn}/requests/{mssp_trans_id}/refuse
 *        {"result": "refused"} (the transaction ends with 401).
 * POST bodies must be application/json (a cross-site form cannot send
 * that without a CORS preflight, which the mock never grants). Errors are
 * the server's JSON {"error": code, "message": text}: 400 bad MSISDN or
 * body, 404 not a subscriber / no such waiting request, 409 the request
 * does not wait for a handset or the SIM is busy.
 *
 * The verification code is the handset's own computation (REFERENCE §2,
 * the Estonian Mobile-ID algorithm) over the 32-byte digest the SIM signs
 * (REFERENCE §1c), independent of the gateway's.
 *
 * Threads: everything runs on the mock's single server worker (the
 * engine's loop). */
#ifndef MOCK_HANDSET_H
#define MOCK_HANDSET_H

#include <stdint.h>

#include "gw_router.h"

typedef struct mock_handset mock_handset;

/* Creates the handsets' state (per-phone change versions, long-poll
 * waiters). Returns GW_OK or GW_ERR_NOMEM. */
int mock_handset_new(mock_handset **out);

/* Frees it; waiters still parked are dropped (call after the server
 * stopped). NULL is a no-op. */
void mock_handset_del(mock_handset *h);

/* Something changed for |msisdn| (the engine's on_change hook): bumps the
 * phone's version and answers its parked long polls. Loop thread. */
void mock_handset_changed(mock_handset *h, const char *msisdn);

/* Adds the routes above. Handlers find the engine and this state in the
 * server's mock_app (mock_front.h). Returns gw_router_add's errors. */
int mock_handset_routes(gw_router *r);

/* The verification code of the hash |h| (|n| bytes; the handset passes
 * the 32-byte digest the SIM signs): ((h[0] & 0xFC) << 5) | (h[n-1] &
 * 0x7F), 0..8191, shown as %04d; -1 when n is 0. */
int mock_handset_code(const uint8_t *h, size_t n);

#endif
