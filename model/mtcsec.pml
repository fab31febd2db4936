/*
 * mtcsec key establishment, PROTOCOL.md sections 1-5: M0..M4, direct or
 * relayed, against a Dolev-Yao intruder that owns the device link and is
 * also a certified, malicious UE. See docs/VERIFICATION.md.
 *
 * Build flags (spin -D...):
 *   RELAYED        M0 carries a hop list: [GW] (the honest gateway) or
 *                  [IGW] (the intruder acting as a relay); the device puts
 *                  it in MTCdInfo as PATH
 *   NO_UEID_CHECK  mutation: the server skips UE_ID_MISMATCH (6)
 *   NO_WINDOW      mutation: the server skips its nonce window (REPLAY, 8)
 *   NO_ND_IN_MIC   mutation: MTCdNonce is left out of the MTCsMIC input
 *   CHECK_A .. CHECK_D  assert only the properties named (default: all)
 *   WITNESS        vacuity check, must FAIL: asserts that no run completes
 *                  all four sessions, with an honest UE and with the
 *                  intruder's UE (and, relayed, over both relays)
 *
 * Terms. Every field is a small integer. A MIC is an opaque term named by
 * an index into a table of what it covers: the M1 MIC that device d made
 * for its nonce n is 1 + m1idx(d, n) (0 is a junk MIC), the M4 MIC that the
 * server made for session slot k is k. A receiver accepts a MIC iff the
 * content of the term equals the input it recomputes from the message and
 * its own state. That is a perfect MIC: the intruder has no K_auth, so it
 * holds a MIC term only if it saw it, and cannot change what it covers.
 * DMKey of slot k is the term KDF(K_dm, dev, MTCdNonce, MTCsNonce, UEID)
 * with the slot's fields; the intruder cannot compute one (no K_dm), it
 * learns one only from an M3 sent to it.
 *
 * The device link is the intruder: whatever an honest party sends on it is
 * added to the intruder's knowledge in the same step (k_m1, k_m4), and an
 * honest party receives only what the intruder delivers to it. The server
 * link is TLS: an authentic, confidential channel per UE (m2 carries the
 * authenticated peer, m3[peer] the answer).
 */

#define NDEV   2            /* devices 0, 1 */
#define NSESS  2            /* device nonces (M1s) per device: 0, 1 */

/* The server's sessions live in slots k = 2 * m1idx(dev, nonce) + g. g = 1
 * is used only by a second key for one device nonce, which a correct
 * server never issues. MTCsNonce of slot k is k: random 64-bit nonces are
 * unique, and naming sessions by slot keeps issue order out of the state. */
#define NSLOT  (2 * NDEV * NSESS)
#define sdev(k)   ((k) / (2 * NSESS))
#define snd(k)    (((k) / 2) % NSESS)
#define slot(d, n, g) (2 * m1idx(d, n) + (g))

#define U1     0            /* honest UEs */
#define U2     1
#define UI     2            /* the intruder's own, certified UEID */
#define NUE    3
#define honest(u) ((u) < UI)

#define P_NONE 0            /* no PATH: direct mode */
#define P_GW   1            /* PATH = [GWID]  (the honest gateway) */
#define P_IGW  2            /* PATH = [IGWID] (the intruder as a relay) */

/* server answers: ERR codes of PROTOCOL.md section 5, and M3 */
#define OK               0
#define E_UNKNOWN_DEVICE 3
#define E_UE_ID_MISMATCH 6
#define E_BAD_MIC        7
#define E_REPLAY         8
#define E_INTERNAL       12
#define R_M3             19

/* for printf (trails only): U1, U2, UI; PATH -, G, I */
#define UEN(u)   ((u) == UI -> 'I' : '1' + (u))
#define PATHN(p) ((p) == P_NONE -> '-' : ((p) == P_GW -> 'G' : 'I'))

#define bit(x)      (1 << (x))
#define has(set, x) (((set) >> (x)) & 1)
#define m1idx(d, n) ((d) * NSESS + (n))

mtype = { M0, M4 };

chan to_dev[NDEV] = [0] of { mtype, byte, byte };  /* M0: UEID, PATH;
                                                      M4: MIC k, UEID */
chan to_ue[2] = [0] of { byte, byte, byte, byte, byte }; /* M1: MTCdID,
                                          MTCdNonce, UEID, PATH, MIC */
chan m2 = [0] of { byte, byte, byte, byte, byte, byte }; /* peer, M1 */
chan m3[NUE] = [0] of { byte, byte };              /* code, slot k */
#ifdef RELAYED
chan to_gw = [0] of { byte, byte };                /* M0: UEID, hops */
#endif

/* ---- devices: ctr is persisted; the pending M1 used nonce ctr-1 ---- */
byte ctr[NDEV];
bool pend[NDEV];
byte pue[NDEV];
byte ppath[NDEV];
byte dev_keys;                 /* slots whose M4 a device accepted */

/* ---- M1 MIC terms the devices made: what MIC 1 + m1idx(d, n) covers ---- */
byte m1_ue[NDEV * NSESS];
byte m1_path[NDEV * NSESS];

/* ---- server: issued sessions, nonce windows ---- */
byte s_issued;                 /* slots issued */
byte s_ue[NSLOT];
byte s_path[NSLOT];
byte s_peer[NSLOT];            /* TLS peer that received M3 */
byte seen[NDEV];               /* window, as the set of nonces seen */

/* ---- honest UEs: DMKeys held, by slot ---- */
byte ue_keys[2];

/* ---- intruder knowledge ---- */
byte k_m1;                     /* M1 MIC terms seen, bit m1idx(d, n) */
byte k_m4;                     /* M4 MIC terms seen, bit k */
byte k_key;                    /* DMKeys learnt, bit k */

/* Scratch for message fields in flight. Hidden (not in the state vector):
 * each is written before it is read within one atomic chain, and the
 * verifier restores them when it backtracks. */
hidden byte r_peer, r_d, r_n, r_u, r_p, r_m, r_code, r_k;  /* server */
hidden byte x_d, x_n, x_u, x_p, x_m, x_k, x_code;          /* intruder */

/* Which properties to assert: all by default; -DCHECK_A (B, C, D) picks
 * some, so that a mutation is checked against the property it must break
 * (pan stops at the first violation it meets). */
#if !defined(CHECK_A) && !defined(CHECK_B) && !defined(CHECK_C) && !defined(CHECK_D)
#  define CHECK_A
#  define CHECK_B
#  define CHECK_C
#  define CHECK_D
#endif
hidden byte prop_a_secrecy;
hidden byte prop_b_agreement;
hidden byte prop_c_origin;
hidden byte prop_d_ue_agreement;
hidden byte bound_not_reached;
hidden byte full_run_unreachable;

/* some slot a device accepted has UEID u (honest(u)) / PATH p */
#define ACC_IF(k, c) (has(dev_keys, k) && (c))
#define ACC_ANY(c0, c2, c4, c6) \
  (ACC_IF(0, c0) || ACC_IF(2, c2) || ACC_IF(4, c4) || ACC_IF(6, c6))
#define ACC_HONEST ACC_ANY(honest(s_ue[0]), honest(s_ue[2]), honest(s_ue[4]), \
                           honest(s_ue[6]))
#define ACC_UI     ACC_ANY(s_ue[0] == UI, s_ue[2] == UI, s_ue[4] == UI, \
                           s_ue[6] == UI)
#define ACC_PATH(p) ACC_ANY(s_path[0] == (p), s_path[2] == (p), \
                            s_path[4] == (p), s_path[6] == (p))
/* the devices accepted slots 0, 2, 4 and 6 (bits 85): both nonces each */
#ifdef RELAYED
#  define FULL_RUN (dev_keys == 85 && ACC_HONEST && ACC_UI && \
                    ACC_PATH(P_GW) && ACC_PATH(P_IGW))
#else
#  define FULL_RUN (dev_keys == 85 && ACC_HONEST && ACC_UI)
#endif

/* MTCdMIC of an M1 (MTCdID d, nonce n, UEID u, PATH p, MIC term m)
 * verifies: m is the term device d made for nonce n, over exactly u and p.
 * Suite, MTCsID and the other MTCdInfo TLVs are constants here. */
#define MIC1_OK(d, n, u, p, m) \
  ((m) != 0 && (m) - 1 == m1idx(d, n) && m1_ue[(m) - 1] == (u) && \
   m1_path[(m) - 1] == (p))

/* MTCsMIC of an M4 (slot k, UEID u) verifies at device me, pending nonce
 * nd and PATH p: the device recomputes M4 fields || MTCdNonce || MTCdInfo.
 * The M4 fields (MTCsID, MTCdID, MTCsNonce = k, UEID, MTCsInfo) are those
 * of slot k but for the UEID, which travels in the message. */
#ifdef NO_ND_IN_MIC
#  define MIC4_OK(k, u, me, nd, p) \
     (sdev(k) == (me) && s_ue[k] == (u) && s_path[k] == (p))
#else
#  define MIC4_OK(k, u, me, nd, p) \
     (sdev(k) == (me) && s_ue[k] == (u) && snd(k) == (nd) && \
      s_path[k] == (p))
#endif

/* ------------------------------------------------------------------ */
proctype Device(byte me)
{
  mtype t;
  byte a, b, nd;
end:
  do
  :: atomic {
       to_dev[me]?t, a, b ->
       if
       :: t == M0 && !pend[me] && ctr[me] < NSESS ->
          /* M0(UEID a, hops b), a free slot: new M1 with PATH = hops. The
           * counter is persisted before M1 leaves onto the device link. */
          nd = ctr[me];
          ctr[me]++;
          pend[me] = true;
          pue[me] = a;
          ppath[me] = b;
          m1_ue[m1idx(me, nd)] = a;
          m1_path[m1idx(me, nd)] = b;
          k_m1 = k_m1 | bit(m1idx(me, nd));
          printf("MSC: D%d sends M1(nonce %d, UEID U%c, PATH %c)\n", me, nd,
                 UEN(a), PATHN(b))
       :: t == M4 && pend[me] && sdev(a) == me && b == pue[me] &&
          MIC4_OK(a, b, me, ctr[me] - 1, ppath[me]) ->
          /* M4(slot a, UEID b) while waiting; IDs and UEID equal those of
           * its M1 and MTCsMIC verifies: accept, derive
           * DMKey = KDF(me, nonce ctr-1, MTCsNonce a, UEID b). */
          nd = ctr[me] - 1;
          printf("MSC: D%d accepts M4(ns %d): DMKey(D%d, nonce %d, ns %d, U%c)\n",
                 me, a, me, nd, a, UEN(b));
#ifdef CHECK_B
          /* (b) the server issued exactly this session (IDs, both nonces,
           * UEID, MTCsInfo, PATH), and no device accepted it before */
          prop_b_agreement = (has(s_issued, a) && sdev(a) == me &&
                              snd(a) == nd && s_ue[a] == b &&
                              s_path[a] == ppath[me] && !has(dev_keys, a));
          assert(prop_b_agreement);
#endif
#ifdef CHECK_D
          /* (d) the honest peer holds the same DMKey (same session: same
           * key id), made out to this device, and no other honest UE does */
          if
          :: honest(b) ->
             prop_d_ue_agreement = (has(ue_keys[b], a) && sdev(a) == me &&
                                    snd(a) == nd && s_ue[a] == b &&
                                    !has(ue_keys[1 - b], a));
             assert(prop_d_ue_agreement)
          :: else -> skip
          fi;
#endif
          dev_keys = dev_keys | bit(a);
#ifdef WITNESS
          full_run_unreachable = !FULL_RUN;
          assert(full_run_unreachable);
#endif
          pend[me] = false;
          pue[me] = 0;
          ppath[me] = 0
       :: else -> skip   /* no free slot, not waiting, mismatch, bad MIC */
       fi;
       t = 0; a = 0; b = 0; nd = 0
     }
  :: atomic {
       /* no M4 before the retries run out: give up. (Its retries resend
        * the same M1, which the intruder can replay anyway.) */
       pend[me] ->
       printf("MSC: D%d gives up waiting for M4 (nonce %d)\n", me, ctr[me] - 1);
       pend[me] = false; pue[me] = 0; ppath[me] = 0
     }
  od
}

/* ------------------------------------------------------------------ */
proctype Server()
{
end:
  do
  :: atomic {
       m2?r_peer, r_d, r_n, r_u, r_p, r_m ->
       r_code = OK;
       r_k = 0;
       /* 1 MALFORMED: terms are typed. 2 WRONG_SERVER: one MTCs, its ID a
        * constant under the MIC. 4, 5: every device enabled, one suite. */
       if
       :: r_d >= NDEV -> r_code = E_UNKNOWN_DEVICE
       :: else -> skip
       fi;
#ifndef NO_UEID_CHECK
       if
       :: r_code == OK && r_u != r_peer -> r_code = E_UE_ID_MISMATCH
       :: else -> skip
       fi;
#endif
       if
       :: r_code == OK && !MIC1_OK(r_d, r_n, r_u, r_p, r_m) -> r_code = E_BAD_MIC
       :: else -> skip
       fi;
#ifndef NO_WINDOW
       if
       :: r_code == OK && has(seen[r_d], r_n) ->
          /* a replay. Within 60 s an M2 identical to one answered for the
           * same peer gets that same M3 again (no new key); the clock is
           * a nondeterministic choice. */
          r_k = slot(r_d, r_n, 0);
          if
          :: has(s_issued, r_k) && s_peer[r_k] == r_peer &&
             s_ue[r_k] == r_u && s_path[r_k] == r_p -> r_code = R_M3
          :: true -> r_code = E_REPLAY; r_k = 0
          fi
       :: else -> skip
       fi;
#endif
       /* 9, 10, 11: every UE (the intruder's too) has a grant for every
        * device, every relay is allowed, no rate limit. */
       if
       :: r_code == OK ->
          /* the slot: g = 1 only if this nonce already has a key */
          r_k = slot(r_d, r_n, has(s_issued, slot(r_d, r_n, 0)));
#ifndef NO_WINDOW
          /* with the window the model's bound is never what stops it */
          bound_not_reached = !has(s_issued, r_k);
          assert(bound_not_reached);
#endif
          if
          :: has(s_issued, r_k) -> r_code = E_INTERNAL  /* bound: store full */
          :: else -> skip
          fi
       :: else -> skip
       fi;
       if
       :: r_code == OK ->
          printf("MSC: MTCs issues M3 to U%c: DMKey(D%d, nonce %d, ns %d, U%c)\n",
                 UEN(r_peer), r_d, r_n, r_k, UEN(r_u));
#ifdef CHECK_C
          /* (c) an honest device sent this very M1, and this is the first
           * key for that device nonce */
          prop_c_origin = (r_n < ctr[r_d] && m1_ue[m1idx(r_d, r_n)] == r_u &&
                           m1_path[m1idx(r_d, r_n)] == r_p &&
                           !has(s_issued, slot(r_d, r_n, 0)));
          assert(prop_c_origin);
#endif
          s_issued = s_issued | bit(r_k);
          s_ue[r_k] = r_u;
          s_path[r_k] = r_p;
          s_peer[r_k] = r_peer;
          seen[r_d] = seen[r_d] | bit(r_n);
          r_code = R_M3
       :: r_code == R_M3 ->
          printf("MSC: MTCs repeats its M3 (ns %d) to U%c\n", r_k, UEN(r_peer))
       :: else ->
          printf("MSC: MTCs answers ERR %d to U%c\n", r_code, UEN(r_peer))
       fi;
       m3[r_peer]!r_code, r_k
     }
  od
}

/* ------------------------------------------------------------------ */
proctype UE(byte me)
{
  byte d, n, u, p, m, code, k;
end:
  do
  :: atomic {
       /* M1 from the device link: forward it as M2, exactly as received */
       to_ue[me]?d, n, u, p, m ->
       printf("MSC: U%c forwards M1(D%d, nonce %d, UEID U%c) as M2\n", UEN(me), d, n,
              UEN(u));
       m2!me, d, n, u, p, m;
       m3[me]?code, k;
       if
       :: code == R_M3 ->
          /* keep DMKey, send M4 onto the device link */
          ue_keys[me] = ue_keys[me] | bit(k);
          k_m4 = k_m4 | bit(k)
       :: else -> skip   /* ERR */
       fi;
       d = 0; n = 0; u = 0; p = 0; m = 0; code = 0; k = 0
     }
  od
}

#ifdef RELAYED
/* ------------------------------------------------------------------ */
/* Honest gateway: appends its GWID to the hop list of an M0 and passes it
 * on toward the device; M1 and M4 it forwards unchanged. All it emits goes
 * onto the device link, i.e. to the intruder, who can already compose that
 * M0 (IDs are public) and already holds every M1/M4: the gateway adds no
 * behaviour, only the honest route. */
proctype GW()
{
  byte u, h;
end:
  do
  :: atomic { to_gw?u, h -> u = 0; h = 0 }   /* emits M0(u, h + [GWID]) */
  od
}
#endif

/* ------------------------------------------------------------------ */
/* Intruder choices, one branch per value. */
#define PICK_DEV(x)   if :: x = 0 :: x = 1 fi
#define PICK_UE(x)    if :: x = U1 :: x = U2 :: x = UI fi
#ifdef RELAYED
#  define PICK_PATH(x) if :: x = P_GW :: x = P_IGW fi
#else
#  define PICK_PATH(x) x = P_NONE
#endif
/* a known M1 MIC term */
#define PICK_M1(x) \
  if \
  :: has(k_m1, 0) -> x = 1 \
  :: has(k_m1, 1) -> x = 2 \
  :: has(k_m1, 2) -> x = 3 \
  :: has(k_m1, 3) -> x = 4 \
  fi
/* a known M4 MIC term */
#define PICK_M4(x) \
  if \
  :: has(k_m4, 0) -> x = 0 \
  :: has(k_m4, 1) -> x = 1 \
  :: has(k_m4, 2) -> x = 2 \
  :: has(k_m4, 3) -> x = 3 \
  :: has(k_m4, 4) -> x = 4 \
  :: has(k_m4, 5) -> x = 5 \
  :: has(k_m4, 6) -> x = 6 \
  :: has(k_m4, 7) -> x = 7 \
  fi
proctype Intruder()
{
end:
  do
  :: atomic {
       /* M0 to a device: unauthenticated, any UEID, any hop list */
       PICK_DEV(x_d); PICK_UE(x_u); PICK_PATH(x_p);
       printf("MSC: intruder delivers M0(UEID U%c, hops %c) to D%d\n", UEN(x_u),
              PATHN(x_p), x_d);
       to_dev[x_d]!M0, x_u, x_p
     }
  :: atomic {
       /* replay a known M4 to any device, with its UEID field as it is
        * or rewritten (the MIC covers it) */
       k_m4 != 0 -> PICK_M4(x_k); PICK_DEV(x_d); PICK_UE(x_u);
       printf("MSC: intruder delivers M4(ns %d, UEID U%c) to D%d\n", x_k, UEN(x_u),
              x_d);
       to_dev[x_d]!M4, x_k, x_u
     }
  :: atomic {
       /* a known M1 to an honest UE, which forwards it, with any UEID in
        * the UEID field (the MIC covers the one the device wrote) */
       k_m1 != 0 -> PICK_M1(x_m); PICK_UE(x_u);
       if
       :: to_ue[U1]!(x_m - 1) / NSESS, (x_m - 1) % NSESS, x_u, m1_path[x_m - 1], x_m
       :: to_ue[U2]!(x_m - 1) / NSESS, (x_m - 1) % NSESS, x_u, m1_path[x_m - 1], x_m
       fi
     }
  :: atomic {
       /* M2 over its own TLS connection, as the certified UE UI: a known
        * M1 as it is, or with the UEID field rewritten to UI, or an M1
        * with a junk MIC (for either device or an unknown one) */
       if
       :: k_m1 != 0 -> PICK_M1(x_m);
          x_d = (x_m - 1) / NSESS;
          x_n = (x_m - 1) % NSESS;
          x_p = m1_path[x_m - 1];
          if
          :: x_u = m1_ue[x_m - 1]
          :: x_u = UI
          fi
       :: x_m = 0; x_n = 0; x_u = UI; x_p = P_NONE;
          if :: x_d = 0 :: x_d = 1 :: x_d = NDEV fi
       fi;
       printf("MSC: intruder (UI) sends M1(D%d, nonce %d, UEID U%c, MIC %d) as M2\n",
              x_d, x_n, UEN(x_u), x_m);
       m2!UI, x_d, x_n, x_u, x_p, x_m;
       m3[UI]?x_code, x_k;
       if
       :: x_code == R_M3 ->
          /* M3 = M4 || DMKey: learns the M4 term and the key */
          printf("MSC: intruder learns DMKey(D%d, nonce %d, ns %d, U%c)\n",
                 sdev(x_k), snd(x_k), x_k, UEN(s_ue[x_k]));
          k_m4 = k_m4 | bit(x_k);
          k_key = k_key | bit(x_k);
#ifdef CHECK_A
          /* (a) it never knows a DMKey made out to an honest UE */
          prop_a_secrecy = !honest(s_ue[x_k]);
          assert(prop_a_secrecy);
#endif
          skip
       :: else -> skip
       fi
     }
#ifdef RELAYED
  :: atomic {
       /* an M0 to the honest gateway */
       PICK_UE(x_u);
       to_gw!x_u, P_NONE
     }
#endif
  od
}

init
{
  atomic {
    run Device(0);
    run Device(1);
    run UE(U1);
    run UE(U2);
    run Server();
#ifdef RELAYED
    run GW();
#endif
    run Intruder()
  }
}
