/* mss_soap.h — ETSI TS 102 204 messages as SOAP 1.2 documents (libxml2).
 *
 * Builders render the structs of mss.h into a complete SOAP 1.2 envelope in
 * the shape of the FiCom guideline's examples:
 *
 *   <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">
 *    <env:Body>
 *     <MSS_Signature>                                   (no namespace)
 *      <mss:MSS_SignatureReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"
 *                            MajorVersion="1" MinorVersion="1" ...>
 *       <mss:AP_Info .../> <mss:MSSP_Info>...</mss:MSSP_Info> ...
 *
 * Wrappers: requests MSS_Signature / MSS_StatusQuery / MSS_Receipt, responses
 * MSS_SignatureResponse / MSS_StatusQueryResponse / MSS_ReceiptResponse. The
 * ETSI namespace is declared on each MSS_* element with the prefix "mss".
 * Every response is written with AP_PWD="" whatever the struct holds.
 * Binary values are base64. A PKCS1 signature goes as
 * <mss:MSS_Signature><fi:PKCS1 xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#">
 * <fi:SignatureValue>..</fi:SignatureValue><fi:X509Certificate>..
 * </fi:X509Certificate></fi:PKCS1></mss:MSS_Signature> — the FiCom element
 * the schema admits through its wildcard, which carries the certificate.
 *
 * Parsers accept any document valid under the schemas, not only what the
 * builders write: any namespace prefixes (matching is by namespace URI), an
 * optional env:Header (ignored), the wrapper element optional and of any
 * name, unknown optional elements (AdditionalServices, StatusDetail, ...)
 * skipped. They are safe on hostile input: no network, no entity expansion,
 * a DOCTYPE is refused, input is capped at MSS_SOAP_MAX_INPUT bytes and
 * element depth at MSS_SOAP_MAX_DEPTH.
 *
 * Return codes of every parser:
 *   GW_OK            *out filled.
 *   GW_ERR_PROTO     the Body holds a SOAP Fault instead of the message; the
 *                    peer's fault is in *fault_on_error.
 *   GW_ERR_INVALID   not a valid message; *fault_on_error holds the fault our
 *                    side should answer with: Sender 108 INCOMPATIBLE_INTERFACE
 *                    (not well-formed XML, DOCTYPE, too deep, not a SOAP 1.2
 *                    envelope, no/other message in the Body, wrong namespace,
 *                    MajorVersion != 1), Sender 102 MISSING_PARAM (a required
 *                    element or attribute is absent), Sender 101 WRONG_PARAM
 *                    (a value is malformed or over its cap: bad NCName,
 *                    dateTime, integer, MessagingMode, base64), Sender 103
 *                    WRONG_DATA_LENGTH (a data element over MSS_DATA_MAX).
 *   GW_ERR_TOO_LARGE input over MSS_SOAP_MAX_INPUT; fault Sender 103.
 *   GW_ERR_NOMEM     out of memory; fault Receiver 900.
 * |fault_on_error| may be NULL. On error *out is zeroed. The detail of the
 * fault names the offending element, never echoes a password.
 *
 * Return codes of every builder: GW_OK; GW_ERR_INVALID when the struct would
 * not make a schema-valid message (a required field empty, a NCName or
 * dateTime malformed, mode unset, status code <= 0, a PKCS1 signature without
 * certificate, ...); GW_ERR_TOO_LARGE when |out| would pass its cap;
 * GW_ERR_NOMEM. The builders append to |out|; on error |out| is restored to
 * its previous length.
 *
 * Threads: call mss_soap_init() once from main before starting threads;
 * afterwards every function here may run concurrently on distinct arguments. */
#ifndef MSS_SOAP_H
#define MSS_SOAP_H

#include <stddef.h>

#include "gw_buf.h"
#include "mss.h"

#define MSS_SOAP_NS "http://www.w3.org/2003/05/soap-envelope"
#define MSS_SOAP_MAX_INPUT (256 * 1024) /* bytes */
#define MSS_SOAP_MAX_DEPTH 64           /* element nesting */
/* A content type for what the builders write. */
#define MSS_SOAP_CONTENT_TYPE "application/soap+xml; charset=utf-8"

/* Initialises libxml2 (xmlInitParser). Idempotent; call once from the main
 * thread before any other thread uses libxml2. */
void mss_soap_init(void);

/* Which message the Body of |xml| holds: MSS_MSG_SIGNATURE_REQ ... or
 * MSS_MSG_FAULT. Same safety rules and errors as the parsers (no fault is
 * filled: GW_ERR_INVALID, GW_ERR_TOO_LARGE, GW_ERR_NOMEM). */
int mss_soap_peek(const char *xml, size_t n, mss_msg *type);

/* MSS_Signature (wrapper MSS_Signature / MSS_SignatureResponse). */
int mss_soap_build_signature_req(const mss_signature_req *req, gw_buf *out);
int mss_soap_parse_signature_req(const char *xml, size_t n,
                                 mss_signature_req *out,
                                 mss_fault *fault_on_error);
int mss_soap_build_signature_resp(const mss_signature_resp *resp, gw_buf *out);
int mss_soap_parse_signature_resp(const char *xml, size_t n,
                                  mss_signature_resp *out,
                                  mss_fault *fault_on_error);

/* MSS_StatusQuery (wrapper MSS_StatusQuery / MSS_StatusQueryResponse). */
int mss_soap_build_status_req(const mss_status_req *req, gw_buf *out);
int mss_soap_parse_status_req(const char *xml, size_t n, mss_status_req *out,
                              mss_fault *fault_on_error);
int mss_soap_build_status_resp(const mss_status_resp *resp, gw_buf *out);
int mss_soap_parse_status_resp(const char *xml, size_t n, mss_status_resp *out,
                               mss_fault *fault_on_error);

/* MSS_Receipt (wrapper MSS_Receipt / MSS_ReceiptResponse). */
int mss_soap_build_receipt_req(const mss_receipt_req *req, gw_buf *out);
int mss_soap_parse_receipt_req(const char *xml, size_t n, mss_receipt_req *out,
                               mss_fault *fault_on_error);
int mss_soap_build_receipt_resp(const mss_receipt_resp *resp, gw_buf *out);
int mss_soap_parse_receipt_resp(const char *xml, size_t n,
                                mss_receipt_resp *out,
                                mss_fault *fault_on_error);

/* SOAP 1.2 Fault:
 *   <env:Fault><env:Code><env:Value>env:Sender</env:Value>
 *     <env:Subcode><env:Value
 * xmlns:mss="...">mss:_101</env:Value></env:Subcode>
 *   </env:Code><env:Reason><env:Text xml:lang="en">WRONG_PARAM</env:Text>
 *   </env:Reason><env:Detail>text</env:Detail></env:Fault>
 * (Detail only when f->detail is not empty; when f->reason is empty the
 * Reason is mss_status_name(f->subcode).) The HTTP status is the HTTP layer's
 * business (SOAP 1.2 HTTP binding: 400 for env:Sender, 500 for env:Receiver).
 * Builder errors as above (GW_ERR_INVALID for subcode <= 0 or a code other
 * than Sender/Receiver).
 *
 * mss_soap_parse_fault fills *out from a fault document: code from the
 * Code/Value QName (any prefix bound to the SOAP namespace), subcode from the
 * first Subcode/Value whose local part is "_NNN" (any prefix: FiCom uses
 * fi:_208), reason from the first Reason/Text, detail from the text content
 * of Detail (cut at MSS_FAULT_DETAIL_MAX). Returns GW_OK, GW_ERR_INVALID when
 * the Body holds no Fault or the Fault has no Code/Value, GW_ERR_TOO_LARGE,
 * GW_ERR_NOMEM. A Fault without a numeric subcode gets subcode 0. */
int mss_soap_build_fault(const mss_fault *f, gw_buf *out);
int mss_soap_parse_fault(const char *xml, size_t n, mss_fault *out);

/* Schema validation, for tests and the mock's self-checks: loads
 * soap-envelope.xsd and MSS-plus.xsd from |schema_dir| (the directory
 * ../shared/specs/etsi-ts-102-204 from the repository root) without network
 * access. Returns GW_OK, GW_ERR_NOT_FOUND (a file is missing), GW_ERR_CONFIG
 * (a schema does not compile), GW_ERR_NOMEM. Compiling takes tens of ms: keep
 * one per process. Not thread-safe: it swaps libxml2's process-wide entity
 * loader and error handler while it runs — call it at start-up. */
typedef struct mss_soap_schema mss_soap_schema;
int mss_soap_schema_new(mss_soap_schema **out, const char *schema_dir);
void mss_soap_schema_del(mss_soap_schema *s);

/* Validates |xml| the way ../shared/README.md says: the envelope against
 * soap-envelope.xsd, and the MSS_* element taken out of the Body (under its
 * wrapper) against MSS-plus.xsd; a Fault needs only the envelope. Writes the
 * first error ("line N: message") into |err| (cap |errcap|, may be 0).
 * Returns GW_OK or GW_ERR_INVALID (also for unparsable input, DOCTYPE, over
 * MSS_SOAP_MAX_INPUT), GW_ERR_NOMEM. Not thread-safe on one |s|. */
int mss_soap_schema_validate(mss_soap_schema *s, const char *xml, size_t n,
                             char *err, size_t errcap);

#endif
