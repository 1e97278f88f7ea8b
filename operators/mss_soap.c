/* mss_soap.c — ETSI TS 102 204 messages as SOAP 1.2 documents.
 *
 * Writing is done by hand into a gw_buf (exact control over prefixes and
 * where namespaces are declared, no whitespace inside simple content);
 * reading uses libxml2's tree parser with a hardened context: no network,
 * no entity substitution, no DTD loading, DOCTYPE refused as soon as it is
 * seen, input and depth capped. Elements are matched by namespace URI and
 * local name, never by prefix. */
#include "mss_soap.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlerror.h>

#include "gw_err.h"

/* Where a fault's free-text detail goes: SOAP 1.2 Detail has element-only
 * content, so the text is wrapped in one element, as deployed ETSI MSSPs
 * (Kiuru/Laverca, Swisscom) do. */
#define MSS_DETAIL_NS "http://kiuru.methics.fi/mssp"

/* Parser options: see the file comment. NOCDATA merges CDATA into text. */
#define MSS_XML_OPTIONS                                                        \
  (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR |                   \
   XML_PARSE_NOWARNING)

void mss_soap_init(void) {
  xmlInitParser();
}

/* ======================================================================== */
/* Writing                                                                   */
/* ======================================================================== */

typedef struct writer {
  gw_buf *b;
  int rc; /* sticky: the first error */
} writer;

static void w_puts(writer *w, const char *s) {
  if (w->rc == GW_OK) {
    w->rc = gw_buf_puts(w->b, s);
  }
}

static void w_append(writer *w, const char *s, size_t n) {
  if (w->rc == GW_OK && n) {
    w->rc = gw_buf_append(w->b, s, n);
  }
}

/* Appends |n| bytes of UTF-8 text escaped for XML content (attr = 0) or for a
 * double-quoted attribute value (attr = 1). CR, and in attributes TAB and
 * LF, are written as character references so that a parser gives back the
 * same bytes. Invalid UTF-8 and characters XML 1.0 cannot carry (C0 controls
 * other than TAB/LF/CR, U+FFFE/U+FFFF) make the message GW_ERR_INVALID. */
static void w_esc_n(writer *w, const char *s, size_t n, int attr) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0, k, len;
  const char *rep;
  unsigned char c;

  while (i < n && w->rc == GW_OK) {
    c = p[i];
    rep = NULL;
    len = 1;
    if (c < 0x80) {
      switch (c) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '"':
        rep = attr ? "&quot;" : NULL;
        break;
      case '\r':
        rep = "&#13;";
        break;
      case '\n':
        rep = attr ? "&#10;" : NULL;
        break;
      case '\t':
        rep = attr ? "&#9;" : NULL;
        break;
      default:
        if (c < 0x20) {
          w->rc = GW_ERR_INVALID;
          return;
        }
      }
    } else {
      /* Validate one UTF-8 sequence. */
      unsigned long cp;
      unsigned long min;

      if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
      } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
      } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
      } else {
        w->rc = GW_ERR_INVALID;
        return;
      }
      if (n - i < len) {
        w->rc = GW_ERR_INVALID;
        return;
      }
      for (k = 1; k < len; k++) {
        if ((p[i + k] & 0xC0) != 0x80) {
          w->rc = GW_ERR_INVALID;
          return;
        }
        cp = (cp << 6) | (p[i + k] & 0x3F);
      }
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
          cp == 0xFFFE || cp == 0xFFFF) {
        w->rc = GW_ERR_INVALID;
        return;
      }
    }
    if (rep) {
      w_append(w, s + i - run, run);
      w_puts(w, rep);
      run = 0;
    } else {
      run += len;
    }
    i += len;
  }
  w_append(w, s + i - run, run);
}

static void w_esc(writer *w, const char *s, int attr) {
  w_esc_n(w, s, strlen(s), attr);
}

/* name="value" with a leading space. */
static void w_attr(writer *w, const char *name, const char *value) {
  w_puts(w, " ");
  w_puts(w, name);
  w_puts(w, "=\"");
  w_esc(w, value, 1);
  w_puts(w, "\"");
}

static void w_attr_int(writer *w, const char *name, long v) {
  char num[32];

  snprintf(num, sizeof(num), "%ld", v);
  w_attr(w, name, num);
}

static void w_fail(writer *w, int rc) {
  if (w->rc == GW_OK) {
    w->rc = rc;
  }
}

static int ver_or_default(int v, int def) {
  return v == 0 ? def : v;
}

/* The envelope up to and including the MSS_* start tag's name. */
static void w_begin(writer *w, const char *wrapper, const char *msg, int major,
                    int minor) {
  major = ver_or_default(major, MSS_MAJOR_VERSION);
  minor = ver_or_default(minor, MSS_MINOR_VERSION);
  if (major < 0 || minor < 0) {
    w_fail(w, GW_ERR_INVALID);
  }
  w_puts(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<env:Envelope xmlns:env=\"" MSS_SOAP_NS "\">\n<env:Body>\n<");
  w_puts(w, wrapper);
  w_puts(w, ">\n<mss:");
  w_puts(w, msg);
  w_puts(w, " xmlns:mss=\"" MSS_NS "\"");
  w_attr_int(w, "MajorVersion", major);
  w_attr_int(w, "MinorVersion", minor);
}

static void w_end(writer *w, const char *wrapper, const char *msg) {
  w_puts(w, "</mss:");
  w_puts(w, msg);
  w_puts(w, ">\n</");
  w_puts(w, wrapper);
  w_puts(w, ">\n</env:Body>\n</env:Envelope>\n");
}

/* AP_Info and MSSP_Info. |response|: write AP_PWD="" whatever ap_pwd is. */
static void w_infos(writer *w, const mss_ap_info *ap, const mss_mssp_info *mi,
                    int response) {
  if (!ap->ap_id[0] || !mss_ncname_valid(ap->ap_trans_id, MSS_TRANSID_MAX) ||
      !mss_instant_valid(ap->instant) ||
      (mi->instant[0] && !mss_instant_valid(mi->instant))) {
    w_fail(w, GW_ERR_INVALID);
    return;
  }
  w_puts(w, "<mss:AP_Info");
  w_attr(w, "AP_ID", ap->ap_id);
  w_attr(w, "AP_TransID", ap->ap_trans_id);
  w_attr(w, "AP_PWD", response ? "" : ap->ap_pwd);
  w_attr(w, "Instant", ap->instant);
  if (ap->ap_url[0]) {
    w_attr(w, "AP_URL", ap->ap_url);
  }
  w_puts(w, "/>\n<mss:MSSP_Info");
  if (mi->instant[0]) {
    w_attr(w, "Instant", mi->instant);
  }
  w_puts(w, ">\n");
  if (mi->id[0]) {
    w_puts(w, "<mss:MSSP_ID><mss:URI>");
    w_esc(w, mi->id, 0);
    w_puts(w, "</mss:URI></mss:MSSP_ID>\n");
  } else {
    w_puts(w, "<mss:MSSP_ID/>\n");
  }
  w_puts(w, "</mss:MSSP_Info>\n");
}

static void w_mobile_user(writer *w, const char *msisdn) {
  if (msisdn[0]) {
    w_puts(w, "<mss:MobileUser><mss:MSISDN>");
    w_esc(w, msisdn, 0);
    w_puts(w, "</mss:MSISDN></mss:MobileUser>\n");
  } else {
    w_puts(w, "<mss:MobileUser/>\n");
  }
}

static void w_data(writer *w, const char *name, const mss_data *d) {
  if (d->len > MSS_DATA_MAX) {
    w_fail(w, GW_ERR_INVALID);
    return;
  }
  w_puts(w, "<mss:");
  w_puts(w, name);
  if (d->mime_type[0]) {
    w_attr(w, "MimeType", d->mime_type);
  }
  if (d->encoding[0]) {
    w_attr(w, "Encoding", d->encoding);
  }
  w_puts(w, ">");
  w_esc_n(w, d->data, d->len, 0);
  w_puts(w, "</mss:");
  w_puts(w, name);
  w_puts(w, ">\n");
}

static void w_uri(writer *w, const char *name, const char *uri) {
  w_puts(w, "<mss:");
  w_puts(w, name);
  w_puts(w, "><mss:mssURI>");
  w_esc(w, uri, 0);
  w_puts(w, "</mss:mssURI></mss:");
  w_puts(w, name);
  w_puts(w, ">\n");
}

static void w_status(writer *w, const mss_status_info *st) {
  if (st->code <= 0) {
    w_fail(w, GW_ERR_INVALID);
    return;
  }
  w_puts(w, "<mss:Status><mss:StatusCode");
  w_attr_int(w, "Value", st->code);
  w_puts(w, "/>");
  if (st->message[0]) {
    w_puts(w, "<mss:StatusMessage>");
    w_esc(w, st->message, 0);
    w_puts(w, "</mss:StatusMessage>");
  }
  w_puts(w, "</mss:Status>\n");
}

static void w_b64(writer *w, const unsigned char *p, size_t n) {
  if (w->rc == GW_OK) {
    w->rc = mss_base64_encode(p, n, w->b);
  }
}

static void w_signature(writer *w, const mss_signature *sig) {
  switch (sig->kind) {
  case MSS_SIG_NONE:
    return;
  case MSS_SIG_PKCS7:
    if (sig->len == 0 || sig->len > MSS_SIG_MAX) {
      break;
    }
    w_puts(w, "<mss:MSS_Signature><mss:Base64Signature>");
    w_b64(w, sig->sig, sig->len);
    w_puts(w, "</mss:Base64Signature></mss:MSS_Signature>\n");
    return;
  case MSS_SIG_PKCS1:
    if (sig->len == 0 || sig->len > MSS_SIG_MAX || sig->cert_len == 0 ||
        sig->cert_len > MSS_CERT_MAX) {
      break;
    }
    w_puts(w, "<mss:MSS_Signature><fi:PKCS1 xmlns:fi=\"" MSS_FICOM_NS
              "\"><fi:SignatureValue>");
    w_b64(w, sig->sig, sig->len);
    w_puts(w, "</fi:SignatureValue><fi:X509Certificate>");
    w_b64(w, sig->cert, sig->cert_len);
    w_puts(w, "</fi:X509Certificate></fi:PKCS1></mss:MSS_Signature>\n");
    return;
  case MSS_SIG_OTHER:
    break;
  }
  w_fail(w, GW_ERR_INVALID);
}

static void w_trans_id(writer *w, const char *id, int required) {
  if (!id[0] && !required) {
    return;
  }
  if (!mss_ncname_valid(id, MSS_MSSP_TRANSID_MAX)) {
    w_fail(w, GW_ERR_INVALID);
    return;
  }
  w_attr(w, "MSSP_TransID", id);
}

/* Ends a build: on error, give |out| back its previous length. */
static int w_finish(writer *w, size_t old_len) {
  if (w->rc != GW_OK) {
    w->b->len = old_len;
    if (w->b->data) {
      w->b->data[old_len] = '\0';
    }
  }
  return w->rc;
}

int mss_soap_build_signature_req(const mss_signature_req *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;
  const char *mode = mss_mode_name(r->messaging_mode);

  if (!mode || !r->msisdn[0]) {
    return GW_ERR_INVALID;
  }
  w_begin(&w, "MSS_Signature", "MSS_SignatureReq", r->major_version,
          r->minor_version);
  if (r->timeout > 0) {
    w_attr_int(&w, "TimeOut", (long)r->timeout);
  }
  w_attr(&w, "MessagingMode", mode);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 0);
  w_mobile_user(&w, r->msisdn);
  w_data(&w, "DataToBeSigned", &r->data_to_be_signed);
  if (r->has_data_to_be_displayed) {
    w_data(&w, "DataToBeDisplayed", &r->data_to_be_displayed);
  }
  if (r->signature_profile[0]) {
    w_uri(&w, "SignatureProfile", r->signature_profile);
  }
  if (r->mss_format[0]) {
    w_uri(&w, "MSS_Format", r->mss_format);
  }
  w_end(&w, "MSS_Signature", "MSS_SignatureReq");
  return w_finish(&w, old);
}

int mss_soap_build_signature_resp(const mss_signature_resp *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;

  w_begin(&w, "MSS_SignatureResponse", "MSS_SignatureResp", r->major_version,
          r->minor_version);
  w_trans_id(&w, r->mssp_trans_id, 1);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 1);
  w_mobile_user(&w, r->msisdn);
  w_signature(&w, &r->signature);
  if (r->signature_profile[0]) {
    w_uri(&w, "SignatureProfile", r->signature_profile);
  }
  w_status(&w, &r->status);
  w_end(&w, "MSS_SignatureResponse", "MSS_SignatureResp");
  return w_finish(&w, old);
}

int mss_soap_build_status_req(const mss_status_req *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;

  w_begin(&w, "MSS_StatusQuery", "MSS_StatusReq", r->major_version,
          r->minor_version);
  w_trans_id(&w, r->mssp_trans_id, 1);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 0);
  if (r->msisdn[0]) {
    w_mobile_user(&w, r->msisdn);
  }
  w_end(&w, "MSS_StatusQuery", "MSS_StatusReq");
  return w_finish(&w, old);
}

int mss_soap_build_status_resp(const mss_status_resp *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;

  w_begin(&w, "MSS_StatusQueryResponse", "MSS_StatusResp", r->major_version,
          r->minor_version);
  w_trans_id(&w, r->mssp_trans_id, 0);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 1);
  w_mobile_user(&w, r->msisdn);
  w_signature(&w, &r->signature);
  w_status(&w, &r->status);
  w_end(&w, "MSS_StatusQueryResponse", "MSS_StatusResp");
  return w_finish(&w, old);
}

int mss_soap_build_receipt_req(const mss_receipt_req *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;

  w_begin(&w, "MSS_Receipt", "MSS_ReceiptReq", r->major_version,
          r->minor_version);
  w_trans_id(&w, r->mssp_trans_id, 1);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 0);
  w_mobile_user(&w, r->msisdn);
  if (r->status.code != 0) {
    w_status(&w, &r->status);
  }
  if (r->has_message) {
    w_data(&w, "Message", &r->message);
  }
  w_end(&w, "MSS_Receipt", "MSS_ReceiptReq");
  return w_finish(&w, old);
}

int mss_soap_build_receipt_resp(const mss_receipt_resp *r, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;

  w_begin(&w, "MSS_ReceiptResponse", "MSS_ReceiptResp", r->major_version,
          r->minor_version);
  w_puts(&w, ">\n");
  w_infos(&w, &r->ap_info, &r->mssp_info, 1);
  w_status(&w, &r->status);
  w_end(&w, "MSS_ReceiptResponse", "MSS_ReceiptResp");
  return w_finish(&w, old);
}

int mss_soap_build_fault(const mss_fault *f, gw_buf *out) {
  writer w = {out, GW_OK};
  size_t old = out->len;
  const char *code = mss_fault_code_name(f->code);
  char sub[32];

  if (!code || f->subcode <= 0) {
    return GW_ERR_INVALID;
  }
  snprintf(sub, sizeof(sub), "mss:_%d", f->subcode);
  w_puts(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<env:Envelope xmlns:env=\"" MSS_SOAP_NS "\">\n<env:Body>\n"
             "<env:Fault>\n<env:Code><env:Value>");
  w_puts(&w, code);
  w_puts(&w, "</env:Value><env:Subcode><env:Value xmlns:mss=\"" MSS_NS "\">");
  w_puts(&w, sub);
  w_puts(&w, "</env:Value></env:Subcode></env:Code>\n"
             "<env:Reason><env:Text xml:lang=\"en\">");
  w_esc(&w, f->reason[0] ? f->reason : mss_status_name(f->subcode), 0);
  w_puts(&w, "</env:Text></env:Reason>\n");
  if (f->detail[0]) {
    w_puts(&w, "<env:Detail><ns1:detail xmlns:ns1=\"" MSS_DETAIL_NS "\">");
    w_esc(&w, f->detail, 0);
    w_puts(&w, "</ns1:detail></env:Detail>\n");
  }
  w_puts(&w, "</env:Fault>\n</env:Body>\n</env:Envelope>\n");
  return w_finish(&w, old);
}

/* ======================================================================== */
/* Reading                                                                   */
/* ======================================================================== */

/* The parser context's flag word, kept in ctxt->_private. */
typedef struct p_flags {
  int doctype;
} p_flags;

static void p_internal_subset(void *ctx, const xmlChar *name,
                              const xmlChar *external_id,
                              const xmlChar *system_id) {
  xmlParserCtxtPtr ctxt = ctx;
  p_flags *fl = ctxt->_private;

  (void)name;
  (void)external_id;
  (void)system_id;
  if (fl) {
    fl->doctype = 1;
  }
  /* Stop before the internal subset is read: no entity is ever declared. */
  xmlStopParser(ctxt);
}

/* Maximum element depth under |root| (iterative walk). */
static int p_too_deep(xmlNodePtr root) {
  xmlNodePtr n = root;
  int depth = 1;

  while (n) {
    if (n->type == XML_ELEMENT_NODE && n->children && depth < INT_MAX) {
      xmlNodePtr c = n->children;

      while (c && c->type != XML_ELEMENT_NODE) {
        c = c->next;
      }
      if (c) {
        depth++;
        if (depth > MSS_SOAP_MAX_DEPTH) {
          return 1;
        }
        n = c;
        continue;
      }
    }
    /* Next element sibling, or climb. */
    while (n) {
      xmlNodePtr s = n->next;

      while (s && s->type != XML_ELEMENT_NODE) {
        s = s->next;
      }
      if (s) {
        n = s;
        break;
      }
      if (n == root) {
        return 0;
      }
      n = n->parent;
      depth--;
      if (n == root || !n || n->type != XML_ELEMENT_NODE) {
        return 0;
      }
    }
  }
  return 0;
}

static int is_el(xmlNodePtr n, const char *ns, const char *name) {
  return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
         strcmp((const char *)n->ns->href, ns) == 0 &&
         (!name || strcmp((const char *)n->name, name) == 0);
}

static xmlNodePtr first_el(xmlNodePtr parent) {
  xmlNodePtr c;

  for (c = parent ? parent->children : NULL; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      return c;
    }
  }
  return NULL;
}

static xmlNodePtr next_el(xmlNodePtr n) {
  for (n = n ? n->next : NULL; n; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) {
      return n;
    }
  }
  return NULL;
}

/* The first child element of |parent| in namespace |ns| named |name|. */
static xmlNodePtr child(xmlNodePtr parent, const char *ns, const char *name) {
  xmlNodePtr c;

  for (c = first_el(parent); c; c = next_el(c)) {
    if (is_el(c, ns, name)) {
      return c;
    }
  }
  return NULL;
}

/* A parsed document and where its parts are. */
typedef struct p_doc {
  xmlDocPtr doc;
  xmlNodePtr body;  /* env:Body */
  xmlNodePtr fault; /* env:Fault, when the Body holds one */
  xmlNodePtr msg;   /* the MSS_* element, otherwise */
} p_doc;

static const char *const msg_names[] = {NULL,
                                        "MSS_SignatureReq",
                                        "MSS_SignatureResp",
                                        "MSS_StatusReq",
                                        "MSS_StatusResp",
                                        "MSS_ReceiptReq",
                                        "MSS_ReceiptResp"};

static int is_message_name(const xmlChar *name) {
  const char *s = (const char *)name;
  size_t n = strlen(s);

  return strncmp(s, "MSS_", 4) == 0 &&
         ((n > 3 && strcmp(s + n - 3, "Req") == 0) ||
          (n > 4 && strcmp(s + n - 4, "Resp") == 0));
}

static void p_free(p_doc *d) {
  if (d->doc) {
    xmlFreeDoc(d->doc);
  }
  memset(d, 0, sizeof(*d));
}

/* Parses |xml| and finds the Body's content. On failure fills |f| (Sender 108,
 * or 103 / 900) and returns the error. */
static int p_load(const char *xml, size_t n, p_doc *d, mss_fault *f) {
  xmlParserCtxtPtr ctxt;
  p_flags fl = {0};
  xmlNodePtr root, c, first;
  int nomem;

  memset(d, 0, sizeof(*d));
  if (n > MSS_SOAP_MAX_INPUT) {
    return mss_fault_failf(f, GW_ERR_TOO_LARGE, MSS_WRONG_DATA_LENGTH,
                           "message over %d bytes", MSS_SOAP_MAX_INPUT);
  }
  if (!xml || n == 0) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "empty message");
  }
  mss_soap_init();
  ctxt = xmlNewParserCtxt();
  if (!ctxt) {
    return mss_fault_failf(f, GW_ERR_NOMEM, MSS_INTERNAL_ERROR,
                           "out of memory");
  }
  ctxt->_private = &fl;
  ctxt->sax->internalSubset = p_internal_subset;
  ctxt->sax->externalSubset = NULL;
  d->doc = xmlCtxtReadMemory(ctxt, xml, (int)n, NULL, NULL, MSS_XML_OPTIONS);
  nomem = ctxt->errNo == XML_ERR_NO_MEMORY;
  if (d->doc && !ctxt->wellFormed) {
    xmlFreeDoc(d->doc);
    d->doc = NULL;
  }
  xmlFreeParserCtxt(ctxt);
  if (fl.doctype) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "DOCTYPE not allowed");
  }
  if (!d->doc) {
    if (nomem) {
      return mss_fault_failf(f, GW_ERR_NOMEM, MSS_INTERNAL_ERROR,
                             "out of memory");
    }
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "not well-formed XML");
  }
  root = xmlDocGetRootElement(d->doc);
  if (!root || p_too_deep(root)) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           root ? "elements nested deeper than %d"
                                : "no element",
                           MSS_SOAP_MAX_DEPTH);
  }
  if (!is_el(root, MSS_SOAP_NS, "Envelope")) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "not a SOAP 1.2 Envelope");
  }
  /* Envelope: Header? Body, nothing else in the SOAP namespace matters. */
  c = first_el(root);
  if (is_el(c, MSS_SOAP_NS, "Header")) {
    c = next_el(c);
  }
  if (!is_el(c, MSS_SOAP_NS, "Body")) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "no SOAP 1.2 Body");
  }
  d->body = c;
  first = first_el(c);
  if (!first) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "empty SOAP Body");
  }
  if (is_el(first, MSS_SOAP_NS, "Fault")) {
    d->fault = first;
    return GW_OK;
  }
  if (is_el(first, MSS_NS, NULL) && is_message_name(first->name)) {
    d->msg = first; /* no wrapper */
    return GW_OK;
  }
  /* The wrapper named after the operation, of any name and namespace. */
  d->msg = first_el(first);
  if (!d->msg) {
    p_free(d);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "no MSS message in the SOAP Body");
  }
  return GW_OK;
}

/* Checks that the message element is |name| in the ETSI namespace. */
static int p_expect(const p_doc *d, const char *name, mss_fault *f) {
  if (!is_el(d->msg, MSS_NS, NULL)) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "%s: not in namespace " MSS_NS,
                           (const char *)d->msg->name);
  }
  if (strcmp((const char *)d->msg->name, name) != 0) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "expected %s, got %.64s", name,
                           (const char *)d->msg->name);
  }
  return GW_OK;
}

static int xml_ws(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies |s| trimmed of XML whitespace into dst (cap+1 bytes).
 * Returns 0, or -1 when it does not fit. */
static int copy_trim(char *dst, size_t cap, const char *s) {
  size_t n;

  while (xml_ws((unsigned char)*s)) {
    s++;
  }
  n = strlen(s);
  while (n > 0 && xml_ws((unsigned char)s[n - 1])) {
    n--;
  }
  if (n > cap) {
    return -1;
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

/* Copies trimmed text cut at |cap| bytes on a UTF-8 boundary. */
static void copy_trim_cut(char *dst, size_t cap, const char *s) {
  size_t n;

  while (xml_ws((unsigned char)*s)) {
    s++;
  }
  n = strlen(s);
  while (n > 0 && xml_ws((unsigned char)s[n - 1])) {
    n--;
  }
  if (n > cap) {
    n = cap;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
      n--;
    }
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* Reads a parse step: every p_* helper returns GW_OK or an error with the
 * fault filled; callers chain them with `if (rc == GW_OK)`. */

/* Attribute |name| (no namespace) of |n| into dst, trimmed. required: 102
 * when absent; over cap: 101. Absent optional: dst = "". */
static int p_attr(xmlNodePtr n, const char *name, char *dst, size_t cap,
                  int required, mss_fault *f) {
  xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
  int bad;

  dst[0] = '\0';
  if (!v) {
    if (required) {
      return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                             "%s/@%s missing", (const char *)n->name, name);
    }
    return GW_OK;
  }
  bad = copy_trim(dst, cap, (const char *)v);
  xmlFree(v);
  if (bad) {
    dst[0] = '\0';
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s/@%s too long", (const char *)n->name, name);
  }
  return GW_OK;
}

/* Parses an xs:integer (trimmed) into *out, clamped to [INT_MIN, INT_MAX]
 * for positive overflow only when |clamp|. Returns 0 or -1. */
static int parse_int(const char *s, long long lo, long long hi, int clamp,
                     long long *out) {
  long long v = 0;
  int neg = 0, any = 0;

  if (*s == '+' || *s == '-') {
    neg = *s == '-';
    s++;
  }
  for (; *s >= '0' && *s <= '9'; s++) {
    any = 1;
    if (v < 1000000000000LL) {
      v = v * 10 + (*s - '0');
    } else if (!clamp) {
      return -1;
    }
  }
  if (!any || *s) {
    return -1;
  }
  if (neg) {
    v = -v;
  }
  if (v > hi) {
    if (!clamp) {
      return -1;
    }
    v = hi;
  }
  if (v < lo) {
    return -1;
  }
  *out = v;
  return 0;
}

static int p_attr_int(xmlNodePtr n, const char *name, long long lo,
                      long long hi, int clamp, int required, long long *out,
                      int *present, mss_fault *f) {
  char buf[64];
  int rc = p_attr(n, name, buf, sizeof(buf) - 1, required, f);

  if (present) {
    *present = 0;
  }
  if (rc == GW_ERR_INVALID && f && f->subcode == MSS_WRONG_PARAM) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s/@%s not an integer", (const char *)n->name,
                           name);
  }
  if (rc != GW_OK) {
    return rc;
  }
  if (!buf[0] && !xmlHasProp(n, (const xmlChar *)name)) {
    return GW_OK;
  }
  if (parse_int(buf, lo, hi, clamp, out) != 0) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "%s/@%s not a valid integer", (const char *)n->name,
                           name);
  }
  if (present) {
    *present = 1;
  }
  return GW_OK;
}

/* MajorVersion / MinorVersion on the message element. */
static int p_versions(xmlNodePtr m, int *major, int *minor, mss_fault *f) {
  long long v = 0;
  int rc;

  rc = p_attr_int(m, "MajorVersion", LLONG_MIN / 2, LLONG_MAX / 2, 1, 1, &v,
                  NULL, f);
  if (rc != GW_OK) {
    return rc;
  }
  if (v != MSS_MAJOR_VERSION) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_INCOMPATIBLE_INTERFACE,
                           "MajorVersion %lld not supported", v);
  }
  *major = (int)v;
  rc = p_attr_int(m, "MinorVersion", 0, INT_MAX, 0, 1, &v, NULL, f);
  if (rc != GW_OK) {
    return rc;
  }
  *minor = (int)v;
  return GW_OK;
}

static int p_ap_info(xmlNodePtr m, mss_ap_info *ap, mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, "AP_Info");
  int rc;

  if (!n) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "AP_Info missing");
  }
  rc = p_attr(n, "AP_ID", ap->ap_id, MSS_URI_MAX, 1, f);
  if (rc == GW_OK) {
    rc = p_attr(n, "AP_TransID", ap->ap_trans_id, MSS_TRANSID_MAX, 1, f);
    if ((rc == GW_OK && !mss_ncname_valid(ap->ap_trans_id, MSS_TRANSID_MAX)) ||
        (rc != GW_OK && f && f->subcode == MSS_WRONG_PARAM)) {
      rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "AP_TransID is not an NCName of 1..%d characters",
                           MSS_TRANSID_MAX);
    }
  }
  if (rc == GW_OK) {
    /* The password is kept as sent (xs:string: no trimming). */
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)"AP_PWD");

    if (!v) {
      rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "AP_Info/@AP_PWD missing");
    } else {
      if (strlen((const char *)v) > MSS_PWD_MAX) {
        rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                             "AP_Info/@AP_PWD too long");
      } else {
        memcpy(ap->ap_pwd, v, strlen((const char *)v) + 1);
      }
      memset(v, 0, strlen((const char *)v));
      xmlFree(v);
    }
  }
  if (rc == GW_OK) {
    rc = p_attr(n, "Instant", ap->instant, MSS_INSTANT_MAX, 1, f);
    if (rc == GW_OK && !mss_instant_valid(ap->instant)) {
      rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "AP_Info/@Instant is not an xs:dateTime");
    }
  }
  if (rc == GW_OK) {
    rc = p_attr(n, "AP_URL", ap->ap_url, MSS_URI_MAX, 0, f);
  }
  return rc;
}

/* Text content of |n| (all descendant text), malloc'd by libxml2. */
static char *p_text(xmlNodePtr n) {
  return (char *)xmlNodeGetContent(n);
}

/* Child |name| of |parent| as trimmed text into dst. Missing: "" (or 102 if
 * required). Over cap: 101. */
static int p_child_text(xmlNodePtr parent, const char *name, char *dst,
                        size_t cap, int required, mss_fault *f) {
  xmlNodePtr n = child(parent, MSS_NS, name);
  char *t;
  int bad;

  dst[0] = '\0';
  if (!n) {
    if (required) {
      return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM, "%s missing",
                             name);
    }
    return GW_OK;
  }
  t = p_text(n);
  if (!t) {
    return GW_OK; /* empty element */
  }
  bad = copy_trim(dst, cap, t);
  xmlFree(t);
  if (bad) {
    dst[0] = '\0';
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM, "%s too long",
                           name);
  }
  return GW_OK;
}

static int p_mssp_info(xmlNodePtr m, mss_mssp_info *mi, mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, "MSSP_Info"), id;
  int rc;

  if (!n) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "MSSP_Info missing");
  }
  rc = p_attr(n, "Instant", mi->instant, MSS_INSTANT_MAX, 0, f);
  if (rc == GW_OK && mi->instant[0] && !mss_instant_valid(mi->instant)) {
    rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                         "MSSP_Info/@Instant is not an xs:dateTime");
  }
  if (rc != GW_OK) {
    return rc;
  }
  id = child(n, MSS_NS, "MSSP_ID");
  if (!id) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "MSSP_ID missing");
  }
  return p_child_text(id, "URI", mi->id, MSS_URI_MAX, 0, f);
}

/* MobileUser/MSISDN. |required|: 1 = MobileUser and MSISDN, 2 = MobileUser
 * only, 0 = neither. */
static int p_mobile_user(xmlNodePtr m, char *msisdn, int required,
                         mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, "MobileUser");
  int rc;

  msisdn[0] = '\0';
  if (!n) {
    if (required) {
      return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                             "MobileUser missing");
    }
    return GW_OK;
  }
  rc = p_child_text(n, "MSISDN", msisdn, MSS_MSISDN_MAX, required == 1, f);
  if (rc == GW_OK && required == 1 && !msisdn[0]) {
    rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                         "MobileUser/MSISDN empty");
  }
  return rc;
}

/* A DataType element (exact text; attributes trimmed). */
static int p_data(xmlNodePtr n, const char *name, mss_data *d, mss_fault *f) {
  char *t;
  size_t len;
  int rc;

  memset(d, 0, sizeof(*d));
  rc = p_attr(n, "MimeType", d->mime_type, MSS_MIME_MAX, 0, f);
  if (rc == GW_OK) {
    rc = p_attr(n, "Encoding", d->encoding, MSS_ENCODING_MAX, 0, f);
  }
  if (rc != GW_OK) {
    return rc;
  }
  t = p_text(n);
  if (!t) {
    return GW_OK;
  }
  len = strlen(t);
  if (len > MSS_DATA_MAX) {
    xmlFree(t);
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_DATA_LENGTH,
                           "%s longer than %d bytes", name, MSS_DATA_MAX);
  }
  memcpy(d->data, t, len + 1);
  d->len = len;
  xmlFree(t);
  return GW_OK;
}

/* An mssURIType element |name| under |m|: its mssURI into dst. */
static int p_uri(xmlNodePtr m, const char *name, char *dst, mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, name);

  dst[0] = '\0';
  if (!n) {
    return GW_OK;
  }
  return p_child_text(n, "mssURI", dst, MSS_URI_MAX, 1, f);
}

static int p_status(xmlNodePtr m, mss_status_info *st, int required,
                    mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, "Status"), code, msg;
  long long v = 0;
  char *t;
  int rc;

  memset(st, 0, sizeof(*st));
  if (!n) {
    return required ? mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                                      "Status missing")
                    : GW_OK;
  }
  code = child(n, MSS_NS, "StatusCode");
  if (!code) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "StatusCode missing");
  }
  rc = p_attr_int(code, "Value", 1, INT_MAX, 0, 1, &v, NULL, f);
  if (rc != GW_OK) {
    return rc;
  }
  st->code = (int)v;
  msg = child(n, MSS_NS, "StatusMessage");
  if (msg) {
    t = p_text(msg);
    if (t) {
      copy_trim_cut(st->message, MSS_STATUS_MSG_MAX, t);
      xmlFree(t);
    }
  }
  return GW_OK;
}

static int p_b64(xmlNodePtr n, unsigned char *out, size_t cap, size_t *len,
                 mss_fault *f) {
  char *t = p_text(n);
  int rc;

  *len = 0;
  if (!t) {
    return GW_OK;
  }
  rc = mss_base64_decode(t, strlen(t), out, cap, len);
  xmlFree(t);
  if (rc == GW_ERR_TOO_LARGE) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_DATA_LENGTH,
                           "%s too long", (const char *)n->name);
  }
  if (rc != GW_OK) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM, "%s: bad base64",
                           (const char *)n->name);
  }
  return GW_OK;
}

static int p_signature(xmlNodePtr m, mss_signature *sig, mss_fault *f) {
  xmlNodePtr n = child(m, MSS_NS, "MSS_Signature"), c, v, cert;
  int rc;

  memset(sig, 0, sizeof(*sig));
  if (!n) {
    return GW_OK;
  }
  c = first_el(n);
  if (!c) {
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                           "MSS_Signature is empty");
  }
  if (is_el(c, MSS_NS, "Base64Signature")) {
    rc = p_b64(c, sig->sig, MSS_SIG_MAX, &sig->len, f);
    if (rc == GW_OK) {
      sig->kind = MSS_SIG_PKCS7;
    }
    return rc;
  }
  if (is_el(c, MSS_FICOM_NS, "PKCS1")) {
    v = child(c, MSS_FICOM_NS, "SignatureValue");
    cert = child(c, MSS_FICOM_NS, "X509Certificate");
    if (!v || !cert) {
      return mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                             "PKCS1/%s missing",
                             v ? "X509Certificate" : "SignatureValue");
    }
    rc = p_b64(v, sig->sig, MSS_SIG_MAX, &sig->len, f);
    if (rc == GW_OK) {
      rc = p_b64(cert, sig->cert, MSS_CERT_MAX, &sig->cert_len, f);
    }
    if (rc == GW_OK) {
      sig->kind = MSS_SIG_PKCS1;
    }
    return rc;
  }
  sig->kind = MSS_SIG_OTHER;
  return GW_OK;
}

static int p_trans_id(xmlNodePtr m, char *dst, int required, mss_fault *f) {
  int rc = p_attr(m, "MSSP_TransID", dst, MSS_MSSP_TRANSID_MAX, required, f);

  if ((rc == GW_ERR_INVALID && f && f->subcode == MSS_WRONG_PARAM) ||
      (rc == GW_OK && dst[0] && !mss_ncname_valid(dst, MSS_MSSP_TRANSID_MAX)) ||
      (rc == GW_OK && !dst[0] &&
       xmlHasProp(m, (const xmlChar *)"MSSP_TransID"))) {
    dst[0] = '\0';
    return mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "MSSP_TransID is not an NCName of 1..%d characters",
                           MSS_MSSP_TRANSID_MAX);
  }
  return rc;
}

/* Resolves the QName text of |n| (trimmed) into namespace and local part. */
static int qname(xmlNodePtr n, char *local, size_t cap, const char **ns) {
  char *t = p_text(n), *colon;
  char buf[128];
  xmlNsPtr x;

  *ns = NULL;
  local[0] = '\0';
  if (!t) {
    return -1;
  }
  if (copy_trim(buf, sizeof(buf) - 1, t) != 0) {
    xmlFree(t);
    return -1;
  }
  xmlFree(t);
  colon = strchr(buf, ':');
  if (colon) {
    *colon = '\0';
    x = xmlSearchNs(n->doc, n, (const xmlChar *)buf);
    snprintf(local, cap, "%s", colon + 1);
  } else {
    x = xmlSearchNs(n->doc, n, NULL);
    snprintf(local, cap, "%s", buf);
  }
  *ns = x ? (const char *)x->href : NULL;
  return 0;
}

/* Reads the env:Fault of |d| into |out|. Returns GW_OK or GW_ERR_INVALID. */
static int p_fault(const p_doc *d, mss_fault *out) {
  xmlNodePtr code, value, sub, reason, text, detail;
  char local[128];
  const char *ns;
  char *t;
  long long v;

  memset(out, 0, sizeof(*out));
  code = d->fault ? child(d->fault, MSS_SOAP_NS, "Code") : NULL;
  value = code ? child(code, MSS_SOAP_NS, "Value") : NULL;
  if (!value || qname(value, local, sizeof(local), &ns) != 0) {
    return GW_ERR_INVALID;
  }
  /* Receiver for env:Receiver; Sender for env:Sender and the SOAP-level
   * errors of the request (VersionMismatch, MustUnderstand, ...). */
  out->code =
      (ns && strcmp(ns, MSS_SOAP_NS) == 0 && strcmp(local, "Receiver") == 0)
          ? MSS_FAULT_RECEIVER
          : MSS_FAULT_SENDER;
  sub = child(code, MSS_SOAP_NS, "Subcode");
  value = sub ? child(sub, MSS_SOAP_NS, "Value") : NULL;
  /* The prefix is not checked: FiCom writes fi:_208 (often undeclared). */
  if (value && qname(value, local, sizeof(local), &ns) == 0 &&
      local[0] == '_' && local[1] >= '0' && local[1] <= '9' &&
      parse_int(local + 1, 1, INT_MAX, 0, &v) == 0) {
    out->subcode = (int)v;
  }
  reason = child(d->fault, MSS_SOAP_NS, "Reason");
  text = reason ? child(reason, MSS_SOAP_NS, "Text") : NULL;
  t = text ? p_text(text) : NULL;
  if (t) {
    copy_trim_cut(out->reason, MSS_FAULT_REASON_MAX, t);
    xmlFree(t);
  }
  detail = child(d->fault, MSS_SOAP_NS, "Detail");
  t = detail ? p_text(detail) : NULL;
  if (t) {
    copy_trim_cut(out->detail, MSS_FAULT_DETAIL_MAX, t);
    xmlFree(t);
  }
  return GW_OK;
}

/* The common start of every parse: load, fault check, element name,
 * versions, AP_Info, MSSP_Info. */
static int p_common(const char *xml, size_t n, p_doc *d, const char *name,
                    int *major, int *minor, mss_ap_info *ap, mss_mssp_info *mi,
                    mss_fault *f) {
  int rc = p_load(xml, n, d, f);

  if (rc != GW_OK) {
    return rc;
  }
  if (d->fault) {
    if (f && p_fault(d, f) != GW_OK) {
      mss_fault_set(f, MSS_INCOMPATIBLE_INTERFACE, "SOAP Fault without Code");
    }
    return GW_ERR_PROTO;
  }
  rc = p_expect(d, name, f);
  if (rc == GW_OK) {
    rc = p_versions(d->msg, major, minor, f);
  }
  if (rc == GW_OK) {
    rc = p_ap_info(d->msg, ap, f);
  }
  if (rc == GW_OK) {
    rc = p_mssp_info(d->msg, mi, f);
  }
  return rc;
}

/* Zeroes *out on error and frees the document. */
static int p_done(p_doc *d, int rc, void *out, size_t size) {
  p_free(d);
  if (rc != GW_OK) {
    memset(out, 0, size);
  }
  return rc;
}

int mss_soap_parse_signature_req(const char *xml, size_t n,
                                 mss_signature_req *out, mss_fault *f) {
  p_doc d;
  xmlNodePtr m, dtbs, dtbd;
  char mode[32];
  long long to = 0;
  int rc, present = 0;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_SignatureReq", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  m = d.msg;
  if (rc == GW_OK) {
    rc = p_attr(m, "MessagingMode", mode, sizeof(mode) - 1, 1, f);
    if (rc == GW_ERR_INVALID && f && f->subcode == MSS_WRONG_PARAM) {
      rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                           "bad MessagingMode");
    } else if (rc == GW_OK) {
      /* The schema's enumeration is on xs:string: no trimming allowed. */
      xmlChar *raw = xmlGetNoNsProp(m, (const xmlChar *)"MessagingMode");

      if (!raw ||
          mss_mode_parse((const char *)raw, &out->messaging_mode) != GW_OK) {
        rc = mss_fault_failf(f, GW_ERR_INVALID, MSS_WRONG_PARAM,
                             "bad MessagingMode");
      }
      xmlFree(raw);
    }
  }
  if (rc == GW_OK) {
    rc = p_attr_int(m, "TimeOut", 1, UINT_MAX, 1, 0, &to, &present, f);
    out->timeout = present ? (unsigned)to : 0;
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(m, out->msisdn, 1, f);
  }
  if (rc == GW_OK) {
    dtbs = child(m, MSS_NS, "DataToBeSigned");
    rc = dtbs ? p_data(dtbs, "DataToBeSigned", &out->data_to_be_signed, f)
              : mss_fault_failf(f, GW_ERR_INVALID, MSS_MISSING_PARAM,
                                "DataToBeSigned missing");
  }
  if (rc == GW_OK) {
    dtbd = child(m, MSS_NS, "DataToBeDisplayed");
    if (dtbd) {
      out->has_data_to_be_displayed = 1;
      rc = p_data(dtbd, "DataToBeDisplayed", &out->data_to_be_displayed, f);
    }
  }
  if (rc == GW_OK) {
    rc = p_uri(m, "SignatureProfile", out->signature_profile, f);
  }
  if (rc == GW_OK) {
    rc = p_uri(m, "MSS_Format", out->mss_format, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_parse_signature_resp(const char *xml, size_t n,
                                  mss_signature_resp *out, mss_fault *f) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_SignatureResp", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_trans_id(d.msg, out->mssp_trans_id, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_signature(d.msg, &out->signature, f);
  }
  if (rc == GW_OK) {
    rc = p_uri(d.msg, "SignatureProfile", out->signature_profile, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_parse_status_req(const char *xml, size_t n, mss_status_req *out,
                              mss_fault *f) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_StatusReq", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_trans_id(d.msg, out->mssp_trans_id, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, out->msisdn, 0, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_parse_status_resp(const char *xml, size_t n, mss_status_resp *out,
                               mss_fault *f) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_StatusResp", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_trans_id(d.msg, out->mssp_trans_id, 0, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_signature(d.msg, &out->signature, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_parse_receipt_req(const char *xml, size_t n, mss_receipt_req *out,
                               mss_fault *f) {
  p_doc d;
  xmlNodePtr msg;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_ReceiptReq", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_trans_id(d.msg, out->mssp_trans_id, 1, f);
  }
  if (rc == GW_OK) {
    rc = p_mobile_user(d.msg, out->msisdn, 2, f);
  }
  if (rc == GW_OK) {
    rc = p_status(d.msg, &out->status, 0, f);
  }
  if (rc == GW_OK) {
    msg = child(d.msg, MSS_NS, "Message");
    if (msg) {
      out->has_message = 1;
      rc = p_data(msg, "Message", &out->message, f);
    }
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_parse_receipt_resp(const char *xml, size_t n,
                                mss_receipt_resp *out, mss_fault *f) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_common(xml, n, &d, "MSS_ReceiptResp", &out->major_version,
                &out->minor_version, &out->ap_info, &out->mssp_info, f);
  if (rc == GW_OK) {
    rc = p_status(d.msg, &out->status, 1, f);
  }
  return p_done(&d, rc, out, sizeof(*out));
}

int mss_soap_peek(const char *xml, size_t n, mss_msg *type) {
  p_doc d;
  int rc = p_load(xml, n, &d, NULL), i;

  *type = MSS_MSG_NONE;
  if (rc != GW_OK) {
    return rc;
  }
  if (d.fault) {
    *type = MSS_MSG_FAULT;
  } else if (is_el(d.msg, MSS_NS, NULL)) {
    for (i = MSS_MSG_SIGNATURE_REQ; i <= MSS_MSG_RECEIPT_RESP; i++) {
      if (strcmp((const char *)d.msg->name, msg_names[i]) == 0) {
        *type = (mss_msg)i;
      }
    }
  }
  p_free(&d);
  return *type == MSS_MSG_NONE ? GW_ERR_INVALID : GW_OK;
}

int mss_soap_parse_fault(const char *xml, size_t n, mss_fault *out) {
  p_doc d;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = p_load(xml, n, &d, NULL);
  if (rc != GW_OK) {
    return rc;
  }
  rc = d.fault ? p_fault(&d, out) : GW_ERR_INVALID;
  p_free(&d);
  if (rc != GW_OK) {
    memset(out, 0, sizeof(*out));
  }
  return rc;
}

/* ======================================================================== */
/* Schema validation                                                         */
/* ======================================================================== */

struct mss_soap_schema {
  xmlSchemaPtr env;
  xmlSchemaPtr mss;
  char *err; /* where the current validation writes its first error */
  size_t errcap;
  int nerr;
};

static xmlSchemaPtr schema_load(const char *dir, const char *file, int *rc) {
  char path[4096];
  struct stat st;
  xmlSchemaParserCtxtPtr pc;
  xmlSchemaPtr s;

  if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >=
          sizeof(path) ||
      stat(path, &st) != 0) {
    *rc = GW_ERR_NOT_FOUND;
    return NULL;
  }
  pc = xmlSchemaNewParserCtxt(path);
  if (!pc) {
    *rc = GW_ERR_NOMEM;
    return NULL;
  }
  xmlSchemaSetParserStructuredErrors(pc, NULL, NULL);
  s = xmlSchemaParse(pc);
  xmlSchemaFreeParserCtxt(pc);
  if (!s) {
    *rc = GW_ERR_CONFIG;
  }
  return s;
}

/* Silences libxml2's default error printing while schemas compile. */
static void quiet_error(void *ctx, const char *msg, ...)
    __attribute__((format(printf, 2, 3)));
static void quiet_error(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

int mss_soap_schema_new(mss_soap_schema **out, const char *schema_dir) {
  mss_soap_schema *s;
  xmlExternalEntityLoader old_loader;
  xmlGenericErrorFunc old_err;
  void *old_err_ctx;
  int rc = GW_OK;

  mss_soap_init();
  s = calloc(1, sizeof(*s));
  if (!s) {
    return GW_ERR_NOMEM;
  }
  /* The schemas import each other by relative file name; nothing may come
   * from the network. */
  old_loader = xmlGetExternalEntityLoader();
  old_err = xmlGenericError;
  old_err_ctx = xmlGenericErrorContext;
  xmlSetExternalEntityLoader(xmlNoNetExternalEntityLoader);
  xmlSetGenericErrorFunc(NULL, quiet_error);
  s->env = schema_load(schema_dir, "soap-envelope.xsd", &rc);
  if (s->env) {
    s->mss = schema_load(schema_dir, "MSS-plus.xsd", &rc);
  }
  xmlSetGenericErrorFunc(old_err_ctx, old_err);
  xmlSetExternalEntityLoader(old_loader);
  if (!s->env || !s->mss) {
    mss_soap_schema_del(s);
    return rc;
  }
  *out = s;
  return GW_OK;
}

void mss_soap_schema_del(mss_soap_schema *s) {
  if (!s) {
    return;
  }
  if (s->env) {
    xmlSchemaFree(s->env);
  }
  if (s->mss) {
    xmlSchemaFree(s->mss);
  }
  free(s);
}

static void schema_error(void *ctx, xmlErrorPtr e) {
  mss_soap_schema *s = ctx;
  size_t n;

  if (!e || s->nerr++ > 0 || !s->err || s->errcap == 0) {
    return;
  }
  snprintf(s->err, s->errcap, "line %d: %s", e->line,
           e->message ? e->message : "invalid");
  n = strlen(s->err);
  while (n > 0 && s->err[n - 1] == '\n') {
    s->err[--n] = '\0';
  }
}

static int validate_with(mss_soap_schema *s, xmlSchemaPtr schema, xmlDocPtr doc,
                         xmlNodePtr elem) {
  xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
  int r;

  if (!vc) {
    return GW_ERR_NOMEM;
  }
  xmlSchemaSetValidStructuredErrors(vc, schema_error, s);
  r = elem ? xmlSchemaValidateOneElement(vc, elem)
           : xmlSchemaValidateDoc(vc, doc);
  xmlSchemaFreeValidCtxt(vc);
  if (r < 0) {
    return GW_ERR_NOMEM;
  }
  return r == 0 ? GW_OK : GW_ERR_INVALID;
}

int mss_soap_schema_validate(mss_soap_schema *s, const char *xml, size_t n,
                             char *err, size_t errcap) {
  p_doc d;
  mss_fault f;
  int rc;

  s->err = err;
  s->errcap = errcap;
  s->nerr = 0;
  if (err && errcap) {
    err[0] = '\0';
  }
  rc = p_load(xml, n, &d, &f);
  if (rc != GW_OK) {
    if (err && errcap) {
      snprintf(err, errcap, "%s", f.detail);
    }
    return rc == GW_ERR_NOMEM ? rc : GW_ERR_INVALID;
  }
  rc = validate_with(s, s->env, d.doc, NULL);
  if (rc == GW_OK && d.msg) {
    rc = validate_with(s, s->mss, d.doc, d.msg);
  }
  p_free(&d);
  s->err = NULL;
  return rc;
}
