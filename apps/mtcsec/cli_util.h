/*
 * Helpers shared by the administration subcommands (cmd_*.c): opening the
 * state directory (config, KEK, crypto provider, SQLite store), messages,
 * option errors, argument parsing (IDs, targets, dates), audit entries and
 * X.509 issuance for `init`, `hp init`, `ue add` and `ggsn add`.
 *
 * Every function that can fail returns one of the CLI_* exit codes of cli.h
 * after printing a message that says what to do, unless its comment says
 * otherwise.
 */
#ifndef MTCSEC_CLI_UTIL_H
#define MTCSEC_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/store_sqlite.h>

#include "app.h"

#define CLI_PATH_MAX 4096

/* ------------------------------------------------------------ messages */

/** Prints "mtcsec CMD: message" and a newline on stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

/** Nonzero if s is -h or --help. */
int cli_is_help(const char *s);

/**
 * Reports the option getopt_long just refused (call on '?' or ':' with
 * opterr = 0) and returns CLI_USAGE.
 */
int cli_bad_option(const char *cmd, char **argv, int ch);

/** Prints "usage" (a usage line) and a pointer to --help; returns
 *  CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *why);

/** Maps an mtcsec_err of the store to an exit code (0 stays 0). */
int cli_exit_for(int err);

/* ------------------------------------------------------------- parsing */

/** Parses a 16-hex-digit ID; on error prints what is wrong (what = "UEID",
 *  ...) and returns CLI_USAGE. */
int cli_parse_id(const char *cmd, const char *what, const char *s,
                 uint8_t id[MTCSEC_ID_LEN]);

/**
 * Parses DEVICE (16 hex digits) or @GROUP.  Sets *is_group; fills dev or
 * points *group into s.  CLI_OK or CLI_USAGE.
 */
int cli_parse_target(const char *cmd, const char *s, uint8_t dev[MTCSEC_ID_LEN],
                     const char **group, int *is_group);

/**
 * Parses a date: unix seconds ("1700000000"), "YYYY-MM-DD" (00:00:00 UTC)
 * or "YYYY-MM-DDTHH:MM:SSZ".  0 or -1.
 */
int cli_parse_date(const char *s, int64_t *out);

/** Formats unix seconds as "YYYY-MM-DDTHH:MM:SSZ" into out (21 bytes). */
char *cli_format_date(char out[21], int64_t t);

/** Joins dir and name into out; 0, or -1 if it does not fit. */
int cli_join(char *out, size_t outlen, const char *dir, const char *name);

/** mkdir -p of one level: creates path with mode unless it is a directory
 *  already.  0 or -1 (errno set). */
int cli_mkdir(const char *path, unsigned mode);

/** The Unix user name of the effective uid (or "uid=N"), static storage. */
const char *cli_who(void);

/* ------------------------------------------------------- the state dir */

enum {
  CLI_ENV_READONLY = 1 << 0, /* listings: open the database read-only */
  CLI_ENV_NOSTORE = 1 << 1   /* config and crypto only */
};

/** An opened state directory. */
typedef struct cli_env {
  const char *cmd; /* "device add", for messages */
  char dir[CLI_PATH_MAX];
  char conf_path[CLI_PATH_MAX];
  char db_path[CLI_PATH_MAX];
  char kek_path[CLI_PATH_MAX];
  char ca_path[CLI_PATH_MAX];
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  mtcsec_crypto crypto;
  int have_crypto;
  mtcsec_sqlite *st;
} cli_env;

/**
 * Opens the state directory cli_dir(): reads mtcsd.conf (unknown keys and
 * a bad mtcs_id are CLI_CONFIG), creates the OpenSSL provider, loads the
 * KEK (CLI_CONFIG with "chmod 600" advice when it is group- or
 * world-accessible) and opens the database.  On error everything opened so
 * far is released.
 */
int cli_env_open(cli_env *e, const char *cmd, int flags);
void cli_env_close(cli_env *e);

/** Joins the state directory and name into out (CLI_OK or CLI_INTERNAL). */
int cli_env_path(const cli_env *e, char *out, size_t outlen, const char *name);

/**
 * Loads and checks a KEK file: refuses group/world access with advice to
 * chmod 600.  CLI_OK or CLI_CONFIG (missing, unreadable, bad content).
 */
int cli_load_kek(const char *cmd, const char *path,
                 uint8_t kek[MTCSEC_KEK_LEN]);

/** Writes an audit entry as cli_who(); on failure warns (the action is
 *  done) and returns CLI_INTERNAL. */
int cli_audit(cli_env *e, const char *action, const uint8_t *subject_id,
              const char *subject, const char *detail);

/** Fills id with random bytes from the provider; CLI_OK or CLI_INTERNAL. */
int cli_random_id(cli_env *e, uint8_t id[MTCSEC_ID_LEN]);

/* ---------------------------------------------------------- mtcsd.conf */

/* The keys of mtcsd.conf are app_mtcsd_keys[] (apps/common/app.h). */

/* ---------------------------------------------------------------- X.509 */

/** A certificate to issue. */
typedef struct cli_cert_spec {
  const char *cn;
  int days;
  int is_ca;            /* CA:TRUE, keyCertSign + cRLSign */
  const char *eku;      /* "serverAuth", "clientAuth" or NULL */
  const char *san;      /* "DNS:localhost,IP:127.0.0.1" or NULL */
  X509 *issuer;         /* NULL: self-signed */
  EVP_PKEY *issuer_key; /* NULL: self-signed */
} cli_cert_spec;

/**
 * Generates an ECDSA P-256 key and a certificate for it (serial from the
 * provider, signed with SHA-256).  On success *pkey and *pcert are owned
 * by the caller.  CLI_OK or CLI_INTERNAL.
 */
int cli_issue_cert(cli_env *e, const cli_cert_spec *spec, EVP_PKEY **pkey,
                   X509 **pcert);

/** Writes a certificate (PEM, mode 0644) or a private key (PKCS#8 PEM,
 *  mode 0600) atomically.  CLI_OK or CLI_INTERNAL. */
int cli_write_cert(const char *cmd, const char *path, X509 *cert);
int cli_write_key(const char *cmd, const char *path, EVP_PKEY *key);

/**
 * The subjectAltName of a server certificate for a listening address
 * HOST:PORT, [IPv6]:PORT or :PORT: the loopback names, plus the host when
 * it names one (an IP address or a DNS name, not a wildcard).  strict
 * (`hp init`) refuses a bare IPv6 host (no brackets) and the wildcard "*",
 * which `init` takes.  CLI_OK, or CLI_USAGE with no message.
 */
int cli_listen_san(const char *addr, int strict, char *out, size_t outlen);

/** Reads a PEM certificate / private key.  CLI_OK, CLI_NOTFOUND or
 *  CLI_CONFIG. */
int cli_read_cert(const char *cmd, const char *path, X509 **cert);
int cli_read_key(const char *cmd, const char *path, EVP_PKEY **key);

/**
 * Reads the state directory's CA (ca.pem and ca.key) and checks that the
 * key belongs to the certificate.  On success *ca and *ca_key are owned by
 * the caller; on error both are NULL.  CLI_OK, CLI_NOTFOUND (no CA) or
 * CLI_CONFIG.
 */
int cli_load_ca(cli_env *e, X509 **ca, EVP_PKEY **ca_key);

/**
 * cli_issue_cert, then writes the key and the certificate to key_name and
 * cert_name in the state directory.  *pkey and *pcert are owned by the
 * caller even on error (NULL when not issued).
 */
int cli_issue_pair(cli_env *e, const cli_cert_spec *spec, const char *key_name,
                   const char *cert_name, EVP_PKEY **pkey, X509 **pcert);

/** A kind of client that `cli_add_client` issues certificates for. */
typedef struct cli_client_kind {
  const char *cmd;     /* "ue add", for messages and the audit entry */
  const char *usage;   /* the usage line */
  const char *id_name; /* the ID in messages about argv: "UEID" */
  const char *subdir;  /* where the files go: "ues" */
  const char *who;     /* the ID's owner in messages: "UE" */
  int days;            /* validity */
  void (*help)(FILE *f);
  /* NULL, or called once the files are written (for a hint on stderr) */
  void (*issued)(const cli_env *e, const uint8_t id[MTCSEC_ID_LEN]);
} cli_client_kind;

/**
 * The whole of `ue add [ID]` and `ggsn add [ID]`: parses argv (argv[0] is
 * the verb; -h/--help prints k->help), opens the state directory and issues
 * SUBDIR/ID.pem and SUBDIR/ID.key (mode 0600), an ECDSA P-256 clientAuth
 * certificate for k->days, signed by the CA, whose commonName is the ID
 * as 16 lowercase hex digits.  A given ID must not have a certificate yet
 * (CLI_FAILED); without one a random free ID is drawn.  Writes an audit
 * entry and prints both paths on stdout.
 */
int cli_add_client(int argc, char **argv, const cli_client_kind *k);

#endif /* MTCSEC_CLI_UTIL_H */
