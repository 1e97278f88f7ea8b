/* gw_operators.h — the gateway's endpoints for the mobile operators:
 *
 *   POST /operators/{name}/notify
 *        A server-to-server notification (ETSI TS 102 204
 *        asynchServerServer): the final MSS_StatusResp of a transaction,
 *        signed with X-MSS-Signature (op_adapter.h, op_notify). Answers at
 *        once — 200 with the operator's acknowledgement (an
 *        MSS_ReceiptReq-shaped body) when the notification is good, else
 *        {"error", "message"} with 400, 401, 404, 409 or 415 — and the
 *        transaction it ends is finished afterwards on its own loop. The
 *        body is capped at 256 KiB. Every notification is logged with its
 *        result (refusals rate-limited), never its body or signature.
 *
 * The handler finds the operator registry in the gw_app (gw_app.h). */
#ifndef GW_OPERATORS_H
#define GW_OPERATORS_H

#include "gw_router.h"

#define GW_OPERATORS_NOTIFY_MAX (256 * 1024)

/* Adds the routes above. Returns gw_router_add's errors. */
int gw_operators_register(gw_router *r);

#endif
