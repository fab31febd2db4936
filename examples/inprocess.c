/*
 * mtcsec-example: a full key establishment in one process, direct and then
 * through a relay, printing every message with its size and link.
 *
 * The four roles are wired by hand: a device (MTCd), a UE, a relay (GW) and
 * the server core (MTCs) over the in-memory store.  No sockets and no
 * threads: each step hands the bytes one role wrote to the next role.  Once
 * the UE holds the DMKey, device and UE talk over the direct channel and the
 * server is not involved any more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/device.h>
#include <mtcsec/gateway.h>
#include <mtcsec/phone.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>

static const uint8_t DEV_ID[8] = {0x02, 0, 0, 0, 0, 0, 0, 0xa1};
static const uint8_t SRV_ID[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t UE_ID[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t GW_ID[8] = {0x67, 0, 0, 0, 0, 0, 0, 0x01};

static const char *msg_name(const uint8_t *b, size_t len) {
  static const char *names[] = {"M0", "M1",  "M2",     "M3",
                                "M4", "ERR", "record", "revocation"};
  int t = mtcsec_msg_type(b, len);
  return t < 0 ? "?" : names[t & 0x0f];
}

/* One line of the trace: who sent what to whom, and how big it is. */
static void show(const char *from, const char *to, const uint8_t *b, size_t len,
                 int framed) {
  const uint8_t *m = framed ? b + 2 : b; /* frame type after len(2) */
  printf("  %-5s -> %-5s  %-10s %4zu bytes%s\n", from, to,
         msg_name(m, len - (framed ? 2u : 0u)), len,
         framed ? "  (server link, TLS in a deployment)" : "");
}

static int fail(const char *what, long rv) {
  fprintf(stderr, "mtcsec-example: %s failed: %s\n", what,
          rv < 0 ? mtcsec_strerror((int)rv) : "unexpected result");
  exit(1);
}

#define CHECK(what, expr)                                                      \
  do {                                                                         \
    long rv_ = (long)(expr);                                                   \
    if (rv_ < 0) {                                                             \
      fail(what, rv_);                                                         \
    }                                                                          \
  } while (0)

static int persist_nonce(void *user_data, uint64_t next) {
  /* A real device writes this to flash before its M1 leaves. */
  *(uint64_t *)user_data = next;
  return 0;
}

typedef struct world {
  mtcsec_crypto crypto;
  mtcsec_store_mem *store;
  mtcsec_srv *srv;
  mtcsec_ue *ue;
  mtcsec_dev dev;
  mtcsec_dev_session dev_sessions[2]; /* the device's live DMKeys */
  mtcsec_dev_callbacks dev_cb;
  mtcsec_gw gw;
  uint64_t nonce_flash;
  size_t device_link;
} world;

/* Sends one device-link datagram; through the relay when relayed. */
static size_t link_send(world *w, int relayed, mtcsec_gw_dir dir,
                        const char *from, const char *to, uint8_t *buf,
                        size_t len) {
  uint8_t tmp[512];
  mtcsec_ssize n;
  if (!relayed) {
    show(from, to, buf, len, 0);
    w->device_link += len;
    return len;
  }
  show(from, "GW", buf, len, 0);
  w->device_link += len;
  n = mtcsec_gw_relay(&w->gw, dir, tmp, sizeof(tmp), buf, len);
  CHECK("relay", n);
  show("GW", to, tmp, (size_t)n, 0);
  w->device_link += (size_t)n;
  memcpy(buf, tmp, (size_t)n);
  return (size_t)n;
}

static void establish(world *w, int relayed, mtcsec_tstamp now) {
  uint8_t buf[512];
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_ssize n;
  size_t len;

  w->device_link = 0;
  n = mtcsec_ue_m0(w->ue, buf, sizeof(buf),
                   MTCSEC_PERM_READ | MTCSEC_PERM_ACTUATE);
  CHECK("UE M0", n);
  len =
    link_send(w, relayed, MTCSEC_GW_TO_DEVICE, "UE", "MTCd", buf, (size_t)n);
  CHECK("device reads M0", mtcsec_dev_read(&w->dev, buf, len, 1, now));

  n = mtcsec_dev_write(&w->dev, buf, sizeof(buf), &peer, now);
  CHECK("device M1", n);
  len = link_send(w, relayed, MTCSEC_GW_TO_UE, "MTCd", "UE", buf, (size_t)n);
  CHECK("UE reads M1", mtcsec_ue_read_device(w->ue, buf, len, 2, now));

  n = mtcsec_ue_write(w->ue, buf, sizeof(buf), &link, &peer, now);
  CHECK("UE M2", n);
  show("UE", "MTCs", buf, (size_t)n, 1);
  /* The daemon would take UE_ID from the UE's TLS certificate. */
  CHECK("server reads M2",
        mtcsec_srv_recv(w->srv, 1, UE_ID, buf, (size_t)n, now));
  CHECK("server commit", mtcsec_srv_commit(w->srv, now));
  n = mtcsec_srv_write(w->srv, buf, sizeof(buf), &conn);
  CHECK("server M3", n);
  show("MTCs", "UE", buf, (size_t)n, 1);
  if (buf[2] != MTCSEC_MSG_M3) {
    fprintf(stderr, "mtcsec-example: the server answered ERR %s\n",
            mtcsec_errcode_name(buf[7]));
    exit(1);
  }
  CHECK("UE reads M3", mtcsec_ue_read_server(w->ue, buf, (size_t)n, now));

  n = mtcsec_ue_write(w->ue, buf, sizeof(buf), &link, &peer, now);
  CHECK("UE M4", n);
  len =
    link_send(w, relayed, MTCSEC_GW_TO_DEVICE, "UE", "MTCd", buf, (size_t)n);
  CHECK("device reads M4", mtcsec_dev_read(&w->dev, buf, len, 1, now));
  printf("  device link carried %zu bytes for the establishment\n",
         w->device_link);
}

static void on_dev_event(void *ud, const mtcsec_dev_event *ev) {
  (void)ud;
  if (ev->type == MTCSEC_DEV_EV_ESTABLISHED) {
    printf("  MTCd: DMKey accepted, key_id %u, perms 0x%02x, lifetime %lu s\n",
           (unsigned)ev->key_id, (unsigned)ev->perms,
           (unsigned long)ev->lifetime);
  }
}

static void on_ue_event(void *ud, const mtcsec_ue_event *ev) {
  (void)ud;
  if (ev->type == MTCSEC_UE_EV_ESTABLISHED) {
    printf("  UE:   DMKey received, key_id %u\n", (unsigned)ev->key_id);
  } else if (ev->type == MTCSEC_UE_EV_ERROR) {
    printf("  UE:   server refused: %s\n", mtcsec_errcode_name(ev->errcode));
  }
}

/* Device and UE talk directly: a read request and its answer. */
static void talk(world *w, int relayed, mtcsec_tstamp now) {
  uint8_t rec[128], pt[64];
  const char req[] = "read temperature";
  const char ans[] = "21.5 C";
  mtcsec_chan *ch = mtcsec_ue_channel(w->ue, DEV_ID);
  mtcsec_dev_record_info info;
  mtcsec_ssize n;
  size_t len;

  if (ch == NULL) {
    fail("UE channel", -1);
  }
  n = mtcsec_chan_seal(ch, rec, sizeof(rec), (const uint8_t *)req,
                       sizeof(req) - 1, now);
  CHECK("UE seal", n);
  len =
    link_send(w, relayed, MTCSEC_GW_TO_DEVICE, "UE", "MTCd", rec, (size_t)n);
  n = mtcsec_dev_open(&w->dev, pt, sizeof(pt), rec, len, now, &info);
  CHECK("device open", n);
  /* The application enforces PERMS per request (PROTOCOL.md section 3). */
  CHECK("permission",
        mtcsec_dev_authorize(&w->dev, info.key_id, MTCSEC_PERM_READ, now));
  printf("  MTCd: got \"%.*s\" (read allowed)\n", (int)n, (const char *)pt);
  n = mtcsec_dev_seal(&w->dev, info.key_id, rec, sizeof(rec),
                      (const uint8_t *)ans, sizeof(ans) - 1, now);
  CHECK("device seal", n);
  len = link_send(w, relayed, MTCSEC_GW_TO_UE, "MTCd", "UE", rec, (size_t)n);
  n = mtcsec_chan_open(ch, pt, sizeof(pt), rec, len, now);
  CHECK("UE open", n);
  printf("  UE:   got \"%.*s\"; record overhead %u bytes\n", (int)n,
         (const char *)pt, 7u + ch->taglen);
}

int main(void) {
  static const mtcsec_dev_callbacks dev_cb = {persist_nonce, on_dev_event};
  static const mtcsec_ue_callbacks ue_cb = {on_ue_event};
  uint8_t pskey[16];
  mtcsec_store_device d;
  mtcsec_dev_config dcfg;
  mtcsec_ue_config ucfg;
  mtcsec_srv_config scfg;
  world w;

  memset(&w, 0, sizeof(w));
  CHECK("OpenSSL provider", mtcsec_crypto_openssl_new(&w.crypto));
  /* Provisioning: a fresh PSKey, shared by the device and the server,
   * which keeps only K_auth and K_dm derived from it. */
  CHECK("random", w.crypto.ops->random(w.crypto.ctx, pskey, sizeof(pskey)));
  memset(&d, 0, sizeof(d));
  d.suite = MTCSEC_SUITE_CMAC_AES128;
  CHECK("derive", mtcsec_derive_device_keys(&w.crypto, d.suite, pskey, DEV_ID,
                                            SRV_ID, d.k_auth, d.k_dm));
  CHECK("store", mtcsec_store_mem_new(&w.store, NULL));
  CHECK("add device", mtcsec_store_mem_add_device(w.store, DEV_ID, &d));
  mtcsec_zeroize(&d, sizeof(d));
  CHECK("grant",
        mtcsec_store_mem_grant(w.store, DEV_ID, UE_ID,
                               MTCSEC_PERM_READ | MTCSEC_PERM_ACTUATE, 3600));
  CHECK("relay", mtcsec_store_mem_allow_relay(w.store, DEV_ID, GW_ID));

  mtcsec_srv_config_default(&scfg);
  memcpy(scfg.mtcs_id, SRV_ID, 8);
  CHECK("server", mtcsec_srv_new(&w.srv, &scfg, &w.crypto,
                                 &mtcsec_store_mem_ops, w.store, NULL, NULL));
  mtcsec_ue_config_default(&ucfg);
  memcpy(ucfg.ueid, UE_ID, 8);
  CHECK("UE", mtcsec_ue_new(&w.ue, &ucfg, &w.crypto, &ue_cb, NULL));
  mtcsec_dev_config_default(&dcfg);
  memcpy(dcfg.mtcd_id, DEV_ID, 8);
  memcpy(dcfg.mtcs_id, SRV_ID, 8);
  dcfg.pskey = pskey;
  dcfg.m0_interval = 0;
  dcfg.sessions = w.dev_sessions;
  dcfg.nsessions = 2;
  CHECK("device",
        mtcsec_dev_init(&w.dev, &dcfg, &w.crypto, &dev_cb, &w.nonce_flash));
  mtcsec_zeroize(pskey, sizeof(pskey));
  CHECK("gateway", mtcsec_gw_init(&w.gw, GW_ID));

  printf("direct mode (4 messages), suite 1:\n");
  establish(&w, 0, 0);
  talk(&w, 0, 10);
  printf("\nrelayed mode (6 messages through GW), suite 1:\n");
  establish(&w, 1, 20);
  talk(&w, 1, 30);
  printf("\nthe server saw only M2 and sent only M3; records never reach "
         "it.\n");

  mtcsec_dev_deinit(&w.dev);
  mtcsec_ue_del(w.ue);
  mtcsec_srv_del(w.srv);
  mtcsec_store_mem_del(w.store);
  mtcsec_crypto_openssl_del(&w.crypto);
  return 0;
}
