/* gw_pki.h — the demo national PKI: a root CA and an issuing CA for mobile
 * PKI whose keys live in a PKCS#11 token, the certificates they issue, an
 * OpenSSL-format CA database (index.txt) that `openssl ocsp -index` serves,
 * CRLs, a delegated OCSP signer, and the gateway's token-signing keys.
 *
 * Two layers:
 * - certificate builders (gw_pki_make_*) that take any EVP_PKEY as the
 *   signer: a key on a token (p11_key_evp) in production, a software key in
 *   the unit tests. They touch no file and no token.
 * - the CA on disk and on its token (gw_pki_ca_*, gw_pki_index_*,
 *   gw_pki_gateway_keys_init), used by mpkictl.
 *
 * Files under pki.dir (docs/pki.md):
 *   root-ca.pem, issuing-ca.pem   the CA certificates
 *   ocsp.pem, ocsp.key            the delegated OCSP signer (key in a file,
 *                                 mode 0600, because `openssl ocsp -rkey`
 *                                 needs one)
 *   index.txt, index.txt.attr     the issuing CA's database, `openssl ca`
 *                                 format
 *   crlnumber                     the next CRL number (hex), as `openssl ca`
 *   certs/<SERIAL>.pem            every certificate issued
 *   .lock                         serialises writers (flock)
 *
 * Why EC P-256 for the CA keys: the SIM keys are P-256 already, so the whole
 * chain uses one algorithm (one code path in every verifier); a P-256
 * signature on the token costs about a tenth of an RSA-2048 one (REFERENCE
 * §6), which keeps bulk issuance and CRL signing cheap; certificates and
 * CRLs stay small. RSA is used for the gateway's RS256 key only, because
 * relying parties expect it.
 *
 * Errors: GW_OK or a negative GW_ERR_* code (gw_err.h); functions that take
 * |err| write a readable reason there (NUL-terminated, cut to |errlen|).
 * PINs are never logged or written to |err|; buffers that held them are
 * wiped with OPENSSL_cleanse. */
#ifndef GW_PKI_H
#define GW_PKI_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gw_config.h"
#include "p11.h"

/* Validity periods, in days. */
#define GW_PKI_ROOT_DAYS 7300    /* 20 years */
#define GW_PKI_ISSUING_DAYS 3650 /* 10 years */
#define GW_PKI_SIM_DAYS 730      /* 2 years, a SIM's certificate */
#define GW_PKI_OCSP_DAYS 365     /* the no-check OCSP signer: short-lived */

/* Key labels and CKA_IDs on the CA token. */
#define GW_PKI_ROOT_KEY_LABEL "root-ca"
#define GW_PKI_ISSUING_KEY_LABEL "issuing-ca"

/* Key labels on the gateway token (gateway_keys.token). */
#define GW_PKI_ES256_LABEL "es256"
#define GW_PKI_RS256_LABEL "rs256"

/* Subjects of the demo CA certificates (UTF-8: "—" is U+2014). */
#define GW_PKI_ROOT_CN "Oman National PKI Root \xe2\x80\x94 demo"
#define GW_PKI_ISSUING_CN "Oman Mobile PKI Issuing CA \xe2\x80\x94 demo"
#define GW_PKI_OCSP_CN "Oman Mobile PKI OCSP Responder \xe2\x80\x94 demo"
#define GW_PKI_ORG "Oman National PKI (demo)"

/* Prefix of the subject serialNumber: ETSI EN 319 412-1 semantics
 * identifier "PNO" (national personal number) + "OM". */
#define GW_PKI_CIVIL_PREFIX "PNOOM-"

/* A serial number as `openssl ca` writes it in index.txt: upper-case hex,
 * an even number of digits (BN_bn2hex). 20 bytes at most (RFC 5280). */
#define GW_PKI_SERIAL_HEX_MAX 40

/* A kid: base64url without padding of a SHA-256 digest. */
#define GW_PKI_KID_LEN 43

/* ---- revocation reasons ------------------------------------------------ */

/* The CRLReason codes (RFC 5280 §5.3.1) that `openssl ocsp -index` and
 * `openssl ca` understand in index.txt. certificateHold is left out: the
 * demo CA does not suspend certificates. */
typedef enum {
  GW_PKI_REASON_NONE = -1, /* no reasonCode extension (RFC 5280: prefer
                              this to "unspecified") */
  GW_PKI_REASON_UNSPECIFIED = 0,
  GW_PKI_REASON_KEY_COMPROMISE = 1,
  GW_PKI_REASON_CA_COMPROMISE = 2,
  GW_PKI_REASON_AFFILIATION_CHANGED = 3,
  GW_PKI_REASON_SUPERSEDED = 4,
  GW_PKI_REASON_CESSATION = 5 /* cessationOfOperation */
} gw_pki_reason;

/* Parses a reason name as RFC 5280 spells it ("keyCompromise", ...; case
 * does not matter). Returns GW_OK or GW_ERR_INVALID. */
int gw_pki_reason_parse(const char *name, gw_pki_reason *out);

/* The RFC 5280 name of |r| ("" for GW_PKI_REASON_NONE, "?" out of range). */
const char *gw_pki_reason_name(gw_pki_reason r);

/* The accepted names, "keyCompromise|superseded|...", for help texts. */
const char *gw_pki_reason_list(void);

/* ---- certificate builders ---------------------------------------------- */

/* Who a SIM certificate is for. All three are checked by the caller
 * (gw_subscriber.h); the builder refuses what X.509 cannot hold. */
typedef struct gw_pki_holder {
  const char *msisdn;   /* "+968XXXXXXXX": subjectAltName URI tel:... */
  const char *civil_id; /* digits: subject serialNumber PNOOM-<digits> */
  const char *name;     /* UTF-8, <= 64 characters: subject CN */
} gw_pki_holder;

/* A self-signed root: subject CN=GW_PKI_ROOT_CN, O=GW_PKI_ORG, C=OM;
 * basicConstraints critical CA:TRUE; keyUsage critical keyCertSign,
 * cRLSign; subject and authority key identifiers; |days| of validity from
 * now; a random 128-bit serial; signed with |key| (ECDSA/RSA with SHA-256).
 * Stores the new certificate in |*out|. Returns GW_OK, GW_ERR_INVALID (NULL
 * argument, days < 1), GW_ERR_TLS (OpenSSL or the token failed; the reason
 * is on the OpenSSL error queue) or GW_ERR_NOMEM. */
int gw_pki_make_root(EVP_PKEY *key, int days, X509 **out);

/* The issuing CA: subject CN=GW_PKI_ISSUING_CN; CA:TRUE, pathlen 0;
 * keyCertSign, cRLSign; for the public key |pub|; signed by |root| /
 * |root_key|. Errors as gw_pki_make_root. */
int gw_pki_make_issuing(X509 *root, EVP_PKEY *root_key, EVP_PKEY *pub, int days,
                        X509 **out);

/* The delegated OCSP signer of |issuer|: subject CN=GW_PKI_OCSP_CN;
 * CA:FALSE; keyUsage critical digitalSignature; extendedKeyUsage
 * OCSPSigning; id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1: clients do not
 * check its revocation, hence its short life). Errors as gw_pki_make_root. */
int gw_pki_make_ocsp_signer(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
                            int days, X509 **out);

/* A SIM's authentication certificate for |pub|: subject C=OM,
 * serialNumber=PNOOM-<civil id>, CN=<name> (printed CN=..., serialNumber=...,
 * C=OM by RFC 4514), subjectAltName URI:tel:<msisdn>, keyUsage critical
 * digitalSignature, basicConstraints CA:FALSE, key identifiers, and, when
 * |ocsp_url| is not NULL or "", authorityInfoAccess OCSP;URI:<ocsp_url>.
 * Returns GW_OK, GW_ERR_INVALID (missing field, a name X.509 cannot hold:
 * more than 64 characters or not UTF-8), GW_ERR_TLS or GW_ERR_NOMEM. */
int gw_pki_make_sim_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
                         const gw_pki_holder *holder, const char *ocsp_url,
                         int days, X509 **out);

/* One revoked certificate, for gw_pki_make_crl. */
typedef struct gw_pki_revoked {
  char serial[GW_PKI_SERIAL_HEX_MAX + 1]; /* upper-case hex */
  time_t when;
  gw_pki_reason reason;
} gw_pki_revoked;

/* A version 2 CRL of |issuer| listing |n| certificates, thisUpdate now,
 * nextUpdate now + |days|, with cRLNumber |number| and the authority key
 * identifier, signed with |issuer_key|. Errors as gw_pki_make_root
 * (GW_ERR_INVALID also for a malformed serial). */
int gw_pki_make_crl(X509 *issuer, EVP_PKEY *issuer_key,
                    const gw_pki_revoked *list, size_t n, long number, int days,
                    X509_CRL **out);

/* Writes the serial number of |x| as index.txt does (upper-case hex, even
 * length) into |buf| (at least GW_PKI_SERIAL_HEX_MAX + 1 bytes). Returns
 * GW_OK, GW_ERR_TOO_LARGE or GW_ERR_NOMEM. */
int gw_pki_serial_hex(const X509 *x, char *buf, size_t cap);

/* The kid of a public key: base64url (no padding) of the SHA-256 of its
 * SubjectPublicKeyInfo DER. |out| holds GW_PKI_KID_LEN + 1 bytes. Returns
 * GW_OK, GW_ERR_INVALID or GW_ERR_NOMEM. */
int gw_pki_kid(EVP_PKEY *pub, char *out, size_t cap);

/* ---- the CA database (index.txt) --------------------------------------- */

/* One line of index.txt. Strings point into the caller's line buffer. */
typedef struct gw_pki_index_row {
  char status;         /* 'V' valid, 'R' revoked, 'E' expired */
  const char *expires; /* notAfter as in the certificate (YYMMDDHHMMSSZ) */
  const char *revoked; /* "" or "YYMMDDHHMMSSZ[,reason]" */
  const char *serial;  /* upper-case hex */
  const char *file;    /* "unknown" (openssl ca's unused file name field) */
  const char *subject; /* "/C=OM/serialNumber=.../CN=..." */
} gw_pki_index_row;

/* Calls |cb| for every row of |dir|/index.txt in file order; |cb| returns
 * GW_OK to go on, anything else stops the walk with that value. Returns
 * GW_OK, GW_ERR_IO (no file), GW_ERR_INVALID (a malformed line: |err| names
 * FILE:LINE) or the callback's value. */
int gw_pki_index_walk(const char *dir,
                      int (*cb)(const gw_pki_index_row *row, void *arg),
                      void *arg, char *err, size_t errlen);

/* Parses the revocation field of a row into a time and a reason. Returns
 * GW_OK or GW_ERR_INVALID. */
int gw_pki_index_parse_revoked(const char *field, time_t *when,
                               gw_pki_reason *reason);

/* ---- PIN file ---------------------------------------------------------- */

#define GW_PKI_PIN_MAX 64

/* The PINs of the demo's CA and gateway tokens (pki.pin_file). */
typedef struct gw_pki_pins {
  char ca_pin[GW_PKI_PIN_MAX + 1];
  char ca_so_pin[GW_PKI_PIN_MAX + 1];
  char gw_pin[GW_PKI_PIN_MAX + 1];
  char gw_so_pin[GW_PKI_PIN_MAX + 1];
} gw_pki_pins;

/* Reads |path|: "name = value" lines (ca.pin, ca.so_pin, gateway.pin,
 * gateway.so_pin; 4..64 printable characters each), '#' comments. Refuses a
 * file that group or others may access. Returns GW_OK, GW_ERR_IO (missing,
 * unreadable), GW_ERR_INVALID (mode, syntax, a missing name: FILE:LINE in
 * |err|). |pins| is wiped on failure. */
int gw_pki_pins_load(const char *path, gw_pki_pins *pins, char *err,
                     size_t errlen);

/* Creates |path| (mode 0600, never over an existing file) with random PINs
 * (16 hex digits) and stores them in |pins|. Returns GW_OK, GW_ERR_IO (it
 * exists, or cannot be written) or GW_ERR_TLS (no randomness). */
int gw_pki_pins_create(const char *path, gw_pki_pins *pins, char *err,
                       size_t errlen);

/* Wipes |pins| (OPENSSL_cleanse). */
void gw_pki_pins_wipe(gw_pki_pins *pins);

/* ---- the PKCS#11 module ------------------------------------------------- */

/* Sets SOFTHSM2_CONF from |cfg| (pkcs11.softhsm_conf, when not "": the file
 * must exist) and loads pkcs11.module (p11_module_new). Returns GW_OK,
 * GW_ERR_IO (a file is missing, the module does not load) or another code
 * mapped by gw_pki_p11_err. */
int gw_pki_module_open(const gw_config *cfg, p11_module **out, char *err,
                       size_t errlen);

/* Maps a P11_ERR_* code to a GW_ERR_* code (PIN errors → GW_ERR_INVALID,
 * no token/key → GW_ERR_NOT_FOUND, busy → GW_ERR_BUSY, others → GW_ERR_IO). */
int gw_pki_p11_err(int p11_rv);

/* ---- the CA ------------------------------------------------------------ */

typedef struct gw_pki_ca gw_pki_ca;

/* Creates the CA under cfg->pki_dir (created 0755 if missing; it must not
 * hold a CA yet): initialises the token cfg->pki_ca_token with the PINs of
 * |pins|, generates the root and issuing keys on it (EC P-256, never
 * extractable), writes root-ca.pem, issuing-ca.pem, the OCSP signer
 * (ocsp.pem, ocsp.key 0600), an empty index.txt, index.txt.attr, crlnumber,
 * and publishes a first, empty CRL to cfg->pki_crl. Returns GW_OK,
 * GW_ERR_INVALID (a CA exists already, in the directory or as a token; a
 * PIN the token refuses), GW_ERR_IO, GW_ERR_TLS, GW_ERR_NOMEM. */
int gw_pki_ca_init(const gw_config *cfg, p11_module *m, const gw_pki_pins *pins,
                   char *err, size_t errlen);

/* Opens the CA of cfg->pki_dir for issuing and revoking: takes the
 * directory's write lock (waiting up to 10 s for another mpkictl), reads
 * the CA certificates, keeps a copy of |pin| (the CA token's user PIN,
 * wiped in gw_pki_ca_del). The token is not touched until a signature is
 * needed; |m| and |pin| may be NULL for a handle that only revokes (the
 * signing calls then fail with GW_ERR_INVALID). Returns GW_OK, GW_ERR_NOT_FOUND
 * (no CA: run `ca init`), GW_ERR_BUSY (locked), GW_ERR_IO, GW_ERR_TLS,
 * GW_ERR_NOMEM. */
int gw_pki_ca_open(gw_pki_ca **out, const gw_config *cfg, p11_module *m,
                   const char *pin, char *err, size_t errlen);

/* Releases the lock, wipes the PIN and frees |ca|; NULL is a no-op. */
void gw_pki_ca_del(gw_pki_ca *ca);

/* The issuing CA certificate (borrowed, valid while |ca| lives). */
X509 *gw_pki_ca_issuer(gw_pki_ca *ca);

/* Logs in to the CA token and finds the issuing key, then lets go: a cheap
 * check that signing will work, made before a bulk run. Returns GW_OK,
 * GW_ERR_NOT_FOUND (no token / key), GW_ERR_INVALID (wrong PIN: |err| says
 * so), GW_ERR_IO. */
int gw_pki_ca_check_key(gw_pki_ca *ca, char *err, size_t errlen);

/* Issues a SIM certificate for |pub| and |holder| (gw_pki_make_sim_cert,
 * GW_PKI_SIM_DAYS, pki.ocsp_url), signed on the token; records it in
 * index.txt and writes certs/<SERIAL>.pem. Stores the certificate in
 * |*out|. The CA key is found and released within the call, so that the
 * caller may initialise other tokens between calls (which invalidates
 * every key taken from the module). Returns GW_OK or the errors of
 * gw_pki_make_sim_cert and gw_pki_ca_check_key, GW_ERR_IO. */
int gw_pki_ca_issue_sim(gw_pki_ca *ca, EVP_PKEY *pub,
                        const gw_pki_holder *holder, X509 **out, char *err,
                        size_t errlen);

/* Marks the certificate with serial |serial| (hex, any case) revoked in
 * index.txt at |when| for |reason| (the file is rewritten through a
 * temporary file and a rename). A certificate revoked already keeps its
 * first time and reason, and |*already| (may be NULL) is set to 1. Returns
 * GW_OK, GW_ERR_NOT_FOUND (not in the index), GW_ERR_INVALID (a malformed
 * line: |err| names FILE:LINE), GW_ERR_IO, GW_ERR_NOMEM. */
int gw_pki_ca_revoke(gw_pki_ca *ca, const char *serial, gw_pki_reason reason,
                     time_t when, int *already, char *err, size_t errlen);

/* Publishes a CRL of every revoked certificate in index.txt to cfg->pki_crl
 * (PEM, replaced atomically), nextUpdate cfg->pki_crl_days ahead, signed
 * on the token, with the next CRL number (crlnumber is advanced). Stores
 * the number used and the count of entries in |*number| and |*entries|
 * (either may be NULL). Returns GW_OK or the errors above. */
int gw_pki_ca_publish_crl(gw_pki_ca *ca, long *number, size_t *entries,
                          char *err, size_t errlen);

/* ---- the gateway's token-signing keys ---------------------------------- */

typedef struct gw_pki_gateway_kids {
  char es256[GW_PKI_KID_LEN + 1];
  char rs256[GW_PKI_KID_LEN + 1];
} gw_pki_gateway_kids;

/* Initialises the token cfg->gwkeys_token with the gateway PINs of |pins|,
 * generates on it an EC P-256 key (label GW_PKI_ES256_LABEL, for ES256) and
 * an RSA-2048 key (GW_PKI_RS256_LABEL, for RS256), and writes their public
 * keys to cfg->gwkeys_dir (created if missing) as es256.pem and rs256.pem,
 * with a file "kids" of lines "ES256 <kid>" and "RS256 <kid>". Stores the
 * kids in |kids|. Returns GW_OK, GW_ERR_INVALID (the token exists already),
 * GW_ERR_IO, GW_ERR_TLS, GW_ERR_NOMEM. */
int gw_pki_gateway_keys_init(const gw_config *cfg, p11_module *m,
                             const gw_pki_pins *pins, gw_pki_gateway_kids *kids,
                             char *err, size_t errlen);

/* ---- the key list (gateway_keys.dir/kids) and rotation ----------------- */

/* gateway_keys.dir/kids lists every key the gateway publishes, one line
 * each (docs/tokens.md, "Rotation"):
 *
 *   ALG KID [LABEL PEMFILE [PUBLISH_AT SIGN_FROM RETIRE_AT]]
 *
 * ALG is ES256 or RS256; LABEL the private key's label on
 * gateway_keys.token; PEMFILE its public key in gateway_keys.dir; the
 * times are Unix seconds, RETIRE_AT "-" when not set. Missing columns mean
 * label "es256"/"rs256", file "es256.pem"/"rs256.pem", times 0 and no
 * retirement: the two-line file of `gateway-key init` describes two
 * current keys. A key is in the JWKS (and verifies tokens) from PUBLISH_AT
 * until RETIRE_AT; per algorithm, the last key of the file whose SIGN_FROM
 * has come and that is not retired signs. */
#define GW_PKI_GWKEYS_MAX 32     /* keys in the list */
#define GW_PKI_GWKEY_NAME_MAX 63 /* a label or file name */

typedef struct gw_pki_gwkey {
  char alg[6]; /* "ES256" | "RS256" */
  char kid[GW_PKI_KID_LEN + 1];
  char label[GW_PKI_GWKEY_NAME_MAX + 1];
  char file[GW_PKI_GWKEY_NAME_MAX + 1];
  long long publish_at, sign_from;
  long long retire_at; /* 0: not set */
} gw_pki_gwkey;

typedef struct gw_pki_gwkeys {
  size_t n;
  gw_pki_gwkey k[GW_PKI_GWKEYS_MAX];
} gw_pki_gwkeys;

typedef enum gw_pki_gwkey_state {
  GW_PKI_GWKEY_PENDING,   /* PUBLISH_AT not reached: not in the JWKS */
  GW_PKI_GWKEY_PUBLISHED, /* in the JWKS, not signing (yet) */
  GW_PKI_GWKEY_SIGNING,   /* the key that signs for its algorithm */
  GW_PKI_GWKEY_RETIRING,  /* superseded, in the JWKS until RETIRE_AT */
  GW_PKI_GWKEY_RETIRED    /* RETIRE_AT passed: gone from the JWKS */
} gw_pki_gwkey_state;

/* Parses the text of a kids file (|path| names it in messages). Refuses
 * malformed lines, unknown algorithms, a kid listed twice, names with
 * characters outside A-Z a-z 0-9 . _ -, SIGN_FROM before PUBLISH_AT, more
 * than GW_PKI_GWKEYS_MAX keys, and a list without an ES256 or an RS256
 * key. Returns GW_OK or GW_ERR_CONFIG (FILE:LINE and the reason in |err|). */
int gw_pki_gwkeys_parse(const char *text, const char *path, gw_pki_gwkeys *out,
                        char *err, size_t errlen);

/* Reads and parses |dir|/kids. Returns GW_OK, GW_ERR_IO (missing or
 * unreadable: |err| says to run `mpkictl gateway-key init`), GW_ERR_CONFIG,
 * GW_ERR_NOMEM. */
int gw_pki_gwkeys_read(const char *dir, gw_pki_gwkeys *out, char *err,
                       size_t errlen);

/* The index of the key that signs for |alg| ("ES256", "RS256") at |now|:
 * the last of the list whose PUBLISH_AT and SIGN_FROM have come and whose
 * RETIRE_AT has not; -1 when there is none. */
long gw_pki_gwkey_current(const gw_pki_gwkeys *ks, const char *alg,
                          long long now);

/* The state of key |i| at |now|. */
gw_pki_gwkey_state gw_pki_gwkey_state_at(const gw_pki_gwkeys *ks, size_t i,
                                         long long now);
/* "pending", "published", "signing", "retiring", "retired". */
const char *gw_pki_gwkey_state_name(gw_pki_gwkey_state st);

typedef struct gw_pki_rotate_opts {
  int es256, rs256; /* which algorithms get a new key */
  long long lead_s; /* publish this long before signing (600 and more) */
  long long keep_s; /* keep the old key this long after the new one signs:
                       the longest token lifetime plus a margin */
  long long now;    /* 0: time(NULL) */
} gw_pki_rotate_opts;

/* Rotates the gateway's keys: under gateway_keys.dir's lock, reads the
 * list, drops the keys retired already (and deletes their PEM files; the
 * keys stay on the token), generates for each chosen algorithm a new key
 * on cfg->gwkeys_token labelled "es256-N" / "rs256-N" (N the first number
 * free in the list and on the token), writes its public key as LABEL.pem
 * and appends it with PUBLISH_AT = now, SIGN_FROM = now + lead_s; every
 * older key of that algorithm not retiring yet gets RETIRE_AT = SIGN_FROM +
 * keep_s. The list is replaced atomically (temporary file and rename), and
 * the new one stored in |after| (may be NULL). Returns GW_OK,
 * GW_ERR_INVALID (bad options, a PIN the token refuses), GW_ERR_NOT_FOUND
 * (no token, no list: run `gateway-key init`), GW_ERR_BUSY (locked),
 * GW_ERR_CONFIG (a malformed list), GW_ERR_IO, GW_ERR_TLS, GW_ERR_NOMEM. */
int gw_pki_gateway_keys_rotate(const gw_config *cfg, p11_module *m,
                               const gw_pki_pins *pins,
                               const gw_pki_rotate_opts *o,
                               gw_pki_gwkeys *after, char *err, size_t errlen);

#endif
