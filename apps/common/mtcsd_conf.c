/*
 * The keys of mtcsd.conf, their defaults and help: the one table that the
 * daemon (which applies the defaults and parses the values) and the admin
 * tool (which writes the file at `mtcsec init` and checks it) share.
 */
#include <string.h>

#include "app.h"

const app_conf_key app_mtcsd_keys[] = {
  {"mtcs_id", NULL, "this server's MTCsID, 16 hex digits"},
  {"listen", "127.0.0.1:7788", "TLS 1.3 server link (UEs only)"},
  {"metrics_listen", "127.0.0.1:9788",
   "Prometheus text endpoint (/metrics); empty disables"},
  {"database", "mtcsd.db", "SQLite database"},
  {"kek_file", "kek", "key-encryption key; refused if group/world accessible"},
  {"ca", "ca.pem", "CA that client certificates must chain to"},
  {"crl", "", "PEM CRL of revoked client certificates; empty: none"},
  {"cert", "server.pem", "the server's certificate"},
  {"key", "server.key", "the server's private key"},
  {"workers", "2", "event-loop threads"},
  {"log_level", "info", "error, warn, info, debug"},
  {"dup_cache_size", "4096", "answered M2s kept 60 s for identical retries"},
  {"rate_per_minute", "0",
   "keys per device per minute before RATE_LIMITED; 0 = no limit"},
  {"max_connections", "4096", "TLS connections at once"},
  {"idle_timeout", "60",
   "seconds a connection may stall (handshake or partial frame)"},
  {"commit_max_batch", "256", "exchanges per durable transaction"},
  {"commit_max_delay_ms", "2", "longest wait to fill a batch"},
  {"shutdown_timeout", "30",
   "seconds SIGTERM waits for in-flight exchanges before closing"},
  {"cellular_listen", "",
   "TLS 1.3 Gi link for GGSNs (cellular mode); empty disables"},
  {"allowed_ggsns", "", "GGSN IDs (16 hex digits) allowed on cellular_listen"},
  {"home_proxy", "127.0.0.1:4443", "mtchpd's K_UP service, host:port"},
  {"home_proxy_ca", "ca.pem", "CA that mtchpd's certificate must chain to"},
  {"home_proxy_cert", "mtcs-client.pem",
   "client certificate for mtchpd (CN = mtcs_id)"},
  {"home_proxy_key", "mtcs-client.key", "its private key"},
  {"cellular_max_contexts", "65536", "PDP contexts with live keys at once"},
  {"cellular_key_lifetime", "86400", "seconds a context's payload keys live"},
  {"cellular_db", "cellular.db",
   "SQLite file of the (IMSI, RAND) pairs given payload keys"},
  {NULL, NULL, NULL}};

const app_conf_key *app_mtcsd_key(const char *key) {
  size_t i;
  for (i = 0; app_mtcsd_keys[i].key != NULL; i++) {
    if (strcmp(key, app_mtcsd_keys[i].key) == 0) {
      return &app_mtcsd_keys[i];
    }
  }
  return NULL;
}
