/* gw_handlers.h — the gateway's operational endpoints: GET /healthz and
 * GET /metrics. Later modules register their own routes beside these. */
#ifndef GW_HANDLERS_H
#define GW_HANDLERS_H

#include "gw_router.h"

/* Adds the operational routes to |r|. Returns gw_router_add's errors. */
int gw_handlers_register(gw_router *r);

#endif
