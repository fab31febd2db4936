/*
 * The agents of cellular mode (docs/CELLULAR-SYSTEM.md, docs/AGENTS.md):
 * `mtcsec ms run` (agent_ms.c), `mtcsec sgsn run` (agent_sgsn.c) and
 * `mtcsec ggsn run` (agent_ggsn.c), plus what they share (agent_cell.c):
 * the trace line, randomness, socket names and small parsers.  The wire
 * formats are apps/common/cellsim.h and apps/common/gi.h.
 */
#ifndef MTCSEC_AGENT_CELL_H
#define MTCSEC_AGENT_CELL_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

/** Entry points, called from cmd_cell.c; argv[0] is "run". */
int agent_ms_run(int argc, char **argv);
int agent_sgsn_run(int argc, char **argv);
int agent_ggsn_run(int argc, char **argv);

/**
 * One trace line on stdout when --trace was given (agent_trace_init()):
 * elapsed ms, from -> to, message name, size, note (may be NULL).
 */
void cell_trace(const char *from, const char *to, const char *name, size_t len,
                const char *note);

/** The bound address of fd as "host:port" into out ("?" on failure). */
const char *cell_sock_name(int fd, char *out, size_t outlen);

/** A random nonzero 32-bit value from the provider; 0 on failure. */
uint32_t cell_random32(const mtcsec_crypto *crypto);

/**
 * A random nonzero 32-bit identifier (a TEID) that taken(arg, v) says is
 * free (taken returns nonzero for a value in use).  At most CELL_ID_TRIES
 * draws: returns 0 when the provider fails or keeps giving values in use,
 * so that a broken random source ends in a refusal, never in a loop.
 */
#define CELL_ID_TRIES 16
uint32_t cell_unique_id32(const mtcsec_crypto *crypto,
                          int (*taken)(void *arg, uint32_t v), void *arg);

/** "integrity" (MAC-I), "fcs" or "integrity+ciphering"... for logs. */
const char *cell_policy_name(int flags);

/**
 * Whether an MS accepts the ATTACH_ACCEPT policy flags offered by the
 * network (docs/CELLULAR-SYSTEM.md section 1): 0 when integrity_required
 * (the USIM file's provisioned policy) and the flags lack
 * CELLSIM_POLICY_INTEGRITY (a bidding-down attempt, TS 33.102 6.4.5), 1
 * otherwise.
 */
int cell_policy_acceptable(int offered, int integrity_required);

/**
 * The host part of "host:port" or "[v6]:port" into host (NUL-terminated).
 * 0, or -1 when addr has no such form or host does not fit.
 */
int cell_addr_host(const char *addr, char *host, size_t hostlen);

/**
 * Copies len bytes of text into out as printable ASCII (other bytes as
 * \xNN), NUL-terminated, truncated to fit outlen.
 */
void cell_escape(char *out, size_t outlen, const uint8_t *p, size_t len);

#endif /* MTCSEC_AGENT_CELL_H */
