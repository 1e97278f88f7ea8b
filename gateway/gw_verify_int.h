/* gw_verify_int.h — helpers shared by the verification files (gw_verify.c,
 * gw_crl.c, gw_ocsp.c). Not for other modules: use gw_verify.h. */
#ifndef GW_VERIFY_INT_H
#define GW_VERIFY_INT_H

#include <stddef.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

/* Size of a buffer for gw_verify_fmt_time(). */
#define GW_VERIFY_TIME_STR 32

/* Converts an ASN.1 UTCTime/GeneralizedTime to seconds since the epoch.
 * Returns GW_OK or GW_ERR_INVALID (NULL or malformed). */
int gw_verify_asn1_time(const ASN1_TIME *t, time_t *out);

/* Writes |t| as "YYYY-MM-DDTHH:MM:SSZ" into |buf| (GW_VERIFY_TIME_STR). */
void gw_verify_fmt_time(time_t t, char *buf);

/* Writes |nm| in RFC 2253 form into |buf| (|n| bytes), cut to fit. */
void gw_verify_fmt_name(const X509_NAME *nm, char *buf, size_t n);

/* snprintf into a detail buffer; a no-op when |detail| is NULL or |n| 0. */
void gw_verify_setf(char *detail, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends ": <reason>" of the most recent OpenSSL error, if any, to
 * |detail|, and empties this thread's OpenSSL error queue. */
void gw_verify_ossl_err(char *detail, size_t n);

#endif
