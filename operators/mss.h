/* mss.h — the ETSI TS 102 204 (Mobile Signature Service) data model.
 *
 * Plain C structs with fixed capacities for the messages the gateway and the
 * mock MSSPs exchange: MSS_Signature, MSS_StatusQuery, MSS_Receipt and the
 * SOAP/JSON fault. Nothing here knows about XML or JSON: mss_soap.h renders
 * these structs as SOAP 1.2 (Omantel), the JSON rendering (Ooredoo) is a
 * separate codec on the same structs.
 *
 * Conventions for every struct below:
 *  - strings are NUL-terminated UTF-8 in char arrays of CAP + 1 bytes; the
 *    empty string means "absent" for optional fields;
 *  - the structs hold no pointers: zero them (memset or "= {0}") to start,
 *    copy them with "=", nothing to free;
 *  - a codec that meets a value longer than its cap rejects the message
 *    (WRONG_PARAM, or WRONG_DATA_LENGTH for mss_data) rather than truncating.
 *
 * See docs/etsi.md and ../shared/docs/REFERENCE.md §1. */
#ifndef MSS_H
#define MSS_H

#include <stddef.h>
#include <time.h>

#include "gw_buf.h"

/* The namespace of the ETSI messages, and the two MSS_Format URIs we know. */
#define MSS_NS "http://uri.etsi.org/TS102204/v1.1.2#"
#define MSS_FORMAT_PKCS7 "http://uri.etsi.org/TS102204/v1.1.2#PKCS7"
#define MSS_FORMAT_PKCS1 "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"
/* The FiCom extension namespace (fi:PKCS1). */
#define MSS_FICOM_NS "http://mss.ficom.fi/TS102204/v1.0.0#"

/* The interface version we speak: MajorVersion="1" MinorVersion="1". A
 * MajorVersion other than 1 is INCOMPATIBLE_INTERFACE (108); any MinorVersion
 * is accepted and recorded (the JSON rendering uses 2). */
#define MSS_MAJOR_VERSION 1
#define MSS_MINOR_VERSION 1

/* Capacities, in bytes, not counting the terminating NUL. */
#define MSS_URI_MAX 256         /* AP_ID, AP_URL, MSSP_ID, profile, format */
#define MSS_PWD_MAX 128         /* AP_PWD */
#define MSS_TRANSID_MAX 32      /* AP_TransID: xs:NCName of 1..32 chars */
#define MSS_MSSP_TRANSID_MAX 64 /* MSSP_TransID: xs:NCName of 1..64 chars */
#define MSS_INSTANT_MAX 40     /* xs:dateTime text, e.g. 2024-01-31T12:00:00Z */
#define MSS_MSISDN_MAX 32      /* MobileUser/MSISDN, e.g. +96899000001 */
#define MSS_MIME_MAX 64        /* MimeType attribute */
#define MSS_ENCODING_MAX 32    /* Encoding attribute */
#define MSS_DATA_MAX 4096      /* DataToBeSigned/-Displayed/Message text */
#define MSS_STATUS_MSG_MAX 256 /* Status/StatusMessage */
#define MSS_SIG_MAX 16384      /* signature bytes (CMS DER, or raw PKCS#1) */
#define MSS_CERT_MAX 8192      /* certificate DER beside a PKCS1 signature */
#define MSS_FAULT_REASON_MAX 256
#define MSS_FAULT_DETAIL_MAX 512

/* ---- Status codes (REFERENCE §1, FiCom appendix C) ---- */

typedef enum mss_status {
  MSS_REQUEST_OK = 100,
  MSS_WRONG_PARAM = 101,
  MSS_MISSING_PARAM = 102,
  MSS_WRONG_DATA_LENGTH = 103,
  MSS_UNAUTHORIZED_ACCESS = 104,
  MSS_UNKNOWN_CLIENT = 105,
  MSS_INAPPROPRIATE_DATA = 107,
  MSS_INCOMPATIBLE_INTERFACE = 108,
  MSS_UNSUPPORTED_PROFILE = 109,
  MSS_EXPIRED_TRANSACTION = 208,
  MSS_OTA_ERROR = 209,
  MSS_USER_CANCEL = 401,
  MSS_PIN_NR_BLOCKED = 402,
  MSS_CARD_BLOCKED = 403,
  MSS_NO_KEY_FOUND = 404,
  MSS_NO_URL_FOUND = 405,
  MSS_PB_SIGNATURE_PROCESS = 406,
  MSS_REGISTRATION_NOK = 407,
  MSS_NO_CERT_FOUND = 422,
  MSS_CRL_PB = 423,
  MSS_CRL_EXPIRED = 424,
  MSS_ERROR_CERTIFICATE = 425,
  MSS_SIGNATURE = 500,
  MSS_REVOKED_CERTIFICATE = 501,
  MSS_VALID_SIGNATURE = 502,
  MSS_INVALID_SIGNATURE = 503,
  MSS_OUTSTANDING_TRANSACTION = 504,
  MSS_CONSTRAINT_MISMATCH = 505, /* FiCom-specific result */
  MSS_INTERNAL_ERROR = 900
} mss_status;

/* Returns the ETSI name of |code| ("REQUEST_OK", "USER_CANCEL", ...), a static
 * string; "UNKNOWN" for a code not in the table above. */
const char *mss_status_name(int code);

/* Returns the code whose name is |name| (exact, case-sensitive), or -1. */
int mss_status_from_name(const char *name);

/* Returns 1 when |code| is one of the codes in the table above, else 0. */
int mss_status_is_known(int code);

/* Returns 1 when |code| is a fault (travels as a SOAP Fault / JSON Fault),
 * 0 when it is a result carried in a Status element: 100 and 500..505.
 * Any other positive code, known or not, is a fault; codes <= 0 are not. */
int mss_status_is_fault(int code);

/* ---- Messaging mode ---- */

typedef enum mss_mode {
  MSS_MODE_NONE = 0, /* unset: invalid in a request */
  MSS_MODE_SYNCH = 1,
  MSS_MODE_ASYNCH_CLIENT_SERVER = 2,
  MSS_MODE_ASYNCH_SERVER_SERVER = 3
} mss_mode;

/* Returns "synch", "asynchClientServer" or "asynchServerServer"; NULL for
 * MSS_MODE_NONE or an out-of-range value. */
const char *mss_mode_name(mss_mode mode);

/* Parses the schema token (exact, case-sensitive) into *out.
 * Returns GW_OK, or GW_ERR_INVALID (out untouched). */
int mss_mode_parse(const char *text, mss_mode *out);

/* ---- Message types (for dispatch and logging) ---- */

typedef enum mss_msg {
  MSS_MSG_NONE = 0,
  MSS_MSG_SIGNATURE_REQ,
  MSS_MSG_SIGNATURE_RESP,
  MSS_MSG_STATUS_REQ,
  MSS_MSG_STATUS_RESP,
  MSS_MSG_RECEIPT_REQ,
  MSS_MSG_RECEIPT_RESP,
  MSS_MSG_FAULT
} mss_msg;

/* Returns the element name ("MSS_SignatureReq", ..., "Fault"), or "NONE". */
const char *mss_msg_name(mss_msg type);

/* ---- Building blocks ---- */

/* AP_Info. All four required by the schema; ap_url is optional. In every
 * response the MSSP sends AP_PWD="" whatever ap_pwd holds: the codecs never
 * echo a password. */
typedef struct mss_ap_info {
  char ap_id[MSS_URI_MAX + 1];           /* xs:anyURI, required */
  char ap_pwd[MSS_PWD_MAX + 1];          /* required attribute, may be "" */
  char ap_trans_id[MSS_TRANSID_MAX + 1]; /* xs:NCName, 1..32 chars */
  char instant[MSS_INSTANT_MAX + 1];     /* xs:dateTime text */
  char ap_url[MSS_URI_MAX + 1];          /* optional */
} mss_ap_info;

/* MSSP_Info: required in every message, MSSP_ID may be empty (FiCom: "include,
 * but fill with blank values"). */
typedef struct mss_mssp_info {
  char id[MSS_URI_MAX + 1];          /* MSSP_ID/URI, "" = <MSSP_ID/> */
  char instant[MSS_INSTANT_MAX + 1]; /* optional Instant attribute */
} mss_mssp_info;

/* A typed data element (DataToBeSigned, DataToBeDisplayed, Message): the text
 * exactly as it travels. For Encoding "base64" that is the base64 text; use
 * mss_data_decode() for the bytes. Text content is kept byte for byte (no
 * trimming): the SIM signs exactly what was received (REFERENCE §1c). */
typedef struct mss_data {
  char mime_type[MSS_MIME_MAX + 1];    /* optional, e.g. "text/plain" */
  char encoding[MSS_ENCODING_MAX + 1]; /* optional, e.g. "UTF-8", "base64" */
  size_t len;                          /* bytes in data, excluding the NUL */
  char data[MSS_DATA_MAX + 1];         /* NUL-terminated; no NUL inside */
} mss_data;

/* Status: StatusCode/@Value and StatusMessage (StatusDetail is not kept). */
typedef struct mss_status_info {
  int code;                             /* 0 = absent (where optional) */
  char message[MSS_STATUS_MSG_MAX + 1]; /* "" = absent */
} mss_status_info;

/* MSS_Signature. */
typedef enum mss_sig_kind {
  MSS_SIG_NONE = 0,  /* no MSS_Signature element */
  MSS_SIG_PKCS7 = 1, /* Base64Signature: DER of a CMS SignedData */
  MSS_SIG_PKCS1 = 2, /* fi:PKCS1: raw signature value + certificate DER */
  MSS_SIG_OTHER = 3  /* present in a form we do not decode (XMLSignature,
                        another extension); bytes and cert are empty */
} mss_sig_kind;

typedef struct mss_signature {
  mss_sig_kind kind;
  size_t len;                       /* bytes in sig */
  unsigned char sig[MSS_SIG_MAX];   /* PKCS7: CMS DER; PKCS1: r||s or RSA */
  size_t cert_len;                  /* PKCS1 only */
  unsigned char cert[MSS_CERT_MAX]; /* PKCS1 only: X.509 DER */
} mss_signature;

/* ---- Messages ---- */

/* Every message starts with MajorVersion, MinorVersion, AP_Info, MSSP_Info. */

typedef struct mss_signature_req {
  int major_version; /* MSS_MAJOR_VERSION */
  int minor_version; /* MSS_MINOR_VERSION */
  mss_ap_info ap_info;
  mss_mssp_info mssp_info;
  char msisdn[MSS_MSISDN_MAX + 1];         /* required (102 when absent) */
  mss_data data_to_be_signed;              /* required */
  int has_data_to_be_displayed;            /* 0/1 */
  mss_data data_to_be_displayed;           /* when has_... */
  char signature_profile[MSS_URI_MAX + 1]; /* mssURI, "" = absent */
  char mss_format[MSS_URI_MAX + 1];        /* mssURI, "" = absent */
  mss_mode messaging_mode;                 /* required */
  unsigned timeout;                        /* TimeOut seconds, 0 = absent */
} mss_signature_req;

typedef struct mss_signature_resp {
  int major_version;
  int minor_version;
  mss_ap_info ap_info; /* echo of the request's (AP_PWD sent as "") */
  mss_mssp_info mssp_info;
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1]; /* required NCName */
  char msisdn[MSS_MSISDN_MAX + 1];              /* "" = no MSISDN element */
  char signature_profile[MSS_URI_MAX + 1];      /* "" = absent */
  mss_status_info status;                       /* required: 100, or 500.. */
  mss_signature signature;                      /* synch mode, at the end */
} mss_signature_resp;

typedef struct mss_status_req {
  int major_version;
  int minor_version;
  mss_ap_info ap_info;
  mss_mssp_info mssp_info;
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1]; /* required NCName */
  char msisdn[MSS_MSISDN_MAX + 1];              /* optional in the schema */
} mss_status_req;

typedef struct mss_status_resp {
  int major_version;
  int minor_version;
  mss_ap_info ap_info;
  mss_mssp_info mssp_info;
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1]; /* optional: notifications */
  char msisdn[MSS_MSISDN_MAX + 1];
  mss_status_info status;  /* 504 until the end, then 500.. */
  mss_signature signature; /* with 500..503 */
} mss_status_resp;

typedef struct mss_receipt_req {
  int major_version;
  int minor_version;
  mss_ap_info ap_info;
  mss_mssp_info mssp_info;
  char mssp_trans_id[MSS_MSSP_TRANSID_MAX + 1]; /* required NCName */
  char msisdn[MSS_MSISDN_MAX + 1];
  mss_status_info status; /* optional: code 0 = absent */
  int has_message;        /* 0/1 */
  mss_data message;       /* text for the handset, when has_message */
} mss_receipt_req;

/* MSS_ReceiptResp: the schema gives it no MSSP_TransID attribute. */
typedef struct mss_receipt_resp {
  int major_version;
  int minor_version;
  mss_ap_info ap_info;
  mss_mssp_info mssp_info;
  mss_status_info status; /* required: 100 REQUEST_OK when delivered */
} mss_receipt_resp;

/* A fault: SOAP 1.2 env:Fault, or the JSON "Fault" object. */
typedef enum mss_fault_code {
  MSS_FAULT_SENDER = 1,  /* env:Sender: the request was wrong (101..108) */
  MSS_FAULT_RECEIVER = 2 /* env:Receiver: the MSSP or the user (109, 2xx..) */
} mss_fault_code;

typedef struct mss_fault {
  mss_fault_code code;
  int subcode;                           /* status code: 101 -> mss:_101 */
  char reason[MSS_FAULT_REASON_MAX + 1]; /* Reason/Text, e.g. WRONG_PARAM */
  char detail[MSS_FAULT_DETAIL_MAX + 1]; /* Detail text, "" = absent */
} mss_fault;

/* Returns "env:Sender" / "env:Receiver" (SOAP QName as we write it), or NULL.
 */
const char *mss_fault_code_name(mss_fault_code code);

/* Returns the side FiCom appendix C assigns to |status|: Sender for 101..108
 * and 7xx, Receiver for everything else. */
mss_fault_code mss_fault_code_for(int status);

/* Fills |f| for |status|: code from mss_fault_code_for(), subcode = status,
 * reason = mss_status_name(status), detail = |detail| (NULL = none; cut at
 * MSS_FAULT_DETAIL_MAX bytes on a UTF-8 boundary — it is free text). */
void mss_fault_set(mss_fault *f, int status, const char *detail);

/* For the codecs' parsers: when |f| is not NULL, mss_fault_set(f, status,
 * <the formatted detail>); returns |rc|. */
int mss_fault_failf(mss_fault *f, int rc, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- Helpers ---- */

/* Returns 1 when |s| is a valid xs:NCName of 1..max_len bytes (ASCII letters,
 * digits, '_', '-', '.', not starting with a digit, '-' or '.'; non-ASCII
 * UTF-8 name characters are accepted as in XML 1.0 5th edition), else 0. */
int mss_ncname_valid(const char *s, size_t max_len);

/* Returns 1 when |s| is a lexically valid xs:dateTime
 * (YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]), else 0. */
int mss_instant_valid(const char *s);

/* Writes |t| as UTC xs:dateTime "YYYY-MM-DDThh:mm:ssZ" into |out|.
 * Returns GW_OK, or GW_ERR_TOO_LARGE when |cap| < 21. */
int mss_instant_format(time_t t, char *out, size_t cap);

/* Copies the bytes a data element stands for into |out| (cap |cap|): the
 * base64-decoded bytes when Encoding is "base64" (case-insensitive; whitespace
 * ignored), else the text bytes as they are. Sets *out_len.
 * Returns GW_OK, GW_ERR_INVALID (bad base64) or GW_ERR_TOO_LARGE. */
int mss_data_decode(const mss_data *d, unsigned char *out, size_t cap,
                    size_t *out_len);

/* Sets a data element: copies |n| bytes of |text| (no NUL inside) and the
 * optional mime/encoding (NULL = absent). Returns GW_OK, GW_ERR_INVALID (NUL
 * inside) or GW_ERR_TOO_LARGE (over a cap; |d| untouched). */
int mss_data_set(mss_data *d, const char *mime_type, const char *encoding,
                 const char *text, size_t n);

/* Appends the standard base64 (with padding, no line breaks) of |n| bytes
 * to |out|. Returns GW_OK, GW_ERR_TOO_LARGE or GW_ERR_NOMEM (on error |out|
 * keeps its previous length). */
int mss_base64_encode(const void *p, size_t n, gw_buf *out);

/* Decodes standard base64 text (|n| bytes; XML whitespace ignored anywhere;
 * padding optional at the very end; base64url characters refused) into |out|
 * (cap |cap|). Returns GW_OK, GW_ERR_INVALID or GW_ERR_TOO_LARGE. */
int mss_base64_decode(const char *text, size_t n, unsigned char *out,
                      size_t cap, size_t *out_len);

/* The display-text rule, applied by the mock SIMs to DataToBeDisplayed (and
 * to text/plain DataToBeSigned shown on the handset): the text must fit one
 * SMS-sized SIM dialogue, never cut.
 *  - If every character is in the GSM 03.38 default alphabet or its
 *    extension table, the text goes as GSM-7: *is_gsm7 = 1 and *units counts
 *    septets (an extension character — ^ { } \ [ ~ ] | € and form feed —
 *    counts 2). Limit: MSS_DISPLAY_GSM7_MAX = 160 septets.
 *  - Otherwise (Arabic, most non-Latin text) it goes as UCS-2: *is_gsm7 = 0
 *    and *units counts UTF-16 code units (a character outside the BMP counts
 *    2). Limit: MSS_DISPLAY_UCS2_MAX = 70.
 * |utf8|/|n| is the text (n bytes, need not be NUL-terminated). is_gsm7 and
 * units may be NULL. Returns 1 when the text is valid UTF-8 within the limit
 * (the empty text fits, 0 units); 0 otherwise (invalid UTF-8 — overlong
 * forms, surrogates, truncated sequences — sets *units = 0, *is_gsm7 = 0).
 * The mock answers 107 INAPPROPRIATE_DATA when this returns 0. */
#define MSS_DISPLAY_GSM7_MAX 160
#define MSS_DISPLAY_UCS2_MAX 70
int mss_display_fits(const char *utf8, size_t n, int *is_gsm7, size_t *units);

#endif
