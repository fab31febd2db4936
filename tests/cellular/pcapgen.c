/*
 * pcapgen: writes frames built by mtcsec's cellular codecs to a pcap file,
 * so that tshark can check them as an independent peer (tshark_check.sh).
 *
 *   pcapgen llc OUT.pcap  LINKTYPE 147 (user DLT 0, mapped to "llcgprs"):
 *                         GPRS LLC frames with FCS (and one with a
 *                         MAC-I); prints one expected FCS verdict per
 *                         frame ("correct" / "incorrect").
 *   pcapgen pco OUT.pcap  LINKTYPE_RAW (101): IPv4/UDP 2123 carrying a
 *                         GTPv1-C Create PDP Context Request whose PCO IE is
 *                         built by mtcsec_pco_encode(); prints the expected
 *                         container IDs and the IMSI.
 *
 * The pcap format: a 24-byte global header, then per packet a 16-byte record
 * header and the bytes (all fields little-endian here, magic a1b2c3d4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/crypto.h>
#include <mtcsec/cellular.h>

#define LINKTYPE_USER0 147
#define LINKTYPE_RAW 101

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void die(const char *what) {
  fprintf(stderr, "pcapgen: %s\n", what);
  exit(1);
}

static FILE *pcap_open(const char *path, uint32_t linktype) {
  uint8_t h[24];
  FILE *f = fopen(path, "wb");

  if (f == NULL) {
    die("cannot create the output file");
  }
  put_le32(h, 0xa1b2c3d4u);
  put_le16(h + 4, 2);
  put_le16(h + 6, 4);
  put_le32(h + 8, 0);      /* thiszone */
  put_le32(h + 12, 0);     /* sigfigs */
  put_le32(h + 16, 65535); /* snaplen */
  put_le32(h + 20, linktype);
  if (fwrite(h, 1, sizeof(h), f) != sizeof(h)) {
    die("write failed");
  }
  return f;
}

static void pcap_put(FILE *f, uint32_t sec, const uint8_t *pkt, size_t len) {
  uint8_t r[16];

  put_le32(r, sec);
  put_le32(r + 4, 0);
  put_le32(r + 8, (uint32_t)len);
  put_le32(r + 12, (uint32_t)len);
  if (fwrite(r, 1, sizeof(r), f) != sizeof(r) ||
      fwrite(pkt, 1, len, f) != len) {
    die("write failed");
  }
}

static size_t unhex(const char *s, uint8_t *out, size_t max) {
  size_t n = strlen(s) / 2, i;
  unsigned v;

  if (n > max) {
    die("hex too long");
  }
  for (i = 0; i < n; i++) {
    if (sscanf(s + 2 * i, "%2x", &v) != 1) {
      die("bad hex");
    }
    out[i] = (uint8_t)v;
  }
  return n;
}

/* ------------------------------------------------------------------ LLC */

static void ui_frame(FILE *f, uint32_t *sec, uint8_t sapi, uint8_t cr,
                     uint16_t nu, uint8_t pm, const uint8_t *info,
                     size_t infolen, uint8_t *out, size_t *outlen) {
  mtcsec_llc_ui ui;
  mtcsec_ssize n;

  memset(&ui, 0, sizeof(ui));
  ui.sapi = sapi;
  ui.cr = cr;
  ui.nu = nu;
  ui.pm = pm;
  ui.info = info;
  ui.infolen = infolen;
  n = mtcsec_llc_ui_encode_fcs(&ui, out, 2048);
  if (n < 0) {
    die("mtcsec_llc_ui_encode_fcs failed");
  }
  *outlen = (size_t)n;
  pcap_put(f, (*sec)++, out, (size_t)n);
  printf("correct\n");
}

static size_t mac_frame(uint8_t *out, size_t outlen, const uint8_t *info) {
  mtcsec_crypto crypto;
  mtcsec_llc_ui ui;
  uint8_t ik[16];
  mtcsec_ssize n;

  unhex("f769bcd751044604127672711c6d3441", ik, sizeof(ik));
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    die("mtcsec_crypto_openssl_new failed");
  }
  memset(&ui, 0, sizeof(ui));
  ui.sapi = MTCSEC_LLC_SAPI_LL3;
  ui.nu = 7;
  ui.pm = 1;
  ui.info = info;
  ui.infolen = 20;
  n = mtcsec_llc_ui_encode_mac(&crypto, ik, 0, MTCSEC_3GPP_UPLINK, &ui, out,
                               outlen);
  mtcsec_crypto_openssl_del(&crypto);
  if (n < 0) {
    die("mtcsec_llc_ui_encode_mac failed");
  }
  return (size_t)n;
}

static int gen_llc(const char *path) {
  /* The Activate PDP Context Request of pco.json (with its PCO IE). */
  static const char *dtap = "0a4105030c00001f10000000000000000201212803026162"
                            "27148080211001000010810600000000830600000000";
  /* The two U/XID frames of llc_fcs.json, as captured (not re-encoded). */
  static const char *xid[] = {"41fb01000e0064110516019066b328",
                              "41fb30841061b664e4a91a9e"};
  uint8_t info[256], frame[2048], first[2048];
  size_t ilen, flen, firstlen, i;
  uint32_t sec = 1;
  FILE *f = pcap_open(path, LINKTYPE_USER0);

  /* 1: UI, SAPI 1 (LLGMM), N(U) 0, PM = 1. */
  ilen = unhex(dtap, info, sizeof(info));
  ui_frame(f, &sec, MTCSEC_LLC_SAPI_LLGMM, 0, 0, 1, info, ilen, first,
           &firstlen);
  /* 2: UI, SAPI 3, N(U) 5, PM = 0: FCS over header + 4 octets. */
  for (i = 0; i < 40; i++) {
    info[i] = (uint8_t)i;
  }
  ui_frame(f, &sec, MTCSEC_LLC_SAPI_LL3, 0, 5, 0, info, 40, frame, &flen);
  /* 3: the same with octets past N202 changed after encoding: with PM = 0
   * the FCS must still be correct. */
  frame[3 + 4] ^= 0xff;
  frame[3 + 39] ^= 0x55;
  pcap_put(f, sec++, frame, flen);
  printf("correct\n");
  /* 4: PM = 0 with fewer than N202 information octets. */
  ui_frame(f, &sec, MTCSEC_LLC_SAPI_LL3, 0, 6, 0, info, 2, frame, &flen);
  /* 5: PM = 1, SAPI 9, C/R 1, largest N(U). */
  ui_frame(f, &sec, MTCSEC_LLC_SAPI_LL9, 1, MTCSEC_LLC_NU_MAX, 1, info, 20,
           frame, &flen);
  /* 6, 7: the captured XID frames. */
  for (i = 0; i < 2; i++) {
    flen = unhex(xid[i], frame, sizeof(frame));
    pcap_put(f, sec++, frame, flen);
    printf("correct\n");
  }
  /* 8: frame 1 with the last FCS octet flipped. */
  first[firstlen - 1] ^= 0x01;
  pcap_put(f, sec++, first, firstlen);
  printf("incorrect\n");
  /* 9: a P1 frame (4-byte MAC-I instead of the FCS): stock tshark reads its
   * last 3 octets as an FCS, which must not be correct (CELLULAR.md: the
   * two kinds of frame are told apart by policy, never by luck). */
  flen = mac_frame(frame, sizeof(frame), info);
  pcap_put(f, sec++, frame, flen);
  printf("incorrect\n");
  if (fclose(f) != 0) {
    die("close failed");
  }
  return 0;
}

/* ------------------------------------------------------------------ PCO */

static uint16_t ip_checksum(const uint8_t *p, size_t n) {
  uint32_t s = 0;
  size_t i;

  for (i = 0; i + 1 < n; i += 2) {
    s += (uint32_t)(p[i] << 8 | p[i + 1]);
  }
  while (s >> 16) {
    s = (s & 0xffff) + (s >> 16);
  }
  return (uint16_t)~s;
}

static size_t put(uint8_t *p, size_t off, const char *hex) {
  return off + unhex(hex, p + off, 4096);
}

static int gen_pco(const char *path) {
  static const char *imsi = "001010000000001";
  static const mtcsec_plmn home = {1, 1, 2};
  uint8_t pkt[1024], plmn[3], rnd[16], c[MTCSEC_PCO_RAND_LEN], ipcp[16];
  uint8_t tbcd[8];
  mtcsec_pco pco;
  mtcsec_ssize n;
  size_t g, off, gtplen, i;
  uint16_t csum;
  FILE *f;

  if (mtcsec_plmn_encode(&home, plmn) != 0 ||
      mtcsec_imsi_to_tbcd(imsi, strlen(imsi), tbcd) != 0) {
    die("PLMN/IMSI encoding failed");
  }
  unhex("23553cbe9637a89d218ae64dae47bf35", rnd, 16);
  unhex("01000010810600000000830600000000", ipcp, 16);
  if (mtcsec_pco_rand_encode(plmn, rnd, c) != 0) {
    die("mtcsec_pco_rand_encode failed");
  }
  memset(&pco, 0, sizeof(pco));
  pco.nunits = 3;
  pco.units[0].id = 0x8021; /* IPCP: DNS request */
  pco.units[0].len = sizeof(ipcp);
  pco.units[0].contents = ipcp;
  pco.units[1].id = 0x000d; /* DNS Server IPv4 Address Request */
  pco.units[2].id = MTCSEC_PCO_CID_MTCSEC;
  pco.units[2].len = sizeof(c);
  pco.units[2].contents = c;

  /* GTPv1-C after osmo-sgsn's gtphub test (TSHARK.md), IEs in ascending
   * type order; IP (20) and UDP (8) headers go in front. */
  g = 28;
  off = g + 12;
  pkt[off++] = 0x02; /* IMSI, TV */
  memcpy(pkt + off, tbcd, 8);
  off += 8;
  off = put(pkt, off, "0e60");       /* Recovery */
  off = put(pkt, off, "0f01");       /* Selection mode */
  off = put(pkt, off, "1000000123"); /* TEID Data I */
  off = put(pkt, off, "1100000321"); /* TEID Control Plane */
  off = put(pkt, off, "1400");       /* NSAPI */
  off = put(pkt, off, "1a0800");     /* Charging characteristics */
  off = put(pkt, off, "800002f121"); /* End user address: IPv4 */
  off = put(pkt, off, "83000908696e7465726e6574"); /* APN "internet" */
  n = mtcsec_pco_encode(&pco, MTCSEC_PCO_GTP, pkt + off, sizeof(pkt) - off);
  if (n < 0) {
    die("mtcsec_pco_encode failed");
  }
  off += (size_t)n;
  off = put(pkt, off, "850004c0a82a17"); /* SGSN address for signalling */
  off = put(pkt, off, "850004c0a82a17"); /* SGSN address for user traffic */
  off = put(pkt, off, "860007916407123254f6"); /* MSISDN */
  off = put(pkt, off, "870004000b921f");       /* QoS profile */
  gtplen = off - g;
  /* Header: v1, PT 1, S 1; Create PDP Context Request; length counts the
   * bytes after the first 8; TEID 0; sequence 0xabcd. */
  unhex("3210", pkt + g, 2);
  pkt[g + 2] = (uint8_t)((gtplen - 8) >> 8);
  pkt[g + 3] = (uint8_t)(gtplen - 8);
  unhex("00000000abcd0000", pkt + g + 4, 8);

  /* UDP 2123 -> 2123, checksum 0 (none, allowed over IPv4). */
  unhex("084b084b", pkt + 20, 4);
  pkt[24] = (uint8_t)((gtplen + 8) >> 8);
  pkt[25] = (uint8_t)(gtplen + 8);
  pkt[26] = 0;
  pkt[27] = 0;
  /* IPv4 192.168.42.23 -> 192.168.43.34. */
  unhex("45000000000040004011000000000000", pkt, 16);
  unhex("c0a82a17c0a82b22", pkt + 12, 8);
  pkt[2] = (uint8_t)(off >> 8);
  pkt[3] = (uint8_t)off;
  csum = ip_checksum(pkt, 20);
  pkt[10] = (uint8_t)(csum >> 8);
  pkt[11] = (uint8_t)csum;

  f = pcap_open(path, LINKTYPE_RAW);
  pcap_put(f, 1, pkt, off);
  if (fclose(f) != 0) {
    die("close failed");
  }
  /* What tshark must list. */
  printf("pco_pid=");
  for (i = 0; i < pco.nunits; i++) {
    printf("%s0x%04x", i ? "," : "", pco.units[i].id);
  }
  printf("\nimsi=%s\n", imsi);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: pcapgen llc|pco OUT.pcap\n");
    return 2;
  }
  if (strcmp(argv[1], "llc") == 0) {
    return gen_llc(argv[2]);
  }
  if (strcmp(argv[1], "pco") == 0) {
    return gen_pco(argv[2]);
  }
  fprintf(stderr, "pcapgen: unknown mode %s\n", argv[1]);
  return 2;
}
