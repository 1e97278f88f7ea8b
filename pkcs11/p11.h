/* p11.h — the one module that talks PKCS#11.
 *
 * libp11 0.4.12 for module loading and the EVP_PKEY wrappers (OpenSSL signs
 * certificates, CRLs, OCSP answers and CMS through it); raw PKCS#11 calls
 * through the module's function list for everything libp11 0.4.12 gets
 * wrong or cannot do: slot scans after a token is initialised, logins, EC
 * key generation, CKA_* queries, login-sign-logout for SIMs. See
 * ../shared/docs/REFERENCE.md §5 and docs/pkcs11.md for the traps this
 * module works around.
 *
 * Lifetimes: a p11_token is owned by its module and stays valid until
 * p11_module_del (refreshing or initialising tokens never invalidates one).
 * A p11_key is owned by the caller and must be freed (p11_key_del) before
 * its module; an EVP_PKEY from p11_key_evp must be freed before its key.
 *
 * Logins: PKCS#11 keeps one login state per token for the whole process,
 * shared by every session. While a p11_key lives its token stays logged in;
 * every call that takes a PIN still checks that PIN (against the token when
 * nothing holds a login, else against a keyed hash of the PIN that opened
 * the held login), so a wrong PIN never succeeds because the token happens
 * to be logged in already.
 *
 * Threading: a p11_module may be used from several threads. The slot list
 * is protected by a mutex per module; calls that take a PIN or change login
 * state serialise on their token; p11_sign on keys runs in parallel (each
 * concurrent call gets a session of its own). Every call may block (the
 * module does disk I/O and crypto): never call from an event-loop thread —
 * run them on a p11_pool, whose size bounds the concurrency (libp11 keeps at
 * most 16 sessions per slot for p11_key_evp keys and blocks beyond that).
 * One p11_module per module path per process (PKCS#11 has one instance per
 * process); not fork-safe: load the module after forking.
 *
 * Errors: 0 (P11_OK) or a negative P11_ERR_* code; p11_strerror() names it.
 * Unexpected CKR_* codes are logged (gw_log) with the call and the token
 * label; PINs are never logged or kept. */
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

/* A static text for |err|; never NULL. */
const char *p11_strerror(int err);

/* Non-zero when |err| leaves the process unable to continue (NOMEM). */
int p11_err_is_fatal(int err);

typedef struct p11_module p11_module;
typedef struct p11_token p11_token; /* borrowed from the module */
typedef struct p11_key p11_key;     /* owned by the caller: p11_key_del */

typedef enum { P11_KEY_EC_P256 = 1, P11_KEY_RSA_2048 = 2 } p11_keytype;

typedef enum {
  P11_MECH_ECDSA = 1,            /* over a SHA-256 digest */
  P11_MECH_RSA_PKCS1_SHA256 = 2, /* PKCS#1 v1.5, DigestInfo added here */
  P11_MECH_RSA_PSS_SHA256 = 3    /* PSS, MGF1-SHA256, salt 32 */
} p11_mech;

/* Loads the PKCS#11 module at |path| (e.g. /usr/lib/softhsm/libsofthsm2.so)
 * and enumerates its slots once. SoftHSM reads SOFTHSM2_CONF from the
 * environment at this moment. Returns P11_OK, P11_ERR_MODULE (no file at
 * |path|, not a PKCS#11 module, C_Initialize failed, or this path is loaded
 * already by another live p11_module), P11_ERR_NOMEM, P11_ERR_INVALID. */
int p11_module_new(p11_module **out, const char *path);
/* Frees the module (C_Finalize). Every p11_key (and EVP_PKEY from
 * p11_key_evp) must be freed first. NULL is a no-op. */
void p11_module_del(p11_module *m);

/* Re-scans the slot list (raw C_GetSlotList/C_GetTokenInfo; never
 * PKCS11_update_slots, which crashes in 0.4.12, nor libp11's release +
 * enumerate, which closes every session of the slots and so logs out every
 * live p11_key). p11_token and p11_key pointers stay valid. Note: SoftHSM
 * sees tokens created by another process only after the module is loaded
 * again (p11_module_del + p11_module_new). Returns P11_OK or
 * P11_ERR_DEVICE/NOMEM. */
int p11_module_refresh(p11_module *m);

/* Finds the token labelled |label|. Returns P11_OK or P11_ERR_NO_TOKEN. */
int p11_token_find(p11_module *m, const char *label, p11_token **out);

/* Initialises a free slot's token with |label| (1..32 bytes, no trailing
 * blank; padded with blanks as PKCS#11 requires), SO PIN |so_pin| and user
 * PIN |pin| (4..255 bytes each); re-scans the slot list (SoftHSM then offers
 * a new free slot) and stores the new token in |*out|. Other tokens and keys
 * stay valid. Returns P11_OK, P11_ERR_TOKEN_EXISTS, P11_ERR_NO_FREE_SLOT,
 * P11_ERR_PIN_INVALID, P11_ERR_INVALID, P11_ERR_DEVICE, P11_ERR_NOMEM. */
int p11_token_init(p11_module *m, const char *label, const char *so_pin,
                   const char *pin, p11_token **out);

/* Number of initialised tokens, the token at index |i| (0 <= i < count, in
 * slot-scan order, new tokens last; NULL beyond) and a token's label (valid
 * until p11_module_del), for listings. */
size_t p11_token_count(p11_module *m);
p11_token *p11_token_at(p11_module *m, size_t i);
const char *p11_token_label(p11_token *t);

/* Checks |pin| against the token (C_Login + C_Logout on a session of its
 * own; while a p11_key of the token holds the login, against the held
 * login's PIN). Returns P11_OK, P11_ERR_PIN_INCORRECT, P11_ERR_PIN_LOCKED,
 * P11_ERR_PIN_INVALID, P11_ERR_INVALID (NULL or empty PIN). The PIN is never
 * logged or kept. */
int p11_check_pin(p11_token *t, const char *pin);

/* Sets a new user PIN (the SIM simulation's PUK path uses this with the SO
 * PIN: C_Login as SO, C_InitPIN). Returns P11_OK, P11_ERR_PIN_INCORRECT
 * (wrong SO PIN), P11_ERR_PIN_INVALID (new PIN not 4..255 bytes), or
 * P11_ERR_DEVICE: PKCS#11 refuses an SO login while a p11_key of the token
 * is alive, or after p11_key_evp was used on it in this process (libp11
 * keeps read-only sessions open). */
int p11_init_pin(p11_token *t, const char *so_pin, const char *new_pin);

/* Generates a key pair on the token (private key CKA_SENSITIVE, not
 * CKA_EXTRACTABLE, CKA_TOKEN, CKA_PRIVATE, CKA_SIGN; public key CKA_VERIFY;
 * both labelled |label| (1..128 bytes) with CKA_ID |id| (1..64 bytes); EC
 * via raw C_GenerateKeyPair with CKA_EC_PARAMS of P-256, RSA-2048 with
 * e = 65537). Logs in with |pin| for the duration. Returns P11_OK,
 * P11_ERR_KEYGEN (also when a private key with |label| exists), PIN errors,
 * P11_ERR_INVALID. */
int p11_keygen(p11_token *t, const char *pin, p11_keytype type,
               const char *label, const uint8_t *id, size_t idlen);

/* Finds the private key labelled |label|, logging in with |pin|. The key
 * stays usable until p11_key_del (the token stays logged in while any of
 * its keys lives). Returns P11_OK, P11_ERR_NO_KEY, PIN errors,
 * P11_ERR_DEVICE, P11_ERR_NOMEM. */
int p11_key_find(p11_token *t, const char *pin, const char *label,
                 p11_key **out);
/* Closes the key's sessions; the last key of a token logs it out. NULL is a
 * no-op. */
void p11_key_del(p11_key *k);

/* The key's type and its public key (caller frees the EVP_PKEY; an
 * ordinary OpenSSL key, usable after p11_key_del). */
p11_keytype p11_key_type(const p11_key *k);
int p11_key_public(p11_key *k, EVP_PKEY **out);

/* An EVP_PKEY whose private operations run on the token (libp11's
 * PKCS11_get_private_key), for X509_sign, X509_CRL_sign, OCSP_basic_sign
 * and CMS. Valid while |k| lives; the caller frees it. Returns P11_OK,
 * P11_ERR_NO_KEY, P11_ERR_DEVICE, P11_ERR_NOMEM. */
int p11_key_evp(p11_key *k, EVP_PKEY **out);

/* Signs the |dlen|-byte |digest| (SHA-256, 32 bytes) with |mech|. ECDSA
 * returns raw r||s (64 bytes) when |der| is 0, DER otherwise (at most 72
 * bytes); RSA returns the 256-byte signature. |*siglen| is the capacity in,
 * the length out. Returns P11_OK, P11_ERR_SIGN, P11_ERR_INVALID (mechanism
 * does not fit the key, digest not 32 bytes, buffer too small). */
int p11_sign(p11_key *k, p11_mech mech, const uint8_t *digest, size_t dlen,
             int der, uint8_t *sig, size_t *siglen);

/* Logs in with |pin|, signs, logs out, on one session of its own: what a
 * SIM does per request. Returns the PIN errors distinctly so that the SIM
 * simulation can keep its retry counter, or P11_ERR_NO_KEY / SIGN /
 * INVALID. The PIN is checked even while a p11_key holds the token's login
 * (see Logins above); the held login is left in place. */
int p11_sign_with_pin(p11_token *t, const char *pin, const char *label,
                      p11_mech mech, const uint8_t *digest, size_t dlen,
                      int der, uint8_t *sig, size_t *siglen);

/* A small fixed pool of threads that runs PKCS#11 jobs off the event-loop
 * threads. |nthreads| is 1..64, |queue_max| (1..1,000,000) bounds jobs
 * waiting for a thread. Returns P11_OK, P11_ERR_INVALID, P11_ERR_NOMEM. */
typedef struct p11_pool p11_pool;
int p11_pool_new(p11_pool **out, int nthreads, int queue_max);
/* Queues fn(arg) to run on a pool thread; jobs may run in any order and
 * concurrently. Returns P11_OK, P11_ERR_BUSY (|queue_max| jobs waiting) or
 * P11_ERR_INVALID (NULL pool or fn, or the pool is being freed). */
int p11_pool_submit(p11_pool *p, void (*fn)(void *arg), void *arg);
/* Runs queued jobs to completion, stops the threads, frees the pool. Must
 * not be called from a job. NULL is a no-op. */
void p11_pool_del(p11_pool *p);

#endif
