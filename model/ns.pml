/*
 * Sanity model: the Needham-Schroeder public-key protocol (NS78), and with
 * -DNSL Lowe's fix, against the same style of intruder as mtcsec.pml: the
 * network is the intruder, honest sends go straight into its knowledge, it
 * delivers whatever it can compose from what it knows, and it is also a
 * legitimate agent I with its own key pair.
 *
 *   1. A -> B : {Na, A}pk(B)
 *   2. B -> A : {Na, Nb}pk(A)        NSL: {Na, Nb, B}pk(A)
 *   3. A -> B : {Nb}pk(B)
 *
 * SPIN must find Lowe's man-in-the-middle attack on NS (B believes it
 * talks to A while A talks to I, and I learns Nb), and nothing on NSL.
 * -DWITNESS asserts that A and B never complete a run with each other,
 * which SPIN must refute (the checks above are not vacuous).
 */

#define A  1
#define B  2
#define I  3                   /* the intruder, a legitimate agent */
#define NA 4                   /* nonces */
#define NB 5
#define NI 6

/* a message to agent X is encrypted under pk(X): only X opens it */
chan to_a = [0] of { byte, byte, byte, byte };   /* kind, f1, f2, f3 */
chan to_b = [0] of { byte, byte, byte, byte };

byte partner_a, partner_b;     /* whom A, B believe they talk to */
bool commit_a, commit_b;

/* intruder knowledge: nonces (NI always), and the ciphertexts it saw but
 * cannot open (one per kind: each honest agent runs once) */
bool k_na, k_nb;
bool ct1, ct2, ct3;
byte ct1_n, ct1_ag;            /* {ct1_n, ct1_ag}pk(B) */
byte ct2_n1, ct2_n2, ct2_ag;   /* {ct2_n1, ct2_n2, ct2_ag}pk(A) */
byte ct3_n;                    /* {ct3_n}pk(B) */

hidden byte x_n1, x_n2, x_ag;  /* intruder scratch, see mtcsec.pml */
hidden byte auth_a_to_b, auth_b_to_a, secrecy_nb, secrecy_na;
hidden byte honest_run_unreachable;  /* -DWITNESS: must be refuted */

#define LEARN(n) if :: (n) == NA -> k_na = true :: (n) == NB -> k_nb = true \
                    :: else -> skip fi

/* for printf (trails only) */
#define AG(x) ((x) == A -> 'A' : ((x) == B -> 'B' : ((x) == I -> 'I' : '-')))
#define NO(x) ((x) == NA -> 'a' : ((x) == NB -> 'b' : 'i'))

/* honest send: to I it is opened, to A or B it is stored as a ciphertext */
#define SEND1(to, n, ag) \
  printf("MSC: %c -> %c: {N%c, %c}pk(%c)\n", AG(ag), AG(to), NO(n), AG(ag), AG(to)); \
  if :: (to) == I -> LEARN(n) \
     :: else -> ct1 = true; ct1_n = n; ct1_ag = ag fi
#ifdef NSL
#  define PRINT2(to, n1, n2, ag) \
  printf("MSC: B -> %c: {N%c, N%c, %c}pk(%c)\n", AG(to), NO(n1), NO(n2), AG(ag), AG(to))
#else
#  define PRINT2(to, n1, n2, ag) \
  printf("MSC: B -> %c: {N%c, N%c}pk(%c)\n", AG(to), NO(n1), NO(n2), AG(to))
#endif
#define SEND2(to, n1, n2, ag) \
  PRINT2(to, n1, n2, ag); \
  if :: (to) == I -> LEARN(n1); LEARN(n2) \
     :: else -> ct2 = true; ct2_n1 = n1; ct2_n2 = n2; ct2_ag = ag fi
#define SEND3(to, n) \
  printf("MSC: A -> %c: {N%c}pk(%c)\n", AG(to), NO(n), AG(to)); \
  if :: (to) == I -> LEARN(n) \
     :: else -> ct3 = true; ct3_n = n fi

#ifdef NSL
#  define ID_IN_MSG2(x) (x)
#else
#  define ID_IN_MSG2(x) 0
#endif

/* An agent takes every message the intruder delivers and drops what does
 * not match what it waits for, so that no send of the intruder blocks. */
active proctype Alice()
{
  byte k, f1, f2, f3;
  atomic {
    if :: partner_a = B :: partner_a = I fi;
    SEND1(partner_a, NA, A)
  }
end:
  do
  :: atomic {
       to_a?k, f1, f2, f3 ->
       if
       :: !commit_a && k == 2 && f1 == NA && f3 == ID_IN_MSG2(partner_a) ->
          /* msg 2 carries her nonce (and, in NSL, her partner's name) */
          printf("MSC: A accepts {N%c, N%c}pk(A) (from the network)\n",
                 NO(f1), NO(f2));
          SEND3(partner_a, f2);
          commit_a = true;
          printf("MSC: A commits, believing she talks to %c\n", AG(partner_a));
          /* A believes she talks to B: B ran the protocol with A */
          auth_b_to_a = (partner_a != B || partner_b == A);
          assert(auth_b_to_a);
          secrecy_na = (partner_a != B || !k_na);
          assert(secrecy_na)
       :: else -> skip
       fi;
       k = 0; f1 = 0; f2 = 0; f3 = 0
     }
  od
}

active proctype Bob()
{
  byte k, f1, f2, f3;
end:
  do
  :: atomic {
       to_b?k, f1, f2, f3 ->
       if
       :: partner_b == 0 && k == 1 && f3 == 0 ->
          partner_b = f2;
          printf("MSC: B accepts {N%c, %c}pk(B) (from the network)\n", NO(f1), AG(f2));
          SEND2(partner_b, f1, NB, ID_IN_MSG2(B))
       :: partner_b != 0 && !commit_b && k == 3 && f1 == NB ->
          printf("MSC: B accepts {Nb}pk(B) (from the network)\n");
          commit_b = true;
          printf("MSC: B commits, believing he talks to %c\n", AG(partner_b));
          /* B believes he talks to A: A ran the protocol with B */
          auth_a_to_b = (partner_b != A || partner_a == B);
          assert(auth_a_to_b);
          secrecy_nb = (partner_b != A || !k_nb);
          assert(secrecy_nb);
#ifdef WITNESS
          /* vacuity check: a complete run between A and B exists */
          honest_run_unreachable = !(commit_a && partner_a == B && partner_b == A);
          assert(honest_run_unreachable);
#endif
          skip
       :: else -> skip
       fi;
       k = 0; f1 = 0; f2 = 0; f3 = 0
     }
  od
}

#define PICK_NONCE(x) \
  if :: x = NI :: k_na -> x = NA :: k_nb -> x = NB fi
#define PICK_AGENT(x) if :: x = A :: x = B :: x = I fi

active proctype Intruder()
{
end:
  do
  /* replay a ciphertext it cannot open */
  :: atomic { ct1 -> to_b!1, ct1_n, ct1_ag, 0 }
  :: atomic { ct2 -> to_a!2, ct2_n1, ct2_n2, ct2_ag }
  :: atomic { ct3 -> to_b!3, ct3_n, 0, 0 }
  /* or compose one under a public key from what it knows */
  :: atomic { PICK_NONCE(x_n1); PICK_AGENT(x_ag); to_b!1, x_n1, x_ag, 0 }
  :: atomic {
       PICK_NONCE(x_n1); PICK_NONCE(x_n2);
#ifdef NSL
       PICK_AGENT(x_ag);
#else
       x_ag = 0;
#endif
       to_a!2, x_n1, x_n2, x_ag
     }
  :: atomic { PICK_NONCE(x_n1); to_b!3, x_n1, 0, 0 }
  od
}
