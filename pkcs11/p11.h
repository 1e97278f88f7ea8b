/* p11.h — the one module that talks PKCS#11.
 *
 * libp11 0.4.12 for module loading, slot/token enumeration, login and
 * EVP_PKEY wrappers; raw PKCS#11 calls through the module's function list
 * where libp11 falls short (EC key generation, CKA_* queries, atomic
 * login-sign-logout for SIMs). See ../shared/docs/REFERENCE.md §5 for the
 * libp11/SoftHSM traps this module works around.
 *
 * Threading: a p11_module may be used from several threads; calls that
 * touch the same token serialise on that token. Every call may block (the
 * module does disk I/O and crypto): never call from an event-loop thread —
 * run them on a p11_pool, whose size bounds the concurrency (libp11 keeps
 * at most 16 sessions per slot and blocks beyond that).
 *
 * Errors: 0 (P11_OK) or a negative P11_ERR_* code; p11_strerror() names it. */
#ifndef P11_H
#define P11_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum {
  P11_OK = 0,
  P11_ERR_NOMEM = -1,
  P11_ERR_INVALID = -2,       /* bad argument (label too long, empty PIN) */
  P11_ERR_MODULE = -3,        /* module missing or failed to load/init */
  P11_ERR_NO_TOKEN = -4,      /* no token with that label */
  P11_ERR_NO_KEY = -5,        /* no key with that label on the token */
  P11_ERR_PIN_INCORRECT = -6, /* CKR_PIN_INCORRECT */
  P11_ERR_PIN_LOCKED = -7,    /* CKR_PIN_LOCKED (or the token says so) */
  P11_ERR_PIN_INVALID = -8,   /* CKR_PIN_INVALID / CKR_PIN_LEN_RANGE */
  P11_ERR_TOKEN_EXISTS = -9,  /* a token with that label exists already */
  P11_ERR_NO_FREE_SLOT = -10, /* no uninitialised slot left */
  P11_ERR_KEYGEN = -11,       /* key-pair generation failed */
  P11_ERR_SIGN = -12,         /* signing failed */
  P11_ERR_BUSY = -13,         /* pool queue full */
  P11_ERR_DEVICE = -14,       /* any other PKCS#11 failure (CKR_* logged) */
  P11_ERR_LAST_ = -15
};

const char *p11_strerror(int err);

typedef struct p11_module p11_module;
typedef struct p11_token p11_token; /* borrowed from the module */
typedef struct p11_key p11_key;     /* owned by the caller: p11_key_del */

typedef enum { P11_KEY_EC_P256 = 1, P11_KEY_RSA_2048 = 2 } p11_keytype;

typedef enum {
  P11_MECH_ECDSA = 1,           /* over a SHA-256 digest */
  P11_MECH_RSA_PKCS1_SHA256 = 2, /* PKCS#1 v1.5, DigestInfo added here */
  P11_MECH_RSA_PSS_SHA256 = 3    /* PSS, MGF1-SHA256, salt 32 */
} p11_mech;

/* Loads the PKCS#11 module at |path| (e.g. /usr/lib/softhsm/libsofthsm2.so)
 * and enumerates its slots once. SoftHSM reads SOFTHSM2_CONF from the
 * environment at this moment. */
int p11_module_new(p11_module **out, const char *path);
void p11_module_del(p11_module *m);

/* Re-enumerates slots (release + enumerate: PKCS11_update_slots crashes in
 * 0.4.12). Invalidates every p11_token and p11_key taken from |m|. */
int p11_module_refresh(p11_module *m);

/* Finds the token labelled |label|. Returns P11_OK or P11_ERR_NO_TOKEN. */
int p11_token_find(p11_module *m, const char *label, p11_token **out);

/* Initialises a free slot's token with |label| (<= 32 bytes, padded as
 * PKCS#11 requires), SO PIN |so_pin| and user PIN |pin|; refreshes the slot
 * list and stores the new token in |*out|. Returns P11_OK,
 * P11_ERR_TOKEN_EXISTS, P11_ERR_NO_FREE_SLOT, P11_ERR_PIN_INVALID, ... */
int p11_token_init(p11_module *m, const char *label, const char *so_pin,
                   const char *pin, p11_token **out);

/* Number of tokens and the label of token |i| (for listings). */
size_t p11_token_count(p11_module *m);
const char *p11_token_label(p11_token *t);

/* Checks |pin| against the token (C_Login + C_Logout on a session of its
 * own). Returns P11_OK, P11_ERR_PIN_INCORRECT, P11_ERR_PIN_LOCKED,
 * P11_ERR_PIN_INVALID. The PIN is never logged or kept. */
int p11_check_pin(p11_token *t, const char *pin);

/* Changes the user PIN (the SIM simulation's PUK path uses this with the SO
 * PIN: C_Login as SO, C_InitPIN). */
int p11_init_pin(p11_token *t, const char *so_pin, const char *new_pin);

/* Generates a key pair on the token (private key CKA_SENSITIVE, not
 * CKA_EXTRACTABLE, CKA_TOKEN, CKA_PRIVATE; EC via raw C_GenerateKeyPair with
 * CKA_EC_PARAMS of P-256), labelled |label| with CKA_ID |id|. Logs in with
 * |pin| for the duration. Returns P11_OK or P11_ERR_KEYGEN / PIN errors. */
int p11_keygen(p11_token *t, const char *pin, p11_keytype type,
               const char *label, const uint8_t *id, size_t idlen);

/* Finds the private key labelled |label|, logging in with |pin|. The key
 * stays usable until p11_key_del (its session stays logged in). */
int p11_key_find(p11_token *t, const char *pin, const char *label,
                 p11_key **out);
void p11_key_del(p11_key *k);

/* The key's type and its public key (caller frees the EVP_PKEY). */
p11_keytype p11_key_type(const p11_key *k);
int p11_key_public(p11_key *k, EVP_PKEY **out);

/* An EVP_PKEY whose private operations run on the token (libp11's
 * PKCS11_get_private_key), for X509_sign, X509_CRL_sign, OCSP_basic_sign
 * and CMS. Valid while |k| lives; the caller frees it. */
int p11_key_evp(p11_key *k, EVP_PKEY **out);

/* Signs the |dlen|-byte |digest| (SHA-256, 32 bytes) with |mech|. ECDSA
 * returns raw r||s (64 bytes) when |der| is 0, DER otherwise; RSA returns
 * the 256-byte signature. |*siglen| is the capacity in, the length out.
 * Returns P11_OK, P11_ERR_SIGN, P11_ERR_INVALID (mechanism does not fit the
 * key, buffer too small). */
int p11_sign(p11_key *k, p11_mech mech, const uint8_t *digest, size_t dlen,
             int der, uint8_t *sig, size_t *siglen);

/* Logs in with |pin|, signs, logs out, on one session of its own: what a
 * SIM does per request. Returns the PIN errors distinctly so that the SIM
 * simulation can keep its retry counter, or P11_ERR_NO_KEY / SIGN. */
int p11_sign_with_pin(p11_token *t, const char *pin, const char *label,
                      p11_mech mech, const uint8_t *digest, size_t dlen,
                      int der, uint8_t *sig, size_t *siglen);

/* A small fixed pool of threads that runs PKCS#11 jobs off the event-loop
 * threads. |queue_max| bounds waiting jobs. */
typedef struct p11_pool p11_pool;
int p11_pool_new(p11_pool **out, int nthreads, int queue_max);
/* Queues fn(arg) to run on a pool thread. Returns P11_OK or P11_ERR_BUSY. */
int p11_pool_submit(p11_pool *p, void (*fn)(void *arg), void *arg);
/* Runs queued jobs to completion, stops the threads, frees the pool. */
void p11_pool_del(p11_pool *p);

#endif
