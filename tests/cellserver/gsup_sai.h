/*
 * The SGSN side of one GSUP Send Auth Info exchange with mtchpd over IPA/TCP
 * (docs/CELLULAR-HOME-PROXY.md, "GSUP side"), through libosmocore's GSUP
 * codec: just enough for a test to obtain authentication vectors.  Every
 * call is blocking with 5 s socket timeouts.
 */
#ifndef MTCSEC_TEST_GSUP_SAI_H
#define MTCSEC_TEST_GSUP_SAI_H

#include <osmocom/gsm/gsup.h>

/**
 * Connects to 127.0.0.1:port as an SGSN: answers the proxy's ID_GET with a
 * unit name, expects ID_ACK.  Returns the socket or -1.
 */
int gsup_sai_connect(int port);

/**
 * Sends Send Auth Info for imsi and decodes the answer into res (which
 * points into raw, rawlen bytes).  Returns 0 (res->message_type tells a
 * result from an error) or -1 (I/O or decoding failed).
 */
int gsup_sai(int fd, const char *imsi, struct osmo_gsup_message *res,
             uint8_t *raw, size_t rawlen);

#endif /* MTCSEC_TEST_GSUP_SAI_H */
