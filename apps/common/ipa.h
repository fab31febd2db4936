/*
 * IPA framing as libosmo-abis, osmo-hlr and osmo-sgsn use it for GSUP over
 * TCP, shared by mtchpd (server and upstream client) and the SGSN agent
 * (client):
 *
 *     len(2, big-endian, bytes after the header) || proto(1) || payload
 *
 * For proto IPA_PROTO_OSMO the first payload byte is an extension
 * (IPA_EXT_GSUP for GSUP).  proto IPA_PROTO_CCM carries the connection
 * management messages (PING, PONG, ID_GET, ID_RESP, ID_ACK).
 *
 * ipa_decode() and ipa_encode_header() are pure (no allocation, no I/O);
 * ipa_make_id_resp() builds the identity response with libosmocore's
 * ipa_ccm_make_id_resp_from_req() (every tag the peer asked for: osmo-hlr
 * refuses a response without the tags it asked for), so a program that
 * calls it links libosmogsm.  Functions return a byte count or a negative
 * mtcsec_err.
 */
#ifndef MTCSEC_IPA_H
#define MTCSEC_IPA_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>

#define IPA_HDR_LEN 3
/** Largest value of the length field. */
#define IPA_MAX_PAYLOAD 65535u

/** Protocols (libosmocore's IPAC_PROTO_IPACCESS, IPAC_PROTO_OSMO). */
#define IPA_PROTO_CCM 0xfe
#define IPA_PROTO_OSMO 0xee
/** Extension of GSUP inside IPA_PROTO_OSMO (IPAC_PROTO_EXT_GSUP). */
#define IPA_EXT_GSUP 0x05

/** CCM message types (IPAC_MSGT_*). */
enum {
  IPA_MSGT_PING = 0x00,
  IPA_MSGT_PONG = 0x01,
  IPA_MSGT_ID_GET = 0x04,
  IPA_MSGT_ID_RESP = 0x05,
  IPA_MSGT_ID_ACK = 0x06
};
/** Identity tag of the unit name (IPAC_IDTAG_UNITNAME). */
#define IPA_IDTAG_UNITNAME 0x01

/** One message; data points into the caller's buffer. */
typedef struct ipa_msg {
  uint8_t proto;
  int ext; /* the extension byte for IPA_PROTO_OSMO, else -1 */
  const uint8_t *data;
  size_t len;
} ipa_msg;

/**
 * Looks at the bytes received so far: > 0 a message of that many bytes
 * starts at in (*m describes it, data after the extension byte); 0 need
 * more bytes (*m not written; a caller never buffers more than
 * IPA_HDR_LEN + IPA_MAX_PAYLOAD); MTCSEC_ERR_MALFORMED an IPA_PROTO_OSMO
 * message without its extension byte; MTCSEC_ERR_INVALID_ARGUMENT for NULL.
 */
mtcsec_ssize ipa_decode(ipa_msg *m, const uint8_t *in, size_t inlen);

/**
 * Writes the header of a message with datalen payload bytes (plus the
 * extension byte when ext >= 0) at out.  Returns the header length (3, or
 * 4 with the extension), MTCSEC_ERR_INVALID_ARGUMENT (payload too long) or
 * MTCSEC_ERR_NOBUF.
 */
mtcsec_ssize ipa_encode_header(uint8_t proto, int ext, size_t datalen,
                               uint8_t *out, size_t outlen);

/**
 * The unit name of an ID_RESP payload (type byte first) into out,
 * printable ASCII only (others become '_'); out is "" when there is none.
 */
void ipa_id_resp_unit_name(const uint8_t *p, size_t len, char *out,
                           size_t outlen);

/**
 * The ID_RESP payload (type byte first, without the IPA header) answering
 * the ID_GET payload idget (type byte first), with unit name and serial
 * number unit_name and the other tags empty, as libosmocore builds it.
 * Returns its length, MTCSEC_ERR_MALFORMED (libosmocore refused the
 * request), MTCSEC_ERR_NOMEM or MTCSEC_ERR_NOBUF.
 */
mtcsec_ssize ipa_make_id_resp(const uint8_t *idget, size_t len,
                              const char *unit_name, uint8_t *out,
                              size_t outlen);

#endif /* MTCSEC_IPA_H */
