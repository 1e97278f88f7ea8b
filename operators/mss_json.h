/* mss_json.h — ETSI TS 102 204 messages in the JSON rendering used in the
 * field (Swisscom Mobile ID's REST/JSON; REFERENCE §1b), on the structs of
 * mss.h. The Ooredoo mock speaks it, and so does the gateway's Ooredoo
 * adapter.
 *
 * The rendering:
 *   {"MSS_SignatureReq": {
 *      "MajorVersion": "1", "MinorVersion": "2",
 *      "MessagingMode": "asynchServerServer", "TimeOut": "80",
 *      "AP_Info": {"AP_ID": "http://ap", "AP_PWD": "pw",
 *                  "AP_TransID": "T1", "Instant": "2026-01-01T00:00:00Z",
 *                  "AP_URL": "..." (optional)},
 *      "MSSP_Info": {"MSSP_ID": {"URI": "http://mssp"},
 *                    "Instant": "..." (optional)},
 *      "MobileUser": {"MSISDN": "+96895000001"},
 *      "DataToBeSigned": {"MimeType": "application/x-sha256",
 *                         "Encoding": "base64", "Data": "..."},
 *      "DataToBeDisplayed": {"MimeType": "text/plain", "Encoding": "UTF-8",
 *                            "Data": "..."},
 *      "SignatureProfile": "http://...",
 *      "MSS_Format": "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1",
 *      "AdditionalServices": [{"Description": "http://..."}] (ignored)}}
 *   responses: "MSSP_TransID": "h44okl", "Status": {"StatusCode": {"Value":
 *   "500"}, "StatusMessage": "SIGNATURE"}, and the signature as
 *   "MSS_Signature": {"Base64Signature": "..."} (PKCS7) or
 *   "MSS_Signature": {"PKCS1": {"SignatureValue": "...",
 *                               "X509Certificate": "..."}} (FiCom PKCS1);
 *   MSS_StatusReq / MSS_StatusResp, MSS_ReceiptReq ("Message": {...data},
 *   optional "Status") / MSS_ReceiptResp likewise;
 *   {"Fault": {"Code": {"Value": "Sender", "ValueNs": MSS_SOAP_NS,
 *              "SubCode": {"Value": "_101", "ValueNs": MSS_NS}},
 *              "Reason": "WRONG_PARAM", "Detail": "..."}}.
 * The document is one object with exactly one member, named after the
 * message. XML attributes are JSON strings ("MajorVersion": "1",
 * "TimeOut": "80", "Value": "500"). Builders write responses with
 * "AP_PWD": "" whatever the struct holds; they write members in the order
 * above and omit absent optional ones ("MSSP_ID": {} when the MSSP_ID is
 * blank, "MobileUser": {} in a response without MSISDN). A version of 0 in
 * the struct is written as the default: MajorVersion "1", MinorVersion
 * MSS_JSON_MINOR_VERSION.
 *
 * Parsers are strict on types and lenient on extras: a member of the wrong
 * JSON type (a number where a string is due, an array where an object is,
 * null) is 101 WRONG_PARAM naming the member; unknown members are ignored;
 * duplicate keys, invalid UTF-8, a NUL inside a string, input over
 * MSS_JSON_MAX_INPUT or nested deeper than MSS_JSON_MAX_DEPTH are refused.
 *
 * Return codes of every parser (as mss_soap.h):
 *   GW_OK            *out filled.
 *   GW_ERR_PROTO     the document is a Fault; the peer's fault is in
 *                    *fault_on_error.
 *   GW_ERR_INVALID   not a valid message; *fault_on_error holds the fault
 *                    our side should answer with: Sender 108
 *                    INCOMPATIBLE_INTERFACE (not JSON, not an object, not
 *                    exactly one root member, another message than the one
 *                    expected, MajorVersion != "1"), Sender 102
 *                    MISSING_PARAM (a required member absent; AP_ID or a
 *                    request's MSISDN empty), Sender 101
 *                    WRONG_PARAM (wrong type, malformed or over its cap:
 *                    NCName, dateTime, integer, MessagingMode, base64),
 *                    Sender 103 WRONG_DATA_LENGTH (a data element over
 *                    MSS_DATA_MAX).
 *   GW_ERR_TOO_LARGE input over MSS_JSON_MAX_INPUT; fault Sender 103.
 *   GW_ERR_NOMEM     out of memory; fault Receiver 900.
 * |fault_on_error| may be NULL. On error *out is zeroed. A fault's detail
 * names the offending member ("MSS_SignatureReq.AP_Info.AP_TransID"),
 * never echoes a password.
 *
 * Builders: GW_OK; GW_ERR_INVALID when the struct would not make a valid
 * message (same rules as mss_soap.h); GW_ERR_TOO_LARGE when |out| would
 * pass its cap; GW_ERR_NOMEM. They append compact JSON to |out|; on error
 * |out| is restored to its previous length.
 *
 * Thread-safe on distinct arguments (jansson). */
#ifndef MSS_JSON_H
#define MSS_JSON_H

#include <stddef.h>

#include "gw_buf.h"
#include "mss.h"

#define MSS_JSON_MAX_INPUT (256 * 1024) /* bytes */
#define MSS_JSON_MAX_DEPTH 16           /* object/array nesting */
#define MSS_JSON_CONTENT_TYPE "application/json; charset=utf-8"
/* The MinorVersion JSON requests carry (REFERENCE §1b). */
#define MSS_JSON_MINOR_VERSION 2

/* Which message |json| holds (the root member's name): MSS_MSG_* or
 * MSS_MSG_FAULT; MSS_MSG_NONE for an unknown name (still GW_OK). Returns
 * GW_OK, GW_ERR_INVALID (not JSON, not an object with exactly one member,
 * or refused as the parsers refuse it: duplicate keys, NUL, too deep),
 * GW_ERR_TOO_LARGE, GW_ERR_NOMEM. */
int mss_json_peek(const char *json, size_t n, mss_msg *type);

int mss_json_build_signature_req(const mss_signature_req *req, gw_buf *out);
int mss_json_parse_signature_req(const char *json, size_t n,
                                 mss_signature_req *out,
                                 mss_fault *fault_on_error);
int mss_json_build_signature_resp(const mss_signature_resp *resp, gw_buf *out);
int mss_json_parse_signature_resp(const char *json, size_t n,
                                  mss_signature_resp *out,
                                  mss_fault *fault_on_error);

int mss_json_build_status_req(const mss_status_req *req, gw_buf *out);
int mss_json_parse_status_req(const char *json, size_t n, mss_status_req *out,
                              mss_fault *fault_on_error);
int mss_json_build_status_resp(const mss_status_resp *resp, gw_buf *out);
int mss_json_parse_status_resp(const char *json, size_t n, mss_status_resp *out,
                               mss_fault *fault_on_error);

int mss_json_build_receipt_req(const mss_receipt_req *req, gw_buf *out);
int mss_json_parse_receipt_req(const char *json, size_t n, mss_receipt_req *out,
                               mss_fault *fault_on_error);
int mss_json_build_receipt_resp(const mss_receipt_resp *resp, gw_buf *out);
int mss_json_parse_receipt_resp(const char *json, size_t n,
                                mss_receipt_resp *out,
                                mss_fault *fault_on_error);

/* {"Fault": ...} as above ("Detail" only when f->detail is not empty;
 * "Reason" mss_status_name(subcode) when f->reason is empty).
 * mss_json_parse_fault: code from Code.Value ("Sender"/"Receiver", also
 * "env:Sender"/"soap:Receiver"), subcode from SubCode.Value (also
 * "Subcode") "_NNN" (any prefix before the underscore), reason and detail
 * when they are strings (cut at MSS_FAULT_DETAIL_MAX on a UTF-8 boundary).
 * Returns GW_OK, GW_ERR_INVALID (not a Fault document, no Code.Value),
 * GW_ERR_TOO_LARGE, GW_ERR_NOMEM; subcode 0 when there is no numeric one. */
int mss_json_build_fault(const mss_fault *f, gw_buf *out);
int mss_json_parse_fault(const char *json, size_t n, mss_fault *out);

#endif
