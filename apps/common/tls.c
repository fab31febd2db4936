/*
 * TLS 1.3 contexts with mutual X.509 authentication, and the UE identity of
 * a peer certificate (PROTOCOL.md section 1; apps/common/app.h).
 */
#define _GNU_SOURCE
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "app.h"

/*
 * "file: what: reason" from the OpenSSL error queue (which it empties).  The
 * first error is the root cause ("No such file or directory"), the last the
 * context ("PEM lib"); both are given when they differ.
 */
static void tls_err(char *err, size_t errlen, const char *what,
                    const char *file) {
  const char *first = ERR_reason_error_string(ERR_peek_error());
  const char *last = ERR_reason_error_string(ERR_peek_last_error());
  char reason[256];

  if (first == NULL) {
    first = last;
  }
  if (first == NULL) {
    snprintf(reason, sizeof(reason), "unknown error");
  } else if (last != NULL && strcmp(first, last) != 0) {
    snprintf(reason, sizeof(reason), "%s (%s)", first, last);
  } else {
    snprintf(reason, sizeof(reason), "%s", first);
  }
  ERR_clear_error();
  if (err != NULL && errlen > 0) {
    if (file != NULL) {
      snprintf(err, errlen, "%s: %s: %s", file, what, reason);
    } else {
      snprintf(err, errlen, "%s: %s", what, reason);
    }
  }
}

/* Settings common to both ends: TLS 1.3 only, own certificate and key, the
 * CA to verify the peer with, no session resumption. */
static SSL_CTX *tls_ctx(const SSL_METHOD *method, const char *cert_file,
                        const char *key_file, const char *ca_file, char *err,
                        size_t errlen) {
  SSL_CTX *ctx;

  ERR_clear_error();
  if (cert_file == NULL || key_file == NULL || ca_file == NULL) {
    snprintf(err, errlen, "missing certificate, key or CA file name");
    return NULL;
  }
  ctx = SSL_CTX_new(method);
  if (ctx == NULL) {
    tls_err(err, errlen, "cannot create a TLS context", NULL);
    return NULL;
  }
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    tls_err(err, errlen, "cannot restrict the context to TLS 1.3", NULL);
    goto fail;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    tls_err(err, errlen, "cannot load the certificate", cert_file);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    tls_err(err, errlen, "cannot load the private key", key_file);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls_err(err, errlen, "the private key does not match the certificate",
            key_file);
    goto fail;
  }
  if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    tls_err(err, errlen, "cannot load the CA certificate", ca_file);
    goto fail;
  }
  /* Every connection authenticates fully (no resumption): a revoked or
   * expired certificate is noticed at the next connection. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  return ctx;

fail:
  SSL_CTX_free(ctx);
  return NULL;
}

SSL_CTX *app_tls_server_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, char *err, size_t errlen) {
  SSL_CTX *ctx =
    tls_ctx(TLS_server_method(), cert_file, key_file, ca_file, err, errlen);
  STACK_OF(X509_NAME) * names;

  if (ctx == NULL) {
    return NULL;
  }
  names = SSL_load_client_CA_file(ca_file);
  if (names == NULL) {
    tls_err(err, errlen, "cannot read the CA names", ca_file);
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  SSL_CTX_set_num_tickets(ctx, 0);
  return ctx;
}

SSL_CTX *app_tls_client_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, char *err, size_t errlen) {
  SSL_CTX *ctx =
    tls_ctx(TLS_client_method(), cert_file, key_file, ca_file, err, errlen);
  if (ctx == NULL) {
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  return ctx;
}

int app_tls_peer_ueid(SSL *ssl, uint8_t ueid[MTCSEC_ID_LEN]) {
  X509 *cert;
  X509_NAME *name;
  const ASN1_STRING *data;
  unsigned char *utf8 = NULL;
  char text[2 * MTCSEC_ID_LEN + 1];
  int idx, n, rv = -1;

  if (ssl == NULL || ueid == NULL) {
    return -1;
  }
  cert = SSL_get0_peer_certificate(ssl);
  if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
    return -1;
  }
  name = X509_get_subject_name(cert);
  if (name == NULL) {
    return -1;
  }
  idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) {
    return -1; /* no commonName */
  }
  if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
    return -1; /* more than one */
  }
  data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  if (data == NULL) {
    return -1;
  }
  /* Any string type (PrintableString, UTF8String, BMPString...) as UTF-8;
   * exactly 16 hex digits, so an embedded NUL or a longer value fails. */
  n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n == 2 * MTCSEC_ID_LEN) {
    memcpy(text, utf8, (size_t)n);
    text[n] = '\0';
    if (strlen(text) == (size_t)n && app_parse_id(text, ueid) == 0) {
      rv = 0;
    }
  }
  OPENSSL_free(utf8);
  return rv;
}
