/* gw_client.h — the relying parties (OAuth clients) of the OpenID Connect
 * provider: the registry, its seed file, and client authentication.
 *
 * The registry lives in the store (gw_store.h, gw_store_client_*); it is
 * seeded at start-up from oidc.clients_file (configs/clients.conf ships no
 * client; the demo's var/clients.conf registers demo-rp, licensing-portal
 * and the licensing resource server) and managed with `mpkictl client
 * add|list|remove`. Secrets are stored as SHA-256 hashes (a fast hash is
 * right for secrets of >= 256 random bits; generated ones are 32 random
 * bytes, base64url). A secret shorter than 32 bytes is refused unless the
 * configuration says oidc.demo = true.
 *
 * The seed file (libconfig):
 *   clients = (
 *     { client_id = "demo-rp";
 *       name = "Demo RP";                    # shown on the phone
 *       secret = "demo-rp-secret";           # or secret_sha256 = "<hex>"
 *       auth_methods = ["client_secret_basic", "client_secret_post"];
 *       grant_types = ["urn:openid:params:grant-type:ciba"];
 *       scopes = ["openid", "profile", "licensing"];
 *       resources = ["https://127.0.0.1:8443/licensing"];
 *       redirect_uris = [];
 *       ciba_mode = "poll";                  # "poll" | "ping" | "" (none)
 *       ciba_notification_endpoint = "";     # ping mode
 *       id_token_alg = "ES256";              # or "RS256"
 *       resource_server = false; }           # may introspect tokens whose
 *   );                                       # aud is one of its resources
 * Defaults: name = client_id, auth_methods both, grant_types / scopes /
 * resources / redirect_uris empty, ciba_mode "" (with the CIBA grant:
 * poll), id_token_alg "ES256", resource_server false. Unknown keys are
 * refused. Rows from the file replace rows with the same client_id (keeping
 * their created_at); clients added with mpkictl and absent from the file
 * stay. The whole file is checked before anything is written. Errors:
 * "file:line: reason"; a secret is never part of one.
 *
 * At run time the gateway works on an in-memory snapshot (gw_clients),
 * loaded at start-up and reloaded by gw_clients_reload (the housekeeping
 * timer calls it), so that a request never waits for the store. */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stddef.h>

#include "gw_store.h"

struct gw_config;

#define GW_CLIENT_SECRET_MIN 32 /* bytes, unless oidc.demo */

/* Grant types, as bits of gw_client.grants. */
#define GW_GRANT_CIBA 0x1u      /* urn:openid:params:grant-type:ciba */
#define GW_GRANT_AUTH_CODE 0x2u /* authorization_code */
#define GW_GRANT_REFRESH 0x4u   /* refresh_token */

/* Client authentication methods, as bits of gw_client.auth_methods. */
#define GW_AUTH_BASIC 0x1u /* client_secret_basic */
#define GW_AUTH_POST 0x2u  /* client_secret_post */

/* A client as the request paths use it (parsed from gw_store_client). */
typedef struct gw_client {
  gw_store_client row; /* as stored: id, name, hash, the lists as text */
  unsigned grants;
  unsigned auth_methods;
  int ciba_ping; /* ciba_mode "ping" */
} gw_client;

/* 1 when the space-separated |list| holds |word| exactly; 0 otherwise (also
 * for NULL, an empty word or one with a space). */
int gw_client_list_has(const char *list, const char *word);

/* ---- the snapshot ------------------------------------------------------ */

typedef struct gw_clients gw_clients;

/* Loads every client of the store into a new snapshot. A stored row that
 * fails gw_client_check is left out (that client cannot authenticate),
 * with one warning in the log for all such rows. Returns GW_OK,
 * GW_ERR_INVALID (no |out| or |st|), GW_ERR_LIMIT (more than 1024
 * clients), GW_ERR_NOMEM or the store's error; the reason is in |err|. */
int gw_clients_new(gw_clients **out, gw_store *st, char *err, size_t errlen);

/* Replaces the snapshot's contents with the store's (thread-safe; readers
 * keep the copies they made; the store is read before the write lock is
 * taken, so requests do not wait for it). The warning about rows left out
 * is repeated only when their number changes. Returns GW_OK or an error as
 * for gw_clients_new (the old contents stay). */
int gw_clients_reload(gw_clients *c, gw_store *st);

/* Frees |c|; NULL is a no-op. No other thread may use it any more. */
void gw_clients_del(gw_clients *c);

/* Copies client |client_id| into |*out|. Returns GW_OK, GW_ERR_NOT_FOUND
 * or GW_ERR_INVALID (a NULL argument). Thread-safe. */
int gw_clients_get(gw_clients *c, const char *client_id, gw_client *out);

/* Number of clients (for logs); 0 for NULL. */
size_t gw_clients_count(gw_clients *c);

/* ---- client authentication (RFC 6749 §2.3.1) -------------------------- */

typedef enum gw_client_auth_result {
  GW_CLIENT_AUTH_OK = 0,
  GW_CLIENT_AUTH_NONE,      /* no credentials at all: 401 invalid_client */
  GW_CLIENT_AUTH_MALFORMED, /* bad Basic header, both methods used, a
                               repeated parameter: 400 invalid_request */
  GW_CLIENT_AUTH_FAILED     /* unknown client, wrong secret, a method the
                               client may not use: 401 invalid_client
                               (the same answer for all three) */
} gw_client_auth_result;

/* Authenticates the caller of a token-endpoint-like request from the
 * Authorization header value |authz| (may be NULL) and the form
 * parameters |form_id| / |form_secret| (client_id / client_secret; may be
 * NULL). The secret is compared as SHA-256 hashes in constant time; an
 * unknown client costs the same hash. On OK copies the client into |*out|
 * (untouched otherwise).
 *
 * Basic is "Basic base64(urlencode(client_id) ":" urlencode(secret))"
 * (strict padded base64, at most 1368 characters; both halves
 * form-urlencoded, '+' = space). An Authorization value that is not Basic
 * is MALFORMED. A form client_id beside Basic is allowed when it names the
 * same client; a form client_secret beside Basic is MALFORMED. A
 * client_secret without client_id is MALFORMED; a client_id without a
 * secret is NONE. The method used must be in the client's auth_methods.
 * The caller refuses repeated form parameters (gw_form_count) itself.
 *
 * |why| (may be NULL) gets a static reason for the server's log ("unknown
 * client", "wrong secret", ...; never the secret). Thread-safe. */
gw_client_auth_result gw_client_authenticate(gw_clients *c, const char *authz,
                                             const char *form_id,
                                             const char *form_secret,
                                             gw_client *out, const char **why);

/* ---- the seed file and administration --------------------------------- */

/* Reads |path| (the seed file) and puts every client into |st|; |*count|
 * (may be NULL) gets how many. |demo| allows secrets under 32 bytes. The
 * file is checked whole before the first write. mpkigw calls it at
 * start-up with oidc.clients_file and oidc.demo. Returns GW_OK,
 * GW_ERR_CONFIG / GW_ERR_IO ("file:line: reason" in |err|), GW_ERR_NOMEM,
 * GW_ERR_INVALID (no store) or the store's error ("file: client \"id\":
 * store: reason"). An empty |path| (oidc.clients_file = "") is GW_OK with
 * 0 clients; so is a missing file when |optional| is set. The file's plain
 * secrets are wiped from memory once hashed. */
int gw_clients_seed(gw_store *st, const char *path, int demo, int optional,
                    size_t *count, char *err, size_t errlen);

/* Generates a secret: 32 random bytes as base64url (43 characters) into
 * |out| (cap >= 44). Returns GW_OK, GW_ERR_INVALID (|out| NULL or |cap| <
 * 44) or GW_ERR_INTERNAL (no randomness). The caller wipes it after use. */
int gw_client_secret_generate(char *out, size_t cap);

/* SHA-256 of |secret| (NULL hashes as ""). */
void gw_client_secret_hash(const char *secret, unsigned char out[32]);

/* Checks a client row: every string terminated in its array; id syntax
 * [A-Za-z0-9._-]{1,64}; a name of UTF-8 text without control characters;
 * lists of words separated by one space, none repeated; auth_methods
 * non-empty and known; grant_types known, empty only for a resource
 * server; scopes of RFC 6749 §3.3 scope-token bytes; resources and
 * redirect_uris https:// (or http:// to 127.0.0.1, localhost, [::1])
 * without fragment or user info; authorization_code needs a redirect URI;
 * ciba_mode "", "poll" or "ping", and not "" only with the CIBA grant; ping
 * needs an https:// ciba_notification_endpoint, which is for ping alone;
 * id_token_alg ES256 or RS256; resource_server 0/1. Returns GW_OK or
 * GW_ERR_INVALID with the reason, naming the field, in |err|. */
int gw_client_check(const gw_store_client *row, char *err, size_t errlen);

#endif
