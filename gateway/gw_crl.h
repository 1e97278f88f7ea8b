/* gw_crl.h — the certificate revocation list(s) of one file, reloaded when
 * the file changes. Used by gw_verify.c; see docs/verification.md.
 *
 * The file holds one DER CRL or any number of PEM CRLs. Each must be
 * signed by one of the CA certificates given at creation (its issuer, found
 * by name, with keyUsage cRLSign when the certificate has a keyUsage), have
 * a nextUpdate, and carry no critical extension (delta, partitioned and
 * indirect CRLs are not supported). One bad CRL makes the whole file bad:
 * checks then fail closed with GW_VERIFY_CRL_UNAVAILABLE.
 *
 * Threading: all functions except _new and _del may be called
 * concurrently. A reload reads and verifies the new file outside the lock
 * that checks take, then swaps it in. */
#ifndef GW_CRL_H
#define GW_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "gw_verify.h"

typedef struct gw_crl gw_crl;

/* Creates the CRL source for |path| and loads it once. |issuers| are the
 * CA certificates a CRL may be signed by (each is up-referenced; the stack
 * itself is not kept). A file that fails to load does not fail creation:
 * the state is kept and reported by gw_crl_check() and gw_crl_state().
 * Returns GW_OK, GW_ERR_INVALID (NULL or empty argument) or GW_ERR_NOMEM;
 * |*out| is untouched on failure. */
int gw_crl_new(gw_crl **out, const char *path, STACK_OF(X509) * issuers);

/* Frees |c|. NULL is a no-op. */
void gw_crl_del(gw_crl *c);

/* Reloads the file when its inode, size or modification time changed since
 * the last load, or when the last load failed and was at least a second
 * before |now|. Costs one stat() when nothing changed. Returns 1 when it
 * reloaded (the generation changed), 0 otherwise. */
int gw_crl_refresh(gw_crl *c, time_t now);

/* The generation: it starts at 1 and grows by one at each reload. */
uint64_t gw_crl_generation(gw_crl *c);

/* Number of loads (the first one included). */
uint64_t gw_crl_loads(gw_crl *c);

/* GW_VERIFY_OK when the last load was good, else GW_VERIFY_CRL_UNAVAILABLE
 * with the reason in |detail| (|n| bytes, may be NULL). */
gw_verify_result gw_crl_state(gw_crl *c, char *detail, size_t n);

/* Checks |cert|, issued by |issuer|, against the loaded CRL of that issuer
 * (same name and key; the latest by thisUpdate when there are several).
 * Returns GW_VERIFY_OK (then |*next_update| is that CRL's nextUpdate),
 * GW_VERIFY_REVOKED (serial, time and reason in |detail|),
 * GW_VERIFY_CRL_EXPIRED (now > nextUpdate + skew_s), or
 * GW_VERIFY_CRL_UNAVAILABLE (file bad, no CRL from this issuer, or
 * thisUpdate > now + skew_s). |*gen| (may be NULL) receives the generation
 * of the CRLs the answer came from. */
gw_verify_result gw_crl_check(gw_crl *c, X509 *cert, X509 *issuer, time_t now,
                              int skew_s, time_t *next_update, uint64_t *gen,
                              char *detail, size_t n);

#endif
