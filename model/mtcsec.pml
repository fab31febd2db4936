/*
 * mtcsec key establishment (docs/VERIFICATION.md, spec PROTOCOL.md 1-5),
 * M0..M4, direct or relayed, against a Dolev-Yao intruder that owns the
 * device link and is also a certified, malicious UE.
 *
 * Build flags (spin -D...):
 *   RELAYED        M0 may carry a hop list: [GW] (honest gateway) or [IGW]
 *                  (the intruder acting as relay); direct runs stay possible.
 *   NO_UEID_CHECK  mutation: server skips UE_ID_MISMATCH (6)
 *   NO_WINDOW      mutation: server skips the nonce window (REPLAY, 8)
 *   NO_ND_IN_MIC   mutation: MTCdNonce left out of the MTCsMIC input
 *
 * Terms. Every field is a small integer. A MIC is an opaque term: the M1
 * MIC made by device d for its nonce n is named by 1 + d*NSESS + n (0 is a
 * junk MIC), the M4 MIC made by the server for its session k is named by k.
 * The content a MIC covers is kept in the term tables m1_* and s_*; a
 * receiver accepts a MIC iff the content of the term equals what it
 * recomputes from the message and its own state (perfect MIC: nobody
 * without K_auth can make a term, nobody can change its content). DMKey of
 * session k is the term KDF(K_dm, s_dev[k], s_nd[k], k, s_ue[k]); the device
 * computes KDF(K_dm, me, its nonce, MTCsNonce of M4, UEID of M4). MTCsNonce
 * of session k is k (random 64-bit nonces do not collide).
 *
 * The device link is the intruder: whatever an honest party sends on it is
 * added to the intruder's knowledge in the same step (k_m1, k_m4), and
 * honest parties receive only what the intruder delivers. The server link
 * is TLS: an authentic, confidential channel per UE (m2 carries the peer).
 */

#define NDEV   2            /* devices 0, 1 */
#define NSESS  2            /* device nonces (M1s) per device */
#define MAXS   4            /* keys the server can issue = NDEV * NSESS */

#define U1     0            /* honest UEs */
#define U2     1
#define UI     2            /* the intruder's own certified UEID */
#define NUE    3
#define honest(u) ((u) < UI)

#define P_NONE 0            /* PATH absent: direct mode */
#define P_GW   1            /* PATH = [GWID]  (honest gateway) */
#define P_IGW  2            /* PATH = [IGWID] (intruder acting as gateway) */

/* server answers: ERR codes of PROTOCOL.md section 5, and M3 */
#define OK               0
#define E_UNKNOWN_DEVICE 3
#define E_UE_ID_MISMATCH 6
#define E_BAD_MIC        7
#define E_REPLAY         8
#define E_INTERNAL       12
#define R_M3             19

#define bit(x)      (1 << (x))
#define has(set, x) (((set) >> (x)) & 1)
#define m1idx(d, n) ((d) * NSESS + (n))

mtype = { M0, M4 };

chan to_dev[NDEV] = [0] of { mtype, byte, byte };  /* M0: UEID, PATH; M4: MIC k, UEID */
chan to_ue[2] = [0] of { byte, byte, byte, byte, byte }; /* M1: dev, nd, UEID, PATH, MIC */
chan m2 = [0] of { byte, byte, byte, byte, byte, byte }; /* TLS peer, then M1 */
chan m3[NUE] = [1] of { byte, byte };              /* answer code, session k */
#ifdef RELAYED
chan to_gw = [0] of { byte, byte, byte };          /* M0: UEID, PATH; or M1/M4 */
#endif

/* ---- device state (ctr persisted; pending exchange uses nonce ctr-1) ---- */
byte ctr[NDEV];
bool pend[NDEV];
byte pue[NDEV];
byte ppath[NDEV];

/* ---- M1 MIC terms made by devices: content covered by MIC m1idx(d,n) ---- */
byte m1_ue[NDEV * NSESS];
byte m1_path[NDEV * NSESS];

/* ---- server state: sessions (keys issued) and nonce windows ---- */
byte nsess;
byte s_dev[MAXS];
byte s_nd[MAXS];
byte s_ue[MAXS];
byte s_path[MAXS];
byte s_peer[MAXS];                 /* TLS peer that received M3 */
byte seen[NDEV];                   /* window as a set of seen nonces */

/* ---- honest UEs: keys held (bit k = DMKey of session k, from M3) ---- */
byte ue_keys[2];

/* ---- intruder knowledge ---- */
byte k_m1;                         /* M1 MIC terms seen, bit m1idx(d,n) */
byte k_m4;                         /* M4 MIC terms seen, bit k */
byte k_key;                        /* DMKeys learnt, bit k */

/* ---- ghosts for the properties (not protocol state) ---- */
byte issued[NDEV];                 /* nonces the server issued a key for */
byte dev_acc;                      /* sessions some device accepted */
hidden bit prop_a_secrecy;
hidden bit prop_b_agreement;
hidden bit prop_c_origin;
hidden bit prop_d_ue_agreement;
hidden bit bound_not_reached;

/* MIC of M1 verifies: term m was made by device d for nonce n over
 * exactly (UEID u, PATH p); suite, MTCsID and MTCdInfo other than PATH are
 * constants here. */
#define MIC1_OK(d, n, u, p, m) \
  ((m) != 0 && (m) - 1 == m1idx(d, n) && m1_ue[(m) - 1] == (u) && \
   m1_path[(m) - 1] == (p))

/* MTCsMIC of M4 (MIC term k, UEID field u) verifies at device me with
 * nonce nd and PATH p: the input it recomputes is
 * M4 fields || MTCdNonce || MTCdInfo. */
#ifdef NO_ND_IN_MIC
#  define MIC4_OK(k, u, me, nd, p) \
     (s_dev[k] == (me) && s_ue[k] == (u) && s_path[k] == (p))
#else
#  define MIC4_OK(k, u, me, nd, p) \
     (s_dev[k] == (me) && s_ue[k] == (u) && s_nd[k] == (nd) && \
      s_path[k] == (p))
#endif

/* index of the session issued for (d, n), or MAXS */
#define SESS_IS(i, d, n) ((i) < nsess && s_dev[i] == (d) && s_nd[i] == (n))
#define FIND_SESSION(d, n) \
  (SESS_IS(0, d, n) -> 0 : (SESS_IS(1, d, n) -> 1 : \
  (SESS_IS(2, d, n) -> 2 : (SESS_IS(3, d, n) -> 3 : MAXS))))

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
          /* a = UEID, b = PATH from the M0 hop list. The counter is
           * persisted before M1 leaves; M1 goes onto the device link. */
          nd = ctr[me];
          ctr[me]++;
          pend[me] = true;
          pue[me] = a;
          ppath[me] = b;
          m1_ue[m1idx(me, nd)] = a;
          m1_path[m1idx(me, nd)] = b;
          k_m1 = k_m1 | bit(m1idx(me, nd));
          printf("MSC: D%d sends M1(nonce %d, UEID %d, PATH %d)\n", me, nd, a, b)
       :: t == M4 && pend[me] && s_dev[a] == me && b == pue[me] &&
          MIC4_OK(a, b, me, ctr[me] - 1, ppath[me]) ->
          /* a = MIC term (session k), b = UEID field. IDs, suite and UEID
           * equal those of the pending M1 and MTCsMIC verifies: accept,
           * DMKey = KDF(me, ctr-1, MTCsNonce=a, UEID=b). */
          nd = ctr[me] - 1;
          printf("MSC: D%d accepts M4(session %d): DMKey(D%d, nonce %d, ns %d, UE %d)\n",
                 me, a, me, nd, a, b);
          /* (b) the server issued exactly this session, and only once */
          prop_b_agreement = (a < nsess && s_dev[a] == me && s_nd[a] == nd &&
                              s_ue[a] == b && s_path[a] == ppath[me] &&
                              !has(dev_acc, a));
          assert(prop_b_agreement);
          dev_acc = dev_acc | bit(a);
          /* (d) the honest peer holds the same DMKey (same session, so the
           * same KEY_ID), for this device, and no other honest UE does */
          if
          :: honest(b) ->
             prop_d_ue_agreement = (has(ue_keys[b], a) && s_dev[a] == me &&
                                    s_nd[a] == nd && s_ue[a] == b &&
                                    !has(ue_keys[1 - b], a));
             assert(prop_d_ue_agreement)
          :: else -> skip
          fi;
          pend[me] = false;
          pue[me] = 0;
          ppath[me] = 0
       :: else -> skip   /* no free slot, not waiting, mismatch or bad MIC */
       fi;
       t = 0; a = 0; b = 0; nd = 0
     }
  :: atomic {
       /* no M4 within the retry budget: give up (the same-M1 retries are
        * replays the intruder can do itself) */
       pend[me] -> pend[me] = false; pue[me] = 0; ppath[me] = 0
     }
  od
}

/* ------------------------------------------------------------------ */
proctype Server()
{
  byte peer, d, n, u, p, m, code, k;
end:
  do
  :: atomic {
       m2?peer, d, n, u, p, m ->
       code = OK;
       /* 1 MALFORMED: terms are typed; 2 WRONG_SERVER: a single MTCs whose
        * ID is constant and covered by the MIC. 4, 5: one enabled suite. */
       if
       :: d >= NDEV -> code = E_UNKNOWN_DEVICE
       :: else -> skip
       fi;
#ifndef NO_UEID_CHECK
       if
       :: code == OK && u != peer -> code = E_UE_ID_MISMATCH
       :: else -> skip
       fi;
#endif
       if
       :: code == OK && !MIC1_OK(d, n, u, p, m) -> code = E_BAD_MIC
       :: else -> skip
       fi;
#ifndef NO_WINDOW
       if
       :: code == OK && has(seen[d], n) ->
          /* a replay; within 60 s an identical M2 from the same peer gets
           * the same M3 again (no new key). The clock is abstracted by
           * a nondeterministic choice. */
          k = FIND_SESSION(d, n);
          if
          :: k < MAXS && s_peer[k] == peer && s_ue[k] == u && s_path[k] == p ->
             code = R_M3
          :: true -> code = E_REPLAY; k = 0
          fi
       :: else -> skip
       fi;
#endif
       /* 9, 10, 11: every UE (the intruder too) holds a grant for every
        * device, every relay is allowed, no rate limit. */
       if
       :: code == OK ->
          /* (c) an honest device sent this very M1, and this is the first
           * key for that device nonce */
          prop_c_origin = (n < ctr[d] && m1_ue[m1idx(d, n)] == u &&
                           m1_path[m1idx(d, n)] == p && !has(issued[d], n));
          assert(prop_c_origin);
          bound_not_reached = (nsess < MAXS);
          assert(bound_not_reached);
          k = nsess;
          nsess++;
          s_dev[k] = d;
          s_nd[k] = n;
          s_ue[k] = u;
          s_path[k] = p;
          s_peer[k] = peer;
          seen[d] = seen[d] | bit(n);
          issued[d] = issued[d] | bit(n);
          code = R_M3;
          printf("MSC: MTCs issues session %d to peer %d: DMKey(D%d, nonce %d, ns %d, UE %d)\n",
                 k, peer, d, n, k, u)
       :: else -> skip
       fi;
       m3[peer]!code, k;
       peer = 0; d = 0; n = 0; u = 0; p = 0; m = 0; code = 0; k = 0
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
       m2!me, d, n, u, p, m;
       d = 0; n = 0; u = 0; p = 0; m = 0;
       m3[me]?code, k;
       if
       :: code == R_M3 ->
          /* keep DMKey, send M4 on the device link */
          ue_keys[me] = ue_keys[me] | bit(k);
          k_m4 = k_m4 | bit(k)
       :: else -> skip
       fi;
       code = 0; k = 0
     }
  od
}

#ifdef RELAYED
/* ------------------------------------------------------------------ */
/* Honest gateway: appends its GWID to the M0 hop list and forwards M1 and
 * M4 unchanged. Everything it emits goes onto the device link, i.e. to
 * the intruder, who can already compose it (IDs are public) or already
 * holds it: the gateway adds no behaviour, it is kept for routing. */
proctype GW()
{
  byte a, b, c;
end:
  do
  :: atomic {
       to_gw?a, b, c ->
       /* M0(UEID a, PATH b) -> M0(UEID a, PATH b+GW): composable;
        * M1/M4: already in k_m1 / k_m4 */
       a = 0; b = 0; c = 0
     }
  od
}
#endif

/* ------------------------------------------------------------------ */
/* Intruder helpers: pick a value into a local, one branch per value. */
#define PICK_DEV(x)   if :: x = 0 :: x = 1 fi
#define PICK_HUE(x)   if :: x = U1 :: x = U2 fi
#define PICK_UE(x)    if :: x = U1 :: x = U2 :: x = UI fi
#ifdef RELAYED
#  define PICK_PATH(x) if :: x = P_NONE :: x = P_GW :: x = P_IGW fi
#else
#  define PICK_PATH(x) x = P_NONE
#endif
/* a known M1 term, or a junk MIC (0) */
#define PICK_M1(x) \
  if \
  :: has(k_m1, 0) -> x = 1 \
  :: has(k_m1, 1) -> x = 2 \
  :: has(k_m1, 2) -> x = 3 \
  :: has(k_m1, 3) -> x = 4 \
  :: x = 0 \
  fi
#define PICK_M4(x) \
  if \
  :: has(k_m4, 0) -> x = 0 \
  :: has(k_m4, 1) -> x = 1 \
  :: has(k_m4, 2) -> x = 2 \
  :: has(k_m4, 3) -> x = 3 \
  fi
/* compose an M1 around MIC term m: the fixed fields come from the term
 * (changing them can only break the MIC), the UEID field is the
 * intruder's choice u. A junk MIC goes with any device ID (NDEV = an
 * unknown device) and nonce 0. */
#define COMPOSE_M1(m, d, n, u, p) \
  if \
  :: m != 0 -> d = (m - 1) / NSESS; n = (m - 1) % NSESS; p = m1_path[m - 1]; \
               PICK_UE(u) \
  :: m == 0 -> if :: d = 0 :: d = 1 :: d = NDEV fi; n = 0; u = UI; p = P_NONE \
  fi

proctype Intruder()
{
  byte d, n, u, p, m, k, code;
end:
  do
  :: atomic {
       /* M0 to a device: unauthenticated, any UEID, any hop list */
       PICK_DEV(d); PICK_UE(u); PICK_PATH(p);
       to_dev[d]!M0, u, p;
       d = 0; u = 0; p = 0
     }
  :: atomic {
       /* M4 to a device: replay a known MTCsMIC term, UEID field as it
        * likes (a changed field fails the MIC) */
       k_m4 != 0 -> PICK_M4(k); PICK_DEV(d); PICK_UE(u);
       to_dev[d]!M4, k, u;
       d = 0; u = 0; k = 0
     }
  :: atomic {
       /* M1 to an honest UE, which will forward it to the server */
       PICK_M1(m); COMPOSE_M1(m, d, n, u, p); PICK_HUE(k);
       to_ue[k]!d, n, u, p, m;
       d = 0; n = 0; u = 0; p = 0; m = 0; k = 0
     }
  :: atomic {
       /* M2 over its own TLS connection, as the certified UE UI */
       PICK_M1(m); COMPOSE_M1(m, d, n, u, p);
       m2!UI, d, n, u, p, m;
       d = 0; n = 0; u = 0; p = 0; m = 0;
       m3[UI]?code, k;
       if
       :: code == R_M3 ->
          /* M3 = M4 || DMKey: learns the M4 term and the key */
          printf("MSC: intruder learns DMKey of session %d (UE %d)\n", k, s_ue[k]);
          k_m4 = k_m4 | bit(k);
          k_key = k_key | bit(k);
          /* (a) no DMKey naming an honest UE is ever known to it */
          prop_a_secrecy = !honest(s_ue[k]);
          assert(prop_a_secrecy)
       :: else -> skip
       fi;
       code = 0; k = 0
     }
#ifdef RELAYED
  :: atomic {
       /* anything to the honest gateway (M0 toward the device, M1/M4) */
       PICK_UE(u); PICK_PATH(p);
       to_gw!u, p, 0;
       u = 0; p = 0
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
