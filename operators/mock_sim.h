/* mock_sim.h — the simulated SIMs of the mock MSSPs.
 *
 * A SIM is the PKCS#11 token that `mpkictl sim provision` made for it (token
 * label = MSISDN, key label "mpki-auth", user PIN = SIM PIN, SO PIN = PUK).
 * The token checks the PIN value; SoftHSM never locks a PIN, so this module
 * keeps what a real SIM keeps: the PIN retry counter (3 wrong PINs in a row
 * block the PIN: 402 PIN_NR_BLOCKED) and the PUK retry counter (10 wrong
 * PUKs block the card: 403 CARD_BLOCKED). A correct PIN resets the PIN
 * counter; the PUK (p11_init_pin with SO PIN = PUK) sets a new PIN and
 * unblocks it. The counters are persisted per SIM, one small file per SIM
 * under a state directory, written atomically (temporary file + fsync +
 * rename), so that they survive a restart of the mock.
 *
 * What a SIM signs (REFERENCE §1c):
 *   MOCK_SIM_DATA_TEXT    text/plain: SHA-256 of the UTF-8 bytes as received
 *   MOCK_SIM_DATA_BYTES   application/octet-stream: SHA-256 of the bytes
 *   MOCK_SIM_DATA_DIGEST  application/x-sha256: the 32-byte digest as is
 * always with ECDSA P-256 on the token. The result is either
 *   MOCK_SIM_FORMAT_PKCS1 the bare signature, raw r||s (64 bytes); the
 *                         caller sends the certificate beside it; or
 *   MOCK_SIM_FORMAT_PKCS7 a CMS SignedData (DER) without signed attributes,
 *                         so that its signature value is that very ECDSA
 *                         signature over the digest above (id-data; SHA-256;
 *                         ecdsa-with-SHA256; the signer certificate inside,
 *                         and the issuing CA's when given);
 *                         content attached for TEXT and BYTES, detached for
 *                         DIGEST (what the gateway's verifier accepts,
 *                         docs/verification.md; `openssl cms -verify`
 *                         checks the attached forms as they are).
 * The CMS is assembled here around the token's signature: the private key
 * never leaves the token and is never wrapped in an EVP_PKEY (which would
 * keep libp11 sessions open and stop the PUK's SO login, p11.h).
 *
 * Threading: every function may block (PKCS#11, file I/O): call them from a
 * p11_pool thread, never from an event loop. They may run concurrently; the
 * calls for one SIM are serialised by a lock of that SIM, so that a counter
 * is read, checked and updated as one step.
 *
 * Errors: GW_OK or a negative GW_ERR_* (gw_err.h). What the SIM did —
 * signed, wrong PIN, blocked — is an outcome, not an error. PINs and PUKs
 * are never logged or kept. */
#ifndef MOCK_SIM_H
#define MOCK_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "p11.h"

#define MOCK_SIM_PIN_TRIES 3  /* wrong PINs before the PIN is blocked */
#define MOCK_SIM_PUK_TRIES 10 /* wrong PUKs before the card is blocked */
#define MOCK_SIM_KEY_LABEL "mpki-auth"
#define MOCK_SIM_MSISDN_MAX 16 /* "+" and up to 15 digits */
/* Capacity a caller gives mock_sim_sign for any result: a CMS with one
 * certificate of at most MOCK_SIM_CERT_MAX bytes. */
#define MOCK_SIM_CERT_MAX 8192
#define MOCK_SIM_CHAIN_MAX 16384 /* further certificates in a CMS */
#define MOCK_SIM_SIG_MAX (MOCK_SIM_CERT_MAX + MOCK_SIM_CHAIN_MAX + 4096)

typedef struct mock_sims mock_sims;

typedef enum mock_sim_data_kind {
  MOCK_SIM_DATA_TEXT = 0,  /* text/plain: hashed with SHA-256 */
  MOCK_SIM_DATA_BYTES = 1, /* application/octet-stream: hashed */
  MOCK_SIM_DATA_DIGEST = 2 /* application/x-sha256: 32 bytes signed as is */
} mock_sim_data_kind;

typedef enum mock_sim_format {
  MOCK_SIM_FORMAT_PKCS7 = 0, /* CMS SignedData, DER */
  MOCK_SIM_FORMAT_PKCS1 = 1  /* raw r||s */
} mock_sim_format;

/* What a SIM did. */
typedef enum mock_sim_outcome {
  MOCK_SIM_OK = 0,       /* signed / PIN set */
  MOCK_SIM_WRONG_PIN,    /* the token refused the PIN; tries are left */
  MOCK_SIM_PIN_BLOCKED,  /* no PIN tries left (now or before): ETSI 402 */
  MOCK_SIM_WRONG_PUK,    /* the token refused the PUK; tries are left */
  MOCK_SIM_CARD_BLOCKED, /* no PUK tries left: ETSI 403 */
  MOCK_SIM_NO_TOKEN,     /* no token labelled with the MSISDN: ETSI 404 */
  MOCK_SIM_NO_KEY,       /* no key "mpki-auth" on it: ETSI 404 */
  MOCK_SIM_BAD_NEW_PIN,  /* mock_sim_unblock: the new PIN is refused */
  MOCK_SIM_FAILED        /* the token failed otherwise: ETSI 900 */
} mock_sim_outcome;

/* A static lower-case name ("ok", "wrong_pin", ...); never NULL. */
const char *mock_sim_outcome_str(mock_sim_outcome o);

/* Creates the SIM bank on |m| (borrowed; must outlive the bank), keeping
 * state files in |state_dir| (created with mode 0700 when missing; its
 * parent must exist). Returns GW_OK, GW_ERR_INVALID (NULL argument, empty
 * path), GW_ERR_IO (the directory cannot be made or is not writable; the
 * reason in |err|), GW_ERR_NOMEM. |*out| is untouched on failure. */
int mock_sims_new(mock_sims **out, p11_module *m, const char *state_dir,
                  char *err, size_t errlen);

/* Frees the bank; NULL is a no-op. No call may be running. */
void mock_sims_del(mock_sims *s);

/* The 32 bytes a SIM signs for |data| of |kind| (REFERENCE §1c): SHA-256
 * of the bytes, or for DIGEST the 32 bytes themselves. Pure; any thread.
 * Returns GW_OK or GW_ERR_INVALID (DIGEST not 32 bytes, NULL data with
 * n > 0). */
int mock_sim_digest(mock_sim_data_kind kind, const uint8_t *data, size_t n,
                    uint8_t out[32]);

/* The user types |pin| and the SIM signs |data| (|n| bytes of |kind|) in
 * |format|. |cert_der| (|cert_len| bytes) is the SIM's certificate, put
 * into a PKCS7 result (unused for PKCS1); |chain_der| (|chain_len| bytes,
 * may be NULL/0) holds further certificates for the CMS, DER one after the
 * other (the issuing CA, so that a verifier with only the root finds the
 * chain). |sig| receives the result (|*sig_len| is its capacity in, the
 * length out; MOCK_SIM_SIG_MAX always suffices).
 *
 * Returns GW_OK when the SIM ran, with |*outcome|:
 *   OK           signed; a PIN counter below the maximum is reset;
 *   WRONG_PIN    the token refused |pin|: one try fewer, some left;
 *   PIN_BLOCKED  the last try went now, or none were left (the token is
 *                not asked then);
 *   CARD_BLOCKED the PUK tries are used up (the token is not asked);
 *   NO_TOKEN, NO_KEY, FAILED.
 * |*tries_left| (may be NULL) gets the PIN tries left afterwards.
 * Returns GW_ERR_INVALID (bad MSISDN, NULL or empty PIN, bad data or a
 * certificate that does not parse for PKCS7), GW_ERR_TOO_LARGE (|sig| too
 * small), GW_ERR_IO (the state file cannot be written: the counter is not
 * changed then, and nothing is signed), GW_ERR_TLS (the CMS could not be
 * built), GW_ERR_NOMEM. */
int mock_sim_sign(mock_sims *s, const char *msisdn, const char *pin,
                  mock_sim_data_kind kind, const uint8_t *data, size_t n,
                  mock_sim_format format, const uint8_t *cert_der,
                  size_t cert_len, const uint8_t *chain_der, size_t chain_len,
                  uint8_t *sig, size_t *sig_len, mock_sim_outcome *outcome,
                  int *tries_left);

/* The PUK path: checks |puk| on the token (its SO PIN) and sets |new_pin|
 * as the PIN (p11_init_pin); the PIN counter goes back to the maximum.
 * Outcomes: OK, WRONG_PUK (one PUK try fewer), CARD_BLOCKED (none left, or
 * the last went now), BAD_NEW_PIN (4..255 bytes needed: nothing changes),
 * NO_TOKEN, FAILED. |*puk_tries_left| may be NULL. Returns GW_OK or
 * GW_ERR_INVALID, GW_ERR_IO, GW_ERR_NOMEM as mock_sim_sign. */
int mock_sim_unblock(mock_sims *s, const char *msisdn, const char *puk,
                     const char *new_pin, mock_sim_outcome *outcome,
                     int *puk_tries_left);

/* Reads the counters of |msisdn| (a SIM never seen has full counters).
 * Returns GW_OK, GW_ERR_INVALID (bad MSISDN), GW_ERR_IO (state file
 * unreadable or malformed), GW_ERR_NOMEM. Either pointer may be NULL. */
int mock_sim_state(mock_sims *s, const char *msisdn, int *pin_tries_left,
                   int *puk_tries_left);

/* Sets the counters of |msisdn| (tests and the control endpoint):
 * |pin_tries_left| 0..MOCK_SIM_PIN_TRIES (0 = PIN blocked),
 * |puk_tries_left| 0..MOCK_SIM_PUK_TRIES, or -1 to keep a counter.
 * Persisted before it returns. Returns GW_OK, GW_ERR_INVALID, GW_ERR_IO,
 * GW_ERR_NOMEM. */
int mock_sim_set_state(mock_sims *s, const char *msisdn, int pin_tries_left,
                       int puk_tries_left);

#endif
