/* mss.c — the ETSI TS 102 204 data model: status codes, modes, helpers and
 * the display-text rule. No XML or JSON here (see mss_soap.c). */
#include "mss.h"

#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw_err.h"

/* ---- Status codes ---- */

static const struct {
  int code;
  const char *name;
} status_table[] = {
    {MSS_REQUEST_OK, "REQUEST_OK"},
    {MSS_WRONG_PARAM, "WRONG_PARAM"},
    {MSS_MISSING_PARAM, "MISSING_PARAM"},
    {MSS_WRONG_DATA_LENGTH, "WRONG_DATA_LENGTH"},
    {MSS_UNAUTHORIZED_ACCESS, "UNAUTHORIZED_ACCESS"},
    {MSS_UNKNOWN_CLIENT, "UNKNOWN_CLIENT"},
    {MSS_INAPPROPRIATE_DATA, "INAPPROPRIATE_DATA"},
    {MSS_INCOMPATIBLE_INTERFACE, "INCOMPATIBLE_INTERFACE"},
    {MSS_UNSUPPORTED_PROFILE, "UNSUPPORTED_PROFILE"},
    {MSS_EXPIRED_TRANSACTION, "EXPIRED_TRANSACTION"},
    {MSS_OTA_ERROR, "OTA_ERROR"},
    {MSS_USER_CANCEL, "USER_CANCEL"},
    {MSS_PIN_NR_BLOCKED, "PIN_NR_BLOCKED"},
    {MSS_CARD_BLOCKED, "CARD_BLOCKED"},
    {MSS_NO_KEY_FOUND, "NO_KEY_FOUND"},
    {MSS_NO_URL_FOUND, "NO_URL_FOUND"},
    {MSS_PB_SIGNATURE_PROCESS, "PB_SIGNATURE_PROCESS"},
    {MSS_REGISTRATION_NOK, "REGISTRATION_NOK"},
    {MSS_NO_CERT_FOUND, "NO_CERT_FOUND"},
    {MSS_CRL_PB, "CRL_PB"},
    {MSS_CRL_EXPIRED, "CRL_EXPIRED"},
    {MSS_ERROR_CERTIFICATE, "ERROR_CERTIFICATE"},
    {MSS_SIGNATURE, "SIGNATURE"},
    {MSS_REVOKED_CERTIFICATE, "REVOKED_CERTIFICATE"},
    {MSS_VALID_SIGNATURE, "VALID_SIGNATURE"},
    {MSS_INVALID_SIGNATURE, "INVALID_SIGNATURE"},
    {MSS_OUTSTANDING_TRANSACTION, "OUTSTANDING_TRANSACTION"},
    {MSS_CONSTRAINT_MISMATCH, "CONSTRAINT_MISMATCH"},
    {MSS_INTERNAL_ERROR, "INTERNAL_ERROR"},
};

#define N_STATUS (sizeof(status_table) / sizeof(status_table[0]))

const char *mss_status_name(int code) {
  size_t i;

  for (i = 0; i < N_STATUS; i++) {
    if (status_table[i].code == code) {
      return status_table[i].name;
    }
  }
  return "UNKNOWN";
}

int mss_status_from_name(const char *name) {
  size_t i;

  if (!name) {
    return -1;
  }
  for (i = 0; i < N_STATUS; i++) {
    if (strcmp(status_table[i].name, name) == 0) {
      return status_table[i].code;
    }
  }
  return -1;
}

int mss_status_is_known(int code) {
  size_t i;

  for (i = 0; i < N_STATUS; i++) {
    if (status_table[i].code == code) {
      return 1;
    }
  }
  return 0;
}

int mss_status_is_fault(int code) {
  if (code <= 0) {
    return 0;
  }
  if (code == MSS_REQUEST_OK ||
      (code >= MSS_SIGNATURE && code <= MSS_CONSTRAINT_MISMATCH)) {
    return 0;
  }
  return 1;
}

/* ---- Modes and message names ---- */

static const char *const mode_names[] = {NULL, "synch", "asynchClientServer",
                                         "asynchServerServer"};

const char *mss_mode_name(mss_mode mode) {
  if ((int)mode <= 0 || (int)mode > MSS_MODE_ASYNCH_SERVER_SERVER) {
    return NULL;
  }
  return mode_names[mode];
}

int mss_mode_parse(const char *text, mss_mode *out) {
  int i;

  if (!text) {
    return GW_ERR_INVALID;
  }
  for (i = MSS_MODE_SYNCH; i <= MSS_MODE_ASYNCH_SERVER_SERVER; i++) {
    if (strcmp(mode_names[i], text) == 0) {
      *out = (mss_mode)i;
      return GW_OK;
    }
  }
  return GW_ERR_INVALID;
}

const char *mss_msg_name(mss_msg type) {
  switch (type) {
  case MSS_MSG_SIGNATURE_REQ:
    return "MSS_SignatureReq";
  case MSS_MSG_SIGNATURE_RESP:
    return "MSS_SignatureResp";
  case MSS_MSG_STATUS_REQ:
    return "MSS_StatusReq";
  case MSS_MSG_STATUS_RESP:
    return "MSS_StatusResp";
  case MSS_MSG_RECEIPT_REQ:
    return "MSS_ReceiptReq";
  case MSS_MSG_RECEIPT_RESP:
    return "MSS_ReceiptResp";
  case MSS_MSG_FAULT:
    return "Fault";
  case MSS_MSG_NONE:
    break;
  }
  return "NONE";
}

/* ---- Faults ---- */

const char *mss_fault_code_name(mss_fault_code code) {
  switch (code) {
  case MSS_FAULT_SENDER:
    return "env:Sender";
  case MSS_FAULT_RECEIVER:
    return "env:Receiver";
  }
  return NULL;
}

mss_fault_code mss_fault_code_for(int status) {
  /* FiCom appendix C: 101..108 and the roaming codes 7xx are the AP's
   * (Sender); 109, 2xx, 4xx and 900 are the MSSP's or the user's. */
  if ((status >= 101 && status <= 108) || (status >= 700 && status <= 799)) {
    return MSS_FAULT_SENDER;
  }
  return MSS_FAULT_RECEIVER;
}

/* Length of the longest prefix of |s| (at most |max| bytes) that does not
 * end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
  size_t n;

  if (len <= max) {
    return len;
  }
  n = max;
  /* Back off continuation bytes, then the lead byte they belong to. */
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
    n--;
  }
  return n;
}

void mss_fault_set(mss_fault *f, int status, const char *detail) {
  size_t n;

  memset(f, 0, sizeof(*f));
  f->code = mss_fault_code_for(status);
  f->subcode = status;
  snprintf(f->reason, sizeof(f->reason), "%s", mss_status_name(status));
  if (detail) {
    n = utf8_cut(detail, strlen(detail), MSS_FAULT_DETAIL_MAX);
    memcpy(f->detail, detail, n);
    f->detail[n] = '\0';
  }
}

/* ---- UTF-8 ---- */

/* Decodes one UTF-8 sequence at s[*i] (of n bytes). Returns the code point and
 * advances *i, or returns -1 for an invalid sequence (overlong, surrogate,
 * over U+10FFFF, truncated). */
static long utf8_next(const unsigned char *s, size_t n, size_t *i) {
  unsigned char c = s[*i];
  size_t len, k;
  long cp, min;

  if (c < 0x80) {
    (*i)++;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return -1;
  }
  if (n - *i < len) {
    return -1;
  }
  for (k = 1; k < len; k++) {
    if ((s[*i + k] & 0xC0) != 0x80) {
      return -1;
    }
    cp = (cp << 6) | (s[*i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return -1;
  }
  *i += len;
  return cp;
}

/* ---- NCName, dateTime ---- */

/* XML 1.0 (5th edition) NameStartChar without ':' */
static int name_start(long c) {
  return (c >= 'A' && c <= 'Z') || c == '_' || (c >= 'a' && c <= 'z') ||
         (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) ||
         (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
         (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) ||
         (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
         (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
         (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

static int name_char(long c) {
  return name_start(c) || c == '-' || c == '.' || (c >= '0' && c <= '9') ||
         c == 0xB7 || (c >= 0x300 && c <= 0x36F) ||
         (c >= 0x203F && c <= 0x2040);
}

int mss_ncname_valid(const char *s, size_t max_len) {
  size_t n, i = 0;
  long c;
  int first = 1;

  if (!s) {
    return 0;
  }
  n = strlen(s);
  if (n == 0 || n > max_len) {
    return 0;
  }
  while (i < n) {
    c = utf8_next((const unsigned char *)s, n, &i);
    if (c < 0 || !(first ? name_start(c) : name_char(c))) {
      return 0;
    }
    first = 0;
  }
  return 1;
}

static int digits(const char *s, int n, int *val) {
  int i, v = 0;

  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
    v = v * 10 + (s[i] - '0');
  }
  *val = v;
  return 1;
}

int mss_instant_valid(const char *s) {
  int y, mo, d, h, mi, sec, tzh, tzm, ylen = 0, mdays;
  static const int month_days[] = {31, 29, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};

  if (!s) {
    return 0;
  }
  if (*s == '-') {
    s++;
  }
  while (s[ylen] >= '0' && s[ylen] <= '9') {
    ylen++;
  }
  if (ylen < 4 || ylen > 9 || (ylen > 4 && s[0] == '0')) {
    return 0;
  }
  if (!digits(s, ylen, &y) || (ylen == 4 && y == 0)) {
    return 0;
  }
  s += ylen;
  if (s[0] != '-' || !digits(s + 1, 2, &mo) || s[3] != '-' ||
      !digits(s + 4, 2, &d) || s[6] != 'T' || !digits(s + 7, 2, &h) ||
      s[9] != ':' || !digits(s + 10, 2, &mi) || s[12] != ':' ||
      !digits(s + 13, 2, &sec)) {
    return 0;
  }
  if (mo < 1 || mo > 12 || d < 1) {
    return 0;
  }
  mdays = month_days[mo - 1];
  if (mo == 2 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
    mdays = 28;
  }
  if (d > mdays || mi > 59 || sec > 59 || h > 24) {
    return 0;
  }
  s += 15;
  if (*s == '.') {
    s++;
    if (*s < '0' || *s > '9') {
      return 0;
    }
    while (*s >= '0' && *s <= '9') {
      s++;
    }
  }
  if (h == 24 && (mi != 0 || sec != 0)) {
    return 0;
  }
  if (*s == 'Z') {
    return s[1] == '\0';
  }
  if (*s == '+' || *s == '-') {
    if (!digits(s + 1, 2, &tzh) || s[3] != ':' || !digits(s + 4, 2, &tzm) ||
        s[6] != '\0') {
      return 0;
    }
    return tzm <= 59 && (tzh < 14 || (tzh == 14 && tzm == 0));
  }
  return *s == '\0';
}

int mss_instant_format(time_t t, char *out, size_t cap) {
  struct tm tm;

  if (cap < 21 || !gmtime_r(&t, &tm)) {
    return GW_ERR_TOO_LARGE;
  }
  if (strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return GW_ERR_TOO_LARGE;
  }
  return GW_OK;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int mss_base64_encode(const void *p, size_t n, gw_buf *out) {
  const unsigned char *s = p;
  size_t old = out->len, i;
  char q[4];
  unsigned v;
  int rc = GW_OK;

  for (i = 0; i + 3 <= n && rc == GW_OK; i += 3) {
    v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8) | s[i + 2];
    q[0] = b64_alphabet[(v >> 18) & 63];
    q[1] = b64_alphabet[(v >> 12) & 63];
    q[2] = b64_alphabet[(v >> 6) & 63];
    q[3] = b64_alphabet[v & 63];
    rc = gw_buf_append(out, q, 4);
  }
  if (rc == GW_OK && i < n) {
    v = (unsigned)s[i] << 16;
    if (i + 1 < n) {
      v |= (unsigned)s[i + 1] << 8;
    }
    q[0] = b64_alphabet[(v >> 18) & 63];
    q[1] = b64_alphabet[(v >> 12) & 63];
    q[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
    q[3] = '=';
    rc = gw_buf_append(out, q, 4);
  }
  if (rc == GW_OK && out->data == NULL) {
    rc = gw_buf_append(out, "", 0); /* a valid empty C string */
  }
  if (rc != GW_OK) {
    out->len = old;
    if (out->data) {
      out->data[old] = '\0';
    }
  }
  return rc;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

static int xml_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int mss_base64_decode(const char *text, size_t n, unsigned char *out,
                      size_t cap, size_t *out_len) {
  size_t i, o = 0, pad = 0;
  unsigned v = 0;
  int k = 0, x;

  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];

    if (xml_space(c)) {
      continue;
    }
    if (c == '=') {
      pad++;
      if (pad > 2) {
        return GW_ERR_INVALID;
      }
      continue;
    }
    if (pad) {
      return GW_ERR_INVALID; /* data after padding */
    }
    x = b64_value(c);
    if (x < 0) {
      return GW_ERR_INVALID;
    }
    v = (v << 6) | (unsigned)x;
    if (++k == 4) {
      if (cap - o < 3 || o > cap) {
        return GW_ERR_TOO_LARGE;
      }
      out[o++] = (unsigned char)(v >> 16);
      out[o++] = (unsigned char)(v >> 8);
      out[o++] = (unsigned char)v;
      v = 0;
      k = 0;
    }
  }
  /* k characters left over: 0 (pad must be 0), 2 (one byte, pad 0 or 2),
   * 3 (two bytes, pad 0 or 1). */
  if (k == 1 || (k == 0 && pad) || (k == 2 && pad == 1) ||
      (k == 3 && pad == 2)) {
    return GW_ERR_INVALID;
  }
  if (k == 2) {
    if ((v & 0x0F) != 0) {
      return GW_ERR_INVALID; /* non-canonical trailing bits */
    }
    if (cap - o < 1 || o > cap) {
      return GW_ERR_TOO_LARGE;
    }
    out[o++] = (unsigned char)(v >> 4);
  } else if (k == 3) {
    if ((v & 0x03) != 0) {
      return GW_ERR_INVALID;
    }
    if (cap - o < 2 || o > cap) {
      return GW_ERR_TOO_LARGE;
    }
    out[o++] = (unsigned char)(v >> 10);
    out[o++] = (unsigned char)(v >> 2);
  }
  *out_len = o;
  return GW_OK;
}

/* ---- data elements ---- */

int mss_data_set(mss_data *d, const char *mime_type, const char *encoding,
                 const char *text, size_t n) {
  if ((mime_type && strlen(mime_type) > MSS_MIME_MAX) ||
      (encoding && strlen(encoding) > MSS_ENCODING_MAX) || n > MSS_DATA_MAX) {
    return GW_ERR_TOO_LARGE;
  }
  if (n && memchr(text, '\0', n)) {
    return GW_ERR_INVALID;
  }
  memset(d, 0, sizeof(*d));
  if (mime_type) {
    memcpy(d->mime_type, mime_type, strlen(mime_type) + 1);
  }
  if (encoding) {
    memcpy(d->encoding, encoding, strlen(encoding) + 1);
  }
  if (n) {
    memcpy(d->data, text, n);
  }
  d->len = n;
  d->data[n] = '\0';
  return GW_OK;
}

int mss_data_decode(const mss_data *d, unsigned char *out, size_t cap,
                    size_t *out_len) {
  size_t len = d->len > MSS_DATA_MAX ? MSS_DATA_MAX : d->len;

  if (strcasecmp(d->encoding, "base64") == 0) {
    return mss_base64_decode(d->data, len, out, cap, out_len);
  }
  if (len > cap) {
    return GW_ERR_TOO_LARGE;
  }
  memcpy(out, d->data, len);
  *out_len = len;
  return GW_OK;
}

/* ---- Display text: GSM 03.38 vs UCS-2 ---- */

/* Non-ASCII characters of the GSM 03.38 default alphabet. */
static const uint16_t gsm7_basic_extra[] = {
    0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7,
    0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B,
    0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6,
    0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC,
    0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0};

/* Septets |c| takes in GSM-7: 1 (default alphabet), 2 (escape + extension
 * table), or 0 when it is not representable. */
static int gsm7_septets(long c) {
  size_t i;

  if (c == '\n' || c == '\r') {
    return 1;
  }
  if (c >= 0x20 && c < 0x7F) {
    switch (c) {
    case '^':
    case '{':
    case '}':
    case '\\':
    case '[':
    case '~':
    case ']':
    case '|':
      return 2;
    case '`':
      return 0;
    default:
      return 1;
    }
  }
  if (c == 0x0C || c == 0x20AC) { /* form feed, euro sign */
    return 2;
  }
  for (i = 0; i < sizeof(gsm7_basic_extra) / sizeof(gsm7_basic_extra[0]); i++) {
    if (gsm7_basic_extra[i] == c) {
      return 1;
    }
  }
  return 0;
}

int mss_display_fits(const char *utf8, size_t n, int *is_gsm7, size_t *units) {
  const unsigned char *s = (const unsigned char *)utf8;
  size_t i = 0, septets = 0, ucs2 = 0;
  int gsm = 1, k;
  long c;

  if (is_gsm7) {
    *is_gsm7 = 0;
  }
  if (units) {
    *units = 0;
  }
  if (!utf8 && n) {
    return 0;
  }
  while (i < n) {
    c = utf8_next(s, n, &i);
    if (c < 0 || c == 0) {
      return 0;
    }
    ucs2 += c > 0xFFFF ? 2 : 1;
    if (gsm) {
      k = gsm7_septets(c);
      if (k == 0) {
        gsm = 0;
      } else {
        septets += (size_t)k;
      }
    }
  }
  if (is_gsm7) {
    *is_gsm7 = gsm;
  }
  if (units) {
    *units = gsm ? septets : ucs2;
  }
  return gsm ? septets <= MSS_DISPLAY_GSM7_MAX : ucs2 <= MSS_DISPLAY_UCS2_MAX;
}

int mss_fault_failf(mss_fault *f, int rc, int status, const char *fmt, ...) {
  char detail[MSS_FAULT_DETAIL_MAX + 1];
  va_list ap;

  if (f) {
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    mss_fault_set(f, status, detail);
  }
  return rc;
}
