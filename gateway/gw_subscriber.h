/* gw_subscriber.h — SIM subscribers: the rules their data must follow, the
 * bulk CSV format, provisioning (a PKCS#11 token per SIM, a key generated
 * on it, a certificate from the issuing CA, a row in the registry) and
 * revocation. The registry itself is in the store (gw_store_sub_*). See
 * docs/mpkictl.md.
 *
 * Errors: GW_OK or a negative GW_ERR_* code; |why| / |err| receive a
 * reason that names the field or the token. PINs and PUKs never appear in
 * a reason and are wiped (OPENSSL_cleanse) from every buffer that held
 * them. */
#ifndef GW_SUBSCRIBER_H
#define GW_SUBSCRIBER_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "gw_pki.h"
#include "gw_store.h"
#include "p11.h"

/* The label of a SIM's key on its token (the token's label is the MSISDN);
 * the SIM simulation signs with it (p11_sign_with_pin). */
#define GW_SUB_KEY_LABEL "mpki-auth"

/* The demo's SIM PIN and PUK (the PUK is the token's SO PIN), used when
 * none is given. */
#define GW_SUB_DEMO_PIN "1234"
#define GW_SUB_DEMO_PUK "12345678"

#define GW_SUB_NAME_CHARS 64 /* X.520 ub-common-name, in characters */
#define GW_SUB_PIN_MAX 8
#define GW_SUB_PUK_LEN 8

/* Each check returns GW_OK or GW_ERR_INVALID with a reason in |why| (|n|
 * bytes) that quotes the value (never for PINs). */

/* "+968" followed by 8 digits (E.164, Oman). */
int gw_sub_check_msisdn(const char *s, char *why, size_t n);
/* 1..16 digits. */
int gw_sub_check_civil_id(const char *s, char *why, size_t n);
/* UTF-8, 1..64 characters, no control characters, no leading or trailing
 * space. */
int gw_sub_check_name(const char *s, char *why, size_t n);
/* "omantel" or "ooredoo", any case; |*canon| gets the lower-case name. */
int gw_sub_parse_operator(const char *s, const char **canon, char *why,
                          size_t n);
/* A SIM PIN: 4..8 digits. */
int gw_sub_check_pin(const char *s, char *why, size_t n);
/* A PUK: 8 digits. */
int gw_sub_check_puk(const char *s, char *why, size_t n);
/* What the demo's mock operators do for this SIM: "" or a word of
 * [a-z0-9_], optionally ":" and digits ("approve:1000"), at most 64 bytes. */
int gw_sub_check_behaviour(const char *s, char *why, size_t n);

/* One SIM to provision. */
typedef struct gw_sub_request {
  char msisdn[GW_STORE_MSISDN_MAX + 1];
  char civil_id[GW_STORE_CIVIL_ID_MAX + 1];
  char name[GW_STORE_NAME_MAX + 1];
  char operator_name[GW_STORE_OPERATOR_MAX + 1];
  char pin[GW_SUB_PIN_MAX + 1];
  char puk[GW_SUB_PUK_LEN + 1];
  char behaviour[GW_STORE_BEHAVIOUR_MAX + 1];
} gw_sub_request;

/* Checks and copies the fields into |r| (the operator in lower case; NULL
 * or "" |pin| / |puk| take the demo values, NULL |behaviour| is ""). On
 * failure |r| is wiped and |why| names the first bad field as the command
 * line spells it ("--msisdn: ..."). */
int gw_sub_request_set(gw_sub_request *r, const char *msisdn,
                       const char *civil_id, const char *name, const char *op,
                       const char *pin, const char *puk, const char *behaviour,
                       char *why, size_t n);

/* Wipes |r| (it holds a PIN and a PUK). */
void gw_sub_request_wipe(gw_sub_request *r);

/* Provisions the SIM |r|: refuses an MSISDN already in the registry or
 * already a token; initialises a token labelled with the MSISDN (SO PIN =
 * PUK, user PIN = PIN); generates an EC P-256 key labelled
 * GW_SUB_KEY_LABEL on it (never extractable); has the CA issue its
 * certificate (gw_pki_ca_issue_sim); and registers it in |st|. Stores the
 * certificate in |*cert| when |cert| is not NULL. The CA's key is checked
 * before any token is made. |err| does not repeat the MSISDN. Returns GW_OK,
 * or
 *   GW_ERR_INVALID  already provisioned (registry or token: |err| says
 *                   which and what to do), a PIN the token refuses;
 *   GW_ERR_NOT_FOUND / GW_ERR_IO / GW_ERR_TLS  the token or CA failed;
 *   GW_ERR_BUSY, GW_ERR_STORE  the registry failed (the token and the
 *                   certificate exist then: |err| says so). */
int gw_sub_provision(p11_module *m, gw_pki_ca *ca, gw_store *st,
                     const gw_sub_request *r, X509 **cert, char *err,
                     size_t errlen);

/* Revokes the certificate of |msisdn|: index.txt (the OCSP responder's
 * database) and the registry. A SIM already revoked is left as it is and
 * |*already| (may be NULL) is set to 1. Returns GW_OK, GW_ERR_NOT_FOUND
 * (not in the registry), or the errors of gw_pki_ca_revoke and the store.
 * The CRL is not republished here (gw_pki_ca_publish_crl). */
int gw_sub_revoke(gw_pki_ca *ca, gw_store *st, const char *msisdn,
                  gw_pki_reason reason, time_t when, int *already, char *err,
                  size_t errlen);

/* ---- bulk CSV ------------------------------------------------------------
 *
 * A header row names the columns: msisdn, civil_id, name, operator
 * (required), pin, puk, behaviour (optional), in any order; other columns
 * are carried for other readers (the mock operators, humans) and ignored
 * here, unless a name looks like a misspelt known one ("Civil-ID"), which
 * is an error. Fields are separated by commas and may be double-quoted
 * ("a, b" and "" for a quote); spaces around an unquoted field are
 * dropped. Blank lines and lines starting with '#' are skipped. Lines end
 * with LF or CRLF, at most 4096 bytes. */

typedef struct gw_sub_csv gw_sub_csv;

/* Copies |len| bytes of |text| (the content of the file |name|, which is
 * only used in messages) and reads its header. Returns GW_OK or
 * GW_ERR_INVALID ("NAME:LINE: reason" in |err|), GW_ERR_NOMEM. */
int gw_sub_csv_new(gw_sub_csv **out, const char *name, const char *text,
                   size_t len, char *err, size_t errlen);

/* The number of data rows (for a progress bar). */
size_t gw_sub_csv_rows(const gw_sub_csv *c);

/* Reads the next row into |r| and its line number into |*line|. Returns
 * GW_OK, GW_ERR_NOT_FOUND after the last row, or GW_ERR_INVALID for a bad
 * row ("NAME:LINE: reason" in |err|; the next call goes on with the row
 * after it). */
int gw_sub_csv_next(gw_sub_csv *c, gw_sub_request *r, long *line, char *err,
                    size_t errlen);

/* Wipes the copy of the file (it holds PINs) and frees |c|; NULL is a
 * no-op. */
void gw_sub_csv_del(gw_sub_csv *c);

#endif
